"""HR events: SCIM users to domain events, and those to user commands.

A SCIM 2.0 user (connectors/hr/scim.py) becomes an `HrEvent` with a UCaaS profile, or
InvalidEventError if the API could not take it. Then, against the employee's state:

    joined         new: create_user, then assign_licence per app the policy names
                   a leaver coming back (rehire): reactivate the same UCaaS user, update
                   what changed, assign licences
                   already known: only what changed (a repeat is nothing)
    updated        known: update_user with the fields that changed; licences follow the
                   policy if department or title moved; unknown and active: handled as
                   joined; unknown and inactive (SCIM active false): nothing (recorded)
    leave_started  active: suspend_user
    leave_ended    on leave: reactivate_user
    left           revoke each licence, then suspend_user; unknown: nothing (recorded)

Commands of an effective-dated event wait until `effective_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import ConfigDict, EmailStr, TypeAdapter
from pydantic import ValidationError as DataError

from connectors.events.cloudevents import Envelope
from connectors.hr.scim import HrUserData
from service.domain.commands import (
    AssignLicence,
    Command,
    CreateUser,
    Payload,
    ReactivateUser,
    RevokeLicence,
    SuspendUser,
    UpdateUser,
    UserProfile,
)
from service.domain.events import HrEvent, HrKind
from service.domain.translation import DesiredState, Translation
from service.intake.licences import App, LicencePolicy
from service.intake.mapping import (
    EMPLOYEE_ID_MAX,
    NAME_MAX,
    TEXT_MAX,
    entity_id,
    invalid,
    plain,
)

# The profile fields the API lets us change on an existing user (no e-mail edit).
EDITABLE = ("first_name", "middle_name", "last_name", "department", "designation")
_EMAIL = TypeAdapter(EmailStr)


def event_of(kind: HrKind, envelope: Envelope, user: HrUserData) -> HrEvent:
    """The domain event of an hr.user.* CloudEvent whose data is `user`."""
    employee_id = entity_id(user.employee_id, envelope, EMPLOYEE_ID_MAX)
    tenant = plain(user.tenant, "tenant")
    return HrEvent(kind, tenant, employee_id, profile_of(user), user.effective_at, user.active)


def profile_of(user: HrUserData) -> UserProfile:
    """A UCaaS user profile from a SCIM user, or InvalidEventError if the API could not
    take it (every check here is one the API would otherwise answer with a 11xx code)."""
    email = user.primary_email
    if email is None:
        raise invalid("no e-mail: emails[] or an e-mail userName needed")
    try:
        email = _EMAIL.validate_python(email)
    except DataError:
        raise invalid(f"{email!r} is not a valid e-mail address") from None
    name = user.name
    first = (name.given_name if name else None) or (user.display_name or "").split(" ")[0]
    if not first:
        raise invalid("name.givenName is required (UCaaS needs a first name)")
    fields = {
        "email": (email, TEXT_MAX),
        "name.givenName": (first, NAME_MAX),
        "name.middleName": (name.middle_name if name else None, NAME_MAX),
        "name.familyName": (name.family_name if name else None, NAME_MAX),
        "department": (user.enterprise.department if user.enterprise else None, TEXT_MAX),
        "title": (user.title, TEXT_MAX),
    }
    for field_name, (value, limit) in fields.items():
        if value is not None and len(value) > limit:
            raise invalid(f"{field_name} is longer than the {limit} characters UCaaS takes")
        if value is not None:
            plain(value, field_name)
    return UserProfile(
        email=email.lower(),
        first_name=first,
        middle_name=fields["name.middleName"][0] or None,
        last_name=fields["name.familyName"][0] or None,
        department=fields["department"][0] or None,
        designation=user.title or None,
    )


class UserState(DesiredState):
    """What the accepted events ask of one employee."""

    model_config = ConfigDict(frozen=True)
    entity_kind: ClassVar[str] = "user"  # entity_state.kind

    status: Literal["active", "on_leave", "left"]
    profile: UserProfile
    apps: tuple[App, ...] = ()


def translate_hr(
    event: HrEvent, state: UserState | None, policy: LicencePolicy, *, now: datetime
) -> Translation:
    not_before = event.effective_at if event.effective_at and event.effective_at > now else None
    result = _rules(event, state, policy)
    commands = [
        Command.of(payload) if not_before is None else _dated(Command.of(payload), not_before)
        for payload in result.commands
    ]
    return Translation(commands, result.state, result.note)


def _dated(command: Command, not_before: datetime) -> Command:
    return Command(command.kind, command.entity, command.payload, command.tenant, not_before)


@dataclass
class _Result:
    commands: list[Payload] = field(default_factory=list)
    state: UserState | None = None
    note: str | None = None


def _rules(event: HrEvent, state: UserState | None, policy: LicencePolicy) -> _Result:
    ref = {"tenant": event.tenant, "employee_id": event.employee_id}
    wanted = policy.apps_for(event.tenant, event.profile.department, event.profile.designation)
    if event.kind in ("joined", "updated"):
        if state is None:
            if event.kind == "updated" and not event.active:
                return _Result(note="update for an unknown inactive user: recorded")
            commands: list[Payload] = [CreateUser(**ref, profile=event.profile)]
            commands += [AssignLicence(**ref, app=app) for app in wanted]
            note = "update for an unknown user: created" if event.kind == "updated" else None
            return _Result(
                commands=commands,
                state=UserState(status="active", profile=event.profile, apps=wanted),
                note=note,
            )
        if state.status == "left":
            if event.kind == "updated":
                return _Result(note="update for a leaver: recorded, nothing to do")
            commands = [ReactivateUser(**ref), *_changes(event, state)]
            commands += [AssignLicence(**ref, app=app) for app in wanted]
            profile = _merged(state.profile, event.profile)
            return _Result(
                commands=commands,
                state=UserState(status="active", profile=profile, apps=wanted),
                note="rehire: same UCaaS user",
            )
        commands = [*_changes(event, state)]
        commands += [AssignLicence(**ref, app=app) for app in wanted if app not in state.apps]
        commands += [RevokeLicence(**ref, app=app) for app in state.apps if app not in wanted]
        new = UserState(
            status=state.status, profile=_merged(state.profile, event.profile), apps=wanted
        )
        return _Result(
            commands=commands,
            state=new if new != state else None,
            note=None if commands else "nothing changed",
        )
    if state is None:
        return _Result(note=f"{event.kind} for an unknown user: recorded, nothing to do")
    if event.kind == "leave_started":
        if state.status != "active":
            return _Result(note=f"leave for a user who is {state.status}: nothing to do")
        return _Result(
            commands=[SuspendUser(**ref)], state=state.model_copy(update={"status": "on_leave"})
        )
    if event.kind == "leave_ended":
        if state.status != "on_leave":
            return _Result(note=f"return for a user who is {state.status}: nothing to do")
        return _Result(
            commands=[ReactivateUser(**ref)], state=state.model_copy(update={"status": "active"})
        )
    # left
    if state.status == "left":
        return _Result(note="already left: nothing to do")
    commands = [RevokeLicence(**ref, app=app) for app in state.apps]
    commands.append(SuspendUser(**ref))
    return _Result(commands=commands, state=state.model_copy(update={"status": "left", "apps": ()}))


def _changes(event: HrEvent, state: UserState) -> list[Payload]:
    old = state.profile.model_dump()
    new = event.profile.model_dump()
    changed = {field: new[field] for field in EDITABLE if new[field] != old[field]}
    if not changed:
        return []
    return [
        UpdateUser(
            tenant=event.tenant,
            employee_id=event.employee_id,
            email=state.profile.email,
            changes=changed,
        )
    ]


def _merged(old: UserProfile, new: UserProfile) -> UserProfile:
    """The new profile, but with the e-mail the UCaaS user has (the API cannot change it)."""
    return new.model_copy(update={"email": old.email})
