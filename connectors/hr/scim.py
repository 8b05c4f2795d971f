"""A SCIM 2.0 User resource (RFC 7643 section 4.1, core + enterprise extension), as HR
systems send it, plus the two fields of our event contract: `tenant` and `effective_at`.

Only the attributes the sync uses are typed; every other SCIM attribute is accepted and
ignored (a SCIM resource carries many).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


class ScimModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class ScimName(ScimModel):
    formatted: str | None = None
    given_name: str | None = Field(None, alias="givenName")
    middle_name: str | None = Field(None, alias="middleName")
    family_name: str | None = Field(None, alias="familyName")


class ScimEmail(ScimModel):
    value: str
    type: str | None = None
    primary: bool = False


class EnterpriseUser(ScimModel):
    employee_number: str | None = Field(None, alias="employeeNumber")
    department: str | None = None
    organization: str | None = None
    division: str | None = None


class ScimMeta(ScimModel):
    resource_type: str | None = Field(None, alias="resourceType")
    last_modified: datetime | None = Field(None, alias="lastModified")

    @field_validator("last_modified")
    @classmethod
    def _utc_when_unzoned(cls, value: datetime | None) -> datetime | None:
        # RFC 7643 says xsd:dateTime; some sources leave the zone out: read it as UTC
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ScimUser(ScimModel):
    schemas: list[str] = Field(default_factory=lambda: [CORE])
    id: str | None = None
    external_id: str | None = Field(None, alias="externalId")
    user_name: str = Field(alias="userName", min_length=1)
    name: ScimName | None = None
    display_name: str | None = Field(None, alias="displayName")
    emails: list[ScimEmail] = Field(default_factory=list)
    active: bool = True
    title: str | None = None
    user_type: str | None = Field(None, alias="userType")
    meta: ScimMeta | None = None
    enterprise: EnterpriseUser | None = Field(
        None, validation_alias=AliasChoices(ENTERPRISE, "enterprise")
    )

    @property
    def primary_email(self) -> str | None:
        """The primary e-mail, else the first, else the userName when it is an address."""
        for email in self.emails:
            if email.primary:
                return email.value
        if self.emails:
            return self.emails[0].value
        return self.user_name if "@" in self.user_name else None

    @property
    def employee_id(self) -> str | None:
        if self.enterprise and self.enterprise.employee_number:
            return self.enterprise.employee_number
        return self.external_id


class HrUserData(ScimUser):
    """The `data` of an hr.user.* CloudEvent."""

    tenant: str = Field(min_length=1, max_length=100, description="the customer's CRM id")
    effective_at: datetime | None = Field(
        None, description="not to take effect before this time (ISO 8601 with a zone)"
    )

    @field_validator("effective_at")
    @classmethod
    def _zone_required(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("effective_at needs a time zone (e.g. Z or +02:00)")
        return value
