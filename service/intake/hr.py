"""HR events: a SCIM 2.0 user (connectors/hr/scim.py) to the domain's `HrEvent`.

The event carries the person's UCaaS profile, or InvalidEventError says why the API could
not take it; also what decides their lifecycle (SCIM `active`, the policy's scope), when
the source says they looked like this, and their employee number. The lifecycle itself,
what the event asks of UCaaS, is lifecycle.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import EmailStr, TypeAdapter
from pydantic import ValidationError as DataError

from connectors.events.cloudevents import Envelope
from connectors.hr.scim import HrUserData
from service.domain.commands import UserProfile
from service.domain.events import HrEvent, HrKind
from service.intake.licences import LicencePolicy
from service.intake.mapping import (
    EMPLOYEE_ID_MAX,
    NAME_MAX,
    TEXT_MAX,
    entity_id,
    invalid,
    plain,
)

_EMAIL = TypeAdapter(EmailStr)


def event_of(kind: HrKind, envelope: Envelope, user: HrUserData, policy: LicencePolicy) -> HrEvent:
    """The domain event of an hr.user.* CloudEvent whose data is `user`."""
    employee_id = entity_id(user.employee_id, envelope, EMPLOYEE_ID_MAX)
    tenant = plain(user.tenant, "tenant")
    return HrEvent(
        kind,
        tenant,
        employee_id,
        profile_of(user),
        user.effective_at,
        user.active,
        source_time=source_time(envelope, user),
        employee_number=user.enterprise.employee_number if user.enterprise else None,
    )


def source_time(envelope: Envelope, user: HrUserData) -> datetime | None:
    """When the source says the person looked like this: SCIM meta.lastModified, else the
    CloudEvent's time (read as UTC when it has no zone)."""
    if user.meta is not None and user.meta.last_modified is not None:
        return user.meta.last_modified
    when = envelope.time
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


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
