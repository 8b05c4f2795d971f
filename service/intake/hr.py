"""HR events: a SCIM 2.0 user (connectors/hr/scim.py) to the domain's `HrEvent`.

The event carries the person's UCaaS profile, or InvalidEventError says why the API could
not take it; also what decides their lifecycle (SCIM `active`, the policy's scope), when
the source says they looked like this, and their employee number. The lifecycle itself,
what the event asks of UCaaS, is lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.events.cloudevents import Envelope
from connectors.hr.scim import HrUserData
from service.domain.commands import UserProfile
from service.domain.events import HrEvent, HrKind
from service.intake.attributes import DEFAULT, PROFILE_FIELDS, ProfileField
from service.intake.emails import normalised_email
from service.intake.licences import LicencePolicy
from service.intake.mapping import (
    EMPLOYEE_ID_MAX,
    NAME_MAX,
    TEXT_MAX,
    entity_id,
    invalid,
    plain,
)


def event_of(kind: HrKind, envelope: Envelope, user: HrUserData, policy: LicencePolicy) -> HrEvent:
    """The domain event of an hr.user.* CloudEvent whose data is `user`."""
    employee_id = entity_id(user.employee_id, envelope, EMPLOYEE_ID_MAX)
    tenant = plain(user.tenant, "tenant")
    scim: Mapping[str, Any] = envelope.data
    return HrEvent(
        kind,
        tenant,
        employee_id,
        profile_of(scim, tenant, policy),
        user.effective_at,
        user.active,
        source_time=source_time(envelope, user),
        employee_number=user.enterprise.employee_number if user.enterprise else None,
        out_of_scope=policy.out_of_scope(tenant, scim),
    )


def source_time(envelope: Envelope, user: HrUserData) -> datetime | None:
    """When the source says the person looked like this: SCIM meta.lastModified, else the
    CloudEvent's time (read as UTC when it has no zone)."""
    if user.meta is not None and user.meta.last_modified is not None:
        return user.meta.last_modified
    when = envelope.time
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


# What errors call each field when it comes from where it always did.
_NAMES: dict[ProfileField, str] = {
    "email": "email",
    "first_name": "name.givenName",
    "middle_name": "name.middleName",
    "last_name": "name.familyName",
    "department": "department",
    "designation": "title",
}
_LIMITS: dict[ProfileField, int] = {
    "email": TEXT_MAX,
    "first_name": NAME_MAX,
    "middle_name": NAME_MAX,
    "last_name": NAME_MAX,
    "department": TEXT_MAX,
    "designation": TEXT_MAX,
}


def profile_of(scim: Mapping[str, Any], tenant: str, policy: LicencePolicy) -> UserProfile:
    """The UCaaS user profile of a raw SCIM user, filled as the policy's attribute mapping
    says, or InvalidEventError if the API could not take it (every check here is one the
    API would otherwise answer with a 11xx code)."""
    mapping = policy.attributes_for(tenant)
    values = mapping.values(scim)

    def name(field: ProfileField) -> str:
        same = mapping.sources[field] == DEFAULT.sources[field]
        return _NAMES[field] if same else f"{field} ({mapping.describe(field)})"

    email = values["email"]
    if email is None:
        if mapping.sources["email"] == DEFAULT.sources["email"]:
            raise invalid("no e-mail: emails[] or an e-mail userName needed")
        raise invalid(f"no e-mail: {mapping.describe('email')} gave none")
    normalised = normalised_email(email)
    if normalised is None:
        raise invalid(f"{email!r} is not a valid e-mail address")
    if values["first_name"] is None:
        raise invalid(f"{name('first_name')} is required (UCaaS needs a first name)")
    for field in PROFILE_FIELDS:
        value = values[field]
        if value is not None and len(value) > _LIMITS[field]:
            limit = _LIMITS[field]
            raise invalid(f"{name(field)} is longer than the {limit} characters UCaaS takes")
        if value is not None:
            plain(value, name(field))
    return UserProfile(
        email=normalised,
        first_name=values["first_name"],
        middle_name=values["middle_name"],
        last_name=values["last_name"],
        department=values["department"],
        designation=values["designation"],
    )
