"""The policy file: who is synced, where their profile comes from, which apps they get.

A TOML file (`UCAAS_SYNC_INTAKE_LICENCE_POLICY`), every section optional; for example
(docs/examples/licence-policy.toml has every key):

    rehire_match = ["email"]         # how a joiner is matched to a leaver (a rehire):
                                     # "email", "employee_number", or both (either one)
    default_apps = ["vc"]            # everyone, unless a rule says otherwise

    [[rules]]                        # the first rule that matches wins
    department = "Sales"             # case-insensitive; * and ? are wildcards
    apps = ["vc", "wb"]

    [[rules]]
    title = "*Director*"
    apps = ["vc", "wb"]

    [scope]                          # who is synced at all (service/intake/scoping.py)
    user_types = ["Employee"]
    countries = ["FR", "DE"]         # the work address's country, ISO 3166
    exclude_departments = ["Contract*"]

    [attributes]                     # where each profile field comes from, first source
    first_name = ["name.givenName", { path = "displayName", word = 1 }]   # with a value
    designation = 'urn:example:params:scim:schemas:extension:acme:2.0:User:jobTitle'

    [tenants."CRM-1002"]             # a tenant's own rules come before the global
    default_apps = ["vc", "wb"]      # rules; its default replaces the global default

    [tenants."CRM-1002".scope]       # replaces the global filters it sets, one by one
    countries = []                   # (here: no country filter for this tenant)

    [tenants."CRM-1002".attributes]  # replaces the fields it sets
    department = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"

For the intake, all pure: `out_of_scope(tenant, scim)` (why a raw SCIM user is not to be
synced, one line, or None), `attributes_for(tenant).values(scim)` (the six profile fields,
unchecked), `rehire_match`, and `apps_for(tenant, department, title)`.

Apps, in order: the tenant's rules, the global rules, the tenant's default, the global
default; without a file every employee gets a meeting licence (vc). Attribute paths are
SCIM's (service/intake/scim_paths.py); what `[attributes]` leaves out is today's mapping
(service/intake/attributes.py). The file is checked on load: one that cannot be read, is
not TOML, or holds an unknown key or a bad value raises `PolicyError`, one line naming the
file, the line and the key:

    licence policy /x/p.toml line 7: scope.countries[1]: "Frnce" is not an ISO 3166 country code
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from service.intake.attributes import DEFAULT, AttributeMap, Attributes, like
from service.intake.scoping import Scope
from service.intake.toml_lines import line_of, lines_of

App = Literal["vc", "wb"]
RehireKey = Literal["email", "employee_number"]
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class PolicyError(ValueError):
    """The licence policy file cannot be used; the message is one line."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str | None = None
    title: str | None = None
    apps: tuple[App, ...]

    def matches(self, department: str | None, title: str | None) -> bool:
        return like(self.department, department) and like(self.title, title)


class TenantPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_apps: tuple[App, ...] | None = None
    rules: tuple[Rule, ...] = ()
    scope: Scope | None = None
    attributes: Attributes | None = None


class LicencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_apps: tuple[App, ...] = ("vc",)
    rules: tuple[Rule, ...] = ()
    tenants: dict[str, TenantPolicy] = Field(default_factory=dict)
    scope: Scope = Field(default_factory=Scope)
    attributes: Attributes = Field(default_factory=Attributes)
    rehire_match: tuple[RehireKey, ...] = Field(("email",), min_length=1)

    @field_validator("rehire_match")
    @classmethod
    def _once_each(cls, value: tuple[RehireKey, ...]) -> tuple[RehireKey, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a key is listed twice")
        return value

    def apps_for(self, tenant: str, department: str | None, title: str | None) -> tuple[App, ...]:
        own = self.tenants.get(tenant)
        for rule in (*(own.rules if own else ()), *self.rules):
            if rule.matches(department, title):
                return _ordered(rule.apps)
        if own is not None and own.default_apps is not None:
            return _ordered(own.default_apps)
        return _ordered(self.default_apps)

    def attributes_for(self, tenant: str) -> AttributeMap:
        """Where the tenant's users' profile fields come from: the tenant's `[attributes]`,
        else the global one, else the default; `.values(scim)` reads them."""
        own = self.tenants.get(tenant)
        return DEFAULT.over(self.attributes).over(own.attributes if own else None)

    def scope_for(self, tenant: str) -> Scope:
        """The tenant's scope: its own filters in place of the global ones they name."""
        own = self.tenants.get(tenant)
        return self.scope.under(own.scope if own else None)

    def out_of_scope(self, tenant: str, scim: Mapping[str, Any]) -> str | None:
        """Why the raw SCIM user `scim` of `tenant` is not to be synced (one line, e.g.
        "userType Contractor is not in scope (Employee)"), or None when it is."""
        scope = self.scope_for(tenant)
        if not (scope.departments or scope.exclude_departments):
            return scope.why_out(scim, None)
        return scope.why_out(scim, self.attributes_for(tenant).value("department", scim))

    @classmethod
    def load(cls, path: Path | None) -> LicencePolicy:
        if path is None:
            return cls()
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise PolicyError(f"licence policy {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise PolicyError(f"licence policy {path}: not UTF-8 text: {exc.reason}") from None
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<text>") -> LicencePolicy:
        """The policy in TOML `text`; `name` is the file for PolicyError's message."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            at = re.search(r" \(at line (\d+), column (\d+)\)$", message)
            if at is None:
                raise PolicyError(f"licence policy {name}: not TOML: {message}") from None
            detail = f"{message[: at.start()]} (column {at[2]})"
            raise PolicyError(f"licence policy {name} line {at[1]}: not TOML: {detail}") from None
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors()
            # an unknown key first: it is often the misspelling of a missing one
            first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            raise PolicyError(_problem(name, text, raw, first)) from None


def _problem(name: str, text: str, raw: dict[str, Any], error: ErrorDetails) -> str:
    """One line: the file, the line, the key and what is wrong with it."""
    loc = _in_file(raw, error["loc"])
    line = line_of(lines_of(text), loc)
    where = f"licence policy {name}" + (f" line {line}" if line is not None else "")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "missing"
    elif error["type"] in ("tuple_type", "list_type"):
        message = "must be an array ([...])"
    elif error["type"] in ("too_short", "string_too_short") and _least(error) == 1:
        message = "must not be empty"
    elif error["type"] in ("model_type", "dict_type"):
        message = "must be a table"
    elif error["type"] == "literal_error":
        message += f", not {json.dumps(error['input'], ensure_ascii=False, default=str)}"
    return f"{where}: {_dotted(loc) or '(top)'}: {message}".replace("\n", " ")


def _least(error: ErrorDetails) -> Any:
    context = error.get("ctx") or {}
    return context.get("min_length")


def _in_file(raw: Any, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """The part of pydantic's `loc` that is in the file: a string given for a table ends
    it (`email = "title"` read as `email = [{ path = "title" }]`), a table given for an
    array has no index (`email = { path = "title" }`)."""
    kept: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, int):
            continue
        if isinstance(node, dict) and isinstance(part, str):
            kept.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
        else:
            break
    return tuple(kept)


def _dotted(loc: Sequence[str | int]) -> str:
    """scope.countries[1], tenants."CRM 1".scope: TOML's way of writing a key."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{key}" if out else key
    return out


def _ordered(apps: tuple[App, ...]) -> tuple[App, ...]:
    order: tuple[App, ...] = ("vc", "wb")
    return tuple(app for app in order if app in apps)
