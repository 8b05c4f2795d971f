"""An employee's lifecycle, level-triggered: each HR event says what the person is now
(or from a date), and the translation plans the commands that take UCaaS there.

The status an event asks for (the event's kind is a hint, the data decides):

    SCIM active false, out of the policy's scope, or `left`   left
    `leave_started`                                             on leave
    `joined`, `leave_ended`                                     active
    `updated`                                                   as now; active if unknown
                                                                or a leaver (a rehire)

From the status the person has to that one: unknown -> create_user and licences; to left
-> revoke each licence, suspend_user; left -> active: reactivate the same UCaaS user
(a rehire); on leave <-> active: suspend / reactivate. Whatever the status, the profile
(update_user with the fields that changed) and the licences the policy names follow.

Effective dating: an event whose `effective_at` is ahead dates its change of status; its
profile changes apply now. The dated commands wait for their date without holding up the
person's other commands, and a later event that changes what they would do (a new date,
a rescinding `joined`, a termination now, a profile change that alters a dated creation
or the licences to revoke) withdraws them and queues what it asks instead. An undated
`updated` says how the person is now: a termination dated ahead stays.

Order by source time: an event older than the last one applied for the person changes
nothing. Rehire: an unknown employee id whose e-mail (or employee number, as the policy
says) is a leaver's in the same tenant is that person: their UCaaS user is adopted and
reactivated, not created again. A leaver whose UCaaS user someone else active holds (the
same e-mail under another employee id: a rehire whose joiner came first) leaves it to
them: only the licences they do not have are revoked, the user is not suspended. An
e-mail change, which the API cannot make, is queued held for a person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from service.domain.commands import (
    AssignLicence,
    ChangeEmail,
    Command,
    CreateUser,
    Payload,
    ReactivateUser,
    RevokeLicence,
    SuspendUser,
    UpdateUser,
    UserProfile,
    user_entity,
)
from service.domain.events import HrEvent
from service.domain.translation import DesiredState, Translation
from service.intake.licences import App, LicencePolicy

Status = Literal["absent", "active", "on_leave", "left"]  # absent: to be created at a date
HAS_USER: tuple[Status, ...] = ("active", "on_leave")

# The profile fields the API lets us change on an existing user (no e-mail edit).
EDITABLE = ("first_name", "middle_name", "last_name", "department", "designation")
REHIRE = "rehire: same UCaaS user"
EMAIL_HELD = "needs a person: the UCaaS API cannot change an e-mail ({old} -> {new})"


class Pending(BaseModel):
    """A change of status dated ahead, and the commands queued for it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    status: Status
    apps: tuple[App, ...] = ()  # the person's licences from then
    plan: str  # a digest of the dated commands: unchanged, they are left alone


class UserState(DesiredState):
    """What the accepted events ask of one employee."""

    model_config = ConfigDict(frozen=True)
    entity_kind: ClassVar[str] = "user"  # entity_state.kind

    status: Status
    profile: UserProfile  # as UCaaS has it (its e-mail is the UCaaS user's)
    apps: tuple[App, ...] = ()
    pending: Pending | None = None
    as_of: datetime | None = None  # the source time of the latest event applied
    employee_number: str | None = None
    email_flagged: str | None = None  # an e-mail change queued for a person
    # the employee id whose UCaaS user this person took back; their commands share its queue
    rehire_of: str | None = None

    def match_keys(self) -> tuple[str | None, str | None]:
        return (self.profile.email, self.employee_number)


@dataclass(frozen=True)
class Leaver:
    """Who an unknown employee id is: a leaver of the tenant with their e-mail or employee
    number (a rehire), or, `shared`, someone active or on leave with their e-mail (the
    same person under a second id, or a rehire heard before the leaving)."""

    employee_id: str
    state: UserState
    shared: bool = False


def settled(state: UserState, now: datetime) -> UserState:
    """The state once a dated change whose time has come has run."""
    pending = state.pending
    if pending is None or pending.at > now:
        return state
    return state.model_copy(
        update={"status": pending.status, "apps": pending.apps, "pending": None}
    )


def translate_hr(
    event: HrEvent,
    state: UserState | None,
    policy: LicencePolicy,
    *,
    now: datetime,
    leaver: Leaver | None = None,
    holder: tuple[str, UserState] | None = None,
) -> Translation:
    if state is not None and _older(event, state):
        return Translation(note=f"older than the event applied ({state.as_of}): nothing changed")
    rehire_of = root = None
    shared_user = False
    if state is None and leaver is not None:
        state, rehire_of = leaver.state, leaver.employee_id
        root = leaver.state.rehire_of or leaver.employee_id
        shared_user = leaver.shared
    before = settled(state, now) if state is not None else None
    current: Status = before.status if before is not None else "absent"
    dated = event.effective_at if event.effective_at and event.effective_at > now else None
    target = _target(event, current, before)
    live = before.pending if before is not None else None
    if dated is None:
        status_now: Status = target
        # an undated update or leave says how the person is now; a termination dated
        # ahead still stands, unless this event terminates them now or rescinds it
        keeps = live is not None and target != "left" and event.kind != "joined"
        later = (live.at, live.status) if keeps and live is not None else None
    else:
        status_now = current
        keeps_dated = event.kind == "updated" and target == current
        later = (live.at, live.status) if keeps_dated and live is not None else (dated, target)
    if current == "absent" and status_now == "left":
        status_now = "absent"  # never created: nothing to take away
    if status_now == "absent" and later is not None and later[1] == "left":
        later = None
    if status_now == "absent" and later is None:
        if live is None:
            # kept when timed, so that an older event arriving later changes nothing
            timed = _latest(event.source_time, state.as_of if state else None)
            seen = UserState(status="absent", profile=event.profile, as_of=timed)
            return Translation(
                [],
                seen if timed is not None and seen != state else None,
                f"{event.kind} for an unknown user: recorded, nothing to do",
            )
        called_off = UserState(status="absent", profile=event.profile, as_of=event.source_time)
        return Translation([], called_off, "the creation dated ahead is withdrawn", withdraw=True)

    ref = {"tenant": event.tenant, "employee_id": event.employee_id}
    profile = _profile(event.profile, before)
    apps_now = _apps(policy, event, status_now)
    shared = holder[1].apps if holder is not None else None
    commands = _step(
        ref, current, status_now, before, apps_now, profile, rehire_of, shared, shared_user
    )
    email_flag = before.email_flagged if before is not None else None
    if before is not None and status_now in HAS_USER and current != "absent":
        commands += _email(ref, before, event.profile.email)
        email_flag = _flagged(before, event.profile.email)

    after = UserState(
        status=status_now,
        profile=profile if status_now != "left" or before is None else before.profile,
        apps=apps_now,
        as_of=_latest(event.source_time, state.as_of if state else None),
        employee_number=event.employee_number,
        email_flagged=email_flag,
        rehire_of=root or (before.rehire_of if before is not None else None),
    )
    pending, dated_commands, withdraw = None, [], False
    if later is not None and later[1] != status_now:
        at, status_then = later
        apps_then = _apps(policy, event, status_then)
        steps = _step(ref, status_now, status_then, after, apps_then, profile, rehire_of, shared)
        plan = _digest(steps, at)
        pending = Pending(at=at, status=status_then, apps=apps_then, plan=plan)
        if live is None or live.plan != plan:
            dated_commands = [replace(_command(p), not_before=at) for p in steps]
            withdraw = live is not None
        # the person is created at the date: nothing of theirs exists to change before
    elif live is not None:
        withdraw = True
    after = after.model_copy(update={"pending": pending})
    queued = [_command(c) for c in commands]
    queued += dated_commands
    note = None
    if shared_user:
        note = f"same person as {rehire_of}: their UCaaS user"
    elif current == "left" and status_now in HAS_USER:
        note = (
            f"rehire of {rehire_of}: their UCaaS user" if rehire_of else "rehire: same UCaaS user"
        )
    if after == state and not queued and not withdraw:
        return Translation(note=f"nothing changed: {status_now.replace('_', ' ')} already")
    if after.rehire_of is None:
        return Translation(queued, after, note, withdraw=withdraw)
    # One UCaaS user, one queue: a rehire's commands run behind what is still queued for
    # the employee id whose user it took back (its suspension, say), in order.
    lane = user_entity(event.tenant, after.rehire_of)
    queued = [replace(c, entity=lane) for c in queued]
    return Translation(queued, after, note, withdraw=withdraw, entity=lane)


def _older(event: HrEvent, state: UserState) -> bool:
    return (
        event.source_time is not None
        and state.as_of is not None
        and event.source_time < state.as_of
    )


def _latest(one: datetime | None, other: datetime | None) -> datetime | None:
    return max(one, other) if one is not None and other is not None else one or other


def _target(event: HrEvent, current: Status, before: UserState | None) -> Status:
    if event.out_of_scope is not None or not event.active or event.kind == "left":
        return "left"
    if event.kind == "leave_started":
        return "on_leave"
    if event.kind in ("joined", "leave_ended"):
        return "active"
    if current == "absent" and before is not None and before.pending is not None:
        return "absent"  # created at a date still to come
    return current if current in HAS_USER else "active"


def _apps(policy: LicencePolicy, event: HrEvent, status: Status) -> tuple[App, ...]:
    if status not in HAS_USER:
        return ()
    return policy.apps_for(event.tenant, event.profile.department, event.profile.designation)


def _profile(new: UserProfile, before: UserState | None) -> UserProfile:
    """The new profile, but with the e-mail the UCaaS user has (the API cannot change it)."""
    if before is None or before.status == "absent":
        return new
    return new.model_copy(update={"email": before.profile.email})


def _step(
    ref: dict[str, str],
    before: Status,
    after: Status,
    state: UserState | None,
    apps: tuple[App, ...],
    profile: UserProfile,
    rehire_of: str | None,
    shared: tuple[App, ...] | None = None,
    theirs: bool = False,
) -> list[Payload | Command]:
    """The commands that take a person from one status to another, with their profile and
    the licences they have then. `shared`: someone else active has the same UCaaS user
    (the same e-mail), with these licences; a leaver leaves it to them."""
    had = state.apps if state is not None and before != "absent" else ()
    if after == "left":
        if before in ("left", "absent"):
            return []
        if shared is not None:
            return [RevokeLicence(**ref, app=app) for app in had if app not in shared]
        return [*(RevokeLicence(**ref, app=app) for app in had), SuspendUser(**ref)]
    if after == "absent":
        return []
    out: list[Payload | Command] = []
    if before == "absent":
        out.append(CreateUser(**ref, profile=profile))
        had = ()
    elif rehire_of is not None and state is not None and state.status != "absent":
        # the leaver's (or the other holder's) user, under this employee id too
        out.append(CreateUser(**ref, profile=state.profile, rehire_of=rehire_of))
    if before in ("left", "on_leave") and after == "active":
        out.append(ReactivateUser(**ref))
    if before in ("absent", "active") and after == "on_leave" and shared is None:
        out.append(SuspendUser(**ref))  # (not a user someone else active has)
    if state is not None and before != "absent":
        out += _changes(ref, state.profile, profile)
    out += [AssignLicence(**ref, app=app) for app in apps if app not in had]
    if not theirs:  # (the other holder's licences are theirs to keep)
        out += [RevokeLicence(**ref, app=app) for app in had if app not in apps]
    return out


def _changes(ref: dict[str, str], old: UserProfile, new: UserProfile) -> list[Payload]:
    was, now = old.model_dump(), new.model_dump()
    changed = {field: now[field] for field in EDITABLE if now[field] != was[field]}
    if not changed:
        return []
    return [UpdateUser(**ref, email=old.email, changes=changed)]


def _email(ref: dict[str, str], before: UserState, email: str) -> list[Payload | Command]:
    old = before.profile.email
    if email in (old, before.email_flagged):
        return []
    change = Command.of(ChangeEmail(**ref, old_email=old, new_email=email))
    return [replace(change, held=EMAIL_HELD.format(old=old, new=email))]


def _flagged(before: UserState, email: str) -> str | None:
    return None if email == before.profile.email else email


def _command(step: Payload | Command) -> Command:
    return step if isinstance(step, Command) else Command.of(step)


def _digest(steps: Sequence[Payload | Command], at: datetime) -> str:
    body = "|".join((s.payload if isinstance(s, Command) else s).model_dump_json() for s in steps)
    return hashlib.sha256(f"{at.isoformat()}|{body}".encode()).hexdigest()[:16]
