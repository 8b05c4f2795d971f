"""The `data` of crm.* CloudEvents (our documented schema; see docs/events.md).

- crm.company.created / updated / closed / reopened: a `Company` (on update, only the
  fields that changed need be present; `status`, when present, wins over the type)
- crm.subscription.purchased / updated / cancelled: a `Purchase`, whole, as the CRM has it
  now (`status`, when present, wins over the type)
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import pycountry
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator


class CrmModel(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PostalAddress(CrmModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    line3: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=200)
    region: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=20)
    country: str = Field(description="ISO 3166-1 alpha-2 or alpha-3 code")

    @field_validator("country")
    @classmethod
    def _iso_country(cls, value: str) -> str:
        code = value.strip().upper()
        found = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
        found = found or (pycountry.countries.get(alpha_3=code) if len(code) == 3 else None)
        if found is None:
            raise ValueError(f"{value!r} is not an ISO 3166 country code")
        return str(found.alpha_2)


class Contact(CrmModel):
    name: str = Field(min_length=1, max_length=100)
    email: EmailStr = Field(max_length=100)


class Company(CrmModel):
    company_id: str | None = Field(None, description="the CRM id; defaults to the event subject")
    name: str | None = Field(None, min_length=1, max_length=100)
    legal_name: str | None = Field(None, min_length=1, max_length=100)
    contact: Contact | None = None
    office_address: PostalAddress | None = None
    billing_address: PostalAddress | None = None
    individual: bool | None = None
    status: Literal["active", "closed"] | None = Field(
        None, description="absent: as the event's type says (closed, reopened) or unchanged"
    )


class Purchase(CrmModel):
    company_id: str | None = None
    purchase_id: str = Field(min_length=1, max_length=100)
    plan: str = Field(min_length=1, max_length=100, description="a UCaaS plan id, e.g. vc-basic")
    app: Literal["vc", "wb"]
    seats: int = Field(ge=1, le=100_000)
    start: date
    status: Literal["active", "cancelled", "expired"] | None = Field(
        None, description="absent: as the event's type says (cancelled) or unchanged"
    )
