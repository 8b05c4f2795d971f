"""Who an unknown employee id may be: a leaver of the same tenant with their e-mail or
employee number (a rehire under a new id, matched as Okta matches imports).

The intake fills it with the people the batch's keys find in the database, and with each
state the batch itself changes; `plan --events` fills it with what it has planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from service.domain.commands import user_entity
from service.domain.events import HrEvent
from service.intake.licences import RehireKey as MatchKey
from service.intake.lifecycle import HAS_USER, Leaver, UserState, settled

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Person:
    tenant: str
    employee_id: str
    state: UserState


class People:
    def __init__(self, match: Sequence[MatchKey] = ("email",)) -> None:
        self.match = tuple(match)
        self._people: dict[str, _Person] = {}

    def add(self, entity: str, tenant: str, state: UserState) -> None:
        prefix = user_entity(tenant, "")
        if entity.startswith(prefix):
            self._people[entity] = _Person(tenant, entity[len(prefix) :], state)

    def leaver(self, event: HrEvent, now: datetime) -> Leaver | None:
        """Who `event`'s unknown employee id is: someone of the tenant, active or on
        leave, with their e-mail (shared: the same UCaaS user); else someone with one of
        the match keys, all of whom have left (a rehire), the one last heard of."""
        holder = self.holder(event, now)
        if holder is not None:  # one user, one queue: theirs
            return Leaver(holder[0], holder[1], shared=True)
        keys = {
            "email": event.profile.email,
            "employee_number": event.employee_number,
        }
        for name in self.match:
            value = keys[name]
            if value is None:
                continue
            found = [
                (p, settled(p.state, now))
                for p in self._people.values()
                if p.tenant == event.tenant
                and p.employee_id != event.employee_id
                and p.state.status != "absent"
                and _key(p.state, name) == value
            ]
            if found and all(state.status == "left" for _, state in found):
                person, state = max(found, key=lambda f: f[1].as_of or _EARLIEST)
                return Leaver(person.employee_id, state)
        return None

    def holder(self, event: HrEvent, now: datetime) -> tuple[str, UserState] | None:
        """Someone else of the tenant, active or on leave, whose UCaaS user (found by
        e-mail) is the one `event`'s person has: a leaver then leaves it to them."""
        return _holder_of(self._people.values(), event, now)


def _holder_of(
    people: Iterable[_Person], event: HrEvent, now: datetime
) -> tuple[str, UserState] | None:
    for person in people:
        if person.tenant != event.tenant or person.employee_id == event.employee_id:
            continue
        state = settled(person.state, now)
        if state.status in HAS_USER and state.profile.email == event.profile.email:
            return person.employee_id, state
    return None


def _key(state: UserState, name: MatchKey) -> str | None:
    return state.profile.email if name == "email" else state.employee_number
