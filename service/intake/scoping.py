"""Who is synced at all: the `[scope]` table of the policy file.

    [scope]
    user_types = ["Employee"]              # SCIM userType
    countries = ["FR", "DE"]               # the work address's country, ISO 3166
    departments = ["Sales", "Support*"]    # the profile's department (as mapped)
    exclude_departments = ["Contract*"]

A user must pass every filter that is set; a filter unset or [] lets everyone through.
User types and departments are case-insensitive with * and ? wildcards (as the licence
rules); a user without the attribute is compared as "" (so only "*" lets them in, and
an exclusion of "*" leaves them out). Countries are ISO 3166-1 alpha-2 or alpha-3 codes.
The user's country is the `country` of their work address (the primary one among
several), else of their primary address: a code or an English name (pycountry); with a
country filter, a user without one is out of scope. The department is the profile's, as
the `[attributes]` table maps it (by default the enterprise extension's `department`).

A tenant's `[tenants."CRM-1".scope]` replaces the global filters it sets, one by one,
and keeps the others: `countries = []` there lifts the global country filter for that
tenant, `user_types = ["Employee", "Contractor"]` widens it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.intake.attributes import Source, like, text_of
from service.intake.scim_paths import compile_path, read

# The work address (the primary one first), else the primary address.
_COUNTRY = tuple(
    Source(path=path)
    for path in (
        'addresses[type eq "work" and primary eq true].country',
        'addresses[type eq "work"].country',
        "addresses[primary eq true].country",
    )
)
_USER_TYPE = compile_path("userType")


def iso_code(value: str) -> str:
    """The alpha-2 code of an ISO 3166 alpha-2 or alpha-3 code, or ValueError."""
    found = country_code(value, names=False)
    if found is None:
        raise ValueError(f"{json.dumps(value, ensure_ascii=False)} is not an ISO 3166 country code")
    return found


@cache
def country_code(value: str, *, names: bool = True) -> str | None:
    """The alpha-2 code of a country given by code (either case), or by name if `names`."""
    code = value.strip().upper()
    found = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    found = found or (pycountry.countries.get(alpha_3=code) if len(code) == 3 else None)
    if found is None and names and len(code) > 3:
        try:
            found = pycountry.countries.lookup(value.strip())
        except LookupError:
            return None
    return str(found.alpha_2) if found is not None else None


Pattern = Annotated[str, Field(min_length=1)]
Country = Annotated[str, AfterValidator(iso_code)]


class Scope(BaseModel):
    """The `[scope]` table (global, or a tenant's): None is a filter left unset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_types: tuple[Pattern, ...] | None = None
    countries: tuple[Country, ...] | None = None
    departments: tuple[Pattern, ...] | None = None
    exclude_departments: tuple[Pattern, ...] | None = None

    def under(self, own: Scope | None) -> Scope:
        """This scope with the filters a tenant's `own` sets in their place."""
        if own is None:
            return self
        return self.model_copy(update=own.model_dump(exclude_none=True))

    def why_out(self, resource: Mapping[str, Any], department: str | None) -> str | None:
        """Why the raw SCIM user `resource` is out of scope (one line), or None if in."""
        if self.user_types:
            found = next((t for t in map(text_of, read(_USER_TYPE, resource)) if t), None)
            if not any(like(pattern, found) for pattern in self.user_types):
                return _not_in("userType", found, self.user_types)
        if self.countries:
            given = next((v for v in (s.value(resource) for s in _COUNTRY) if v), None)
            code = country_code(given) if given else None
            if given is not None and code is None:
                return f"country {_shown(given)} is not an ISO 3166 country: " + _among(
                    self.countries
                )
            if code not in self.countries:
                shown = given if code is None or code == given else f"{given} ({code})"
                return _not_in("work address country", shown, self.countries)
        if self.departments and not any(like(p, department) for p in self.departments):
            return _not_in("department", department, self.departments)
        for pattern in self.exclude_departments or ():
            if like(pattern, department):
                shown = _shown(department) if department else "(none)"
                return f"department {shown} is out of scope (excluded: {pattern})"
        return None


def _not_in(what: str, value: str | None, allowed: tuple[str, ...]) -> str:
    if value is None:
        return f"no {what}: {_among(allowed)}"
    return f"{what} {_shown(value)} is not in scope ({', '.join(allowed)})"


def _among(allowed: tuple[str, ...]) -> str:
    return f"not in scope ({', '.join(allowed)})"


def _shown(value: str) -> str:
    """The user's value on one line: as it is when printable, else as a JSON string."""
    value = value if len(value) <= 100 else value[:100] + "..."
    return value if value.isprintable() else json.dumps(value)
