"""The licence policy: which apps (vc, wb) an employee gets, by tenant, department and title.

A TOML file (`UCAAS_SYNC_INTAKE_LICENCE_POLICY`), for example:

    default_apps = ["vc"]            # everyone, unless a rule says otherwise

    [[rules]]                        # the first rule that matches wins
    department = "Sales"             # case-insensitive; * and ? are wildcards
    apps = ["vc", "wb"]

    [[rules]]
    title = "*Director*"
    apps = ["vc", "wb"]

    [tenants."CRM-1002"]             # a tenant's own rules come before the global
    default_apps = ["vc", "wb"]      # rules; its default replaces the global default

The order: the tenant's rules, the global rules, the tenant's default, the global
default. Without a file every employee gets a meeting licence (vc). A file that cannot
be read or holds an unknown key raises `PolicyError` with one line saying why.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

App = Literal["vc", "wb"]


class PolicyError(ValueError):
    """The licence policy file cannot be used; the message is one line."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str | None = None
    title: str | None = None
    apps: tuple[App, ...]

    def matches(self, department: str | None, title: str | None) -> bool:
        return _like(self.department, department) and _like(self.title, title)


def _like(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatchcase((value or "").casefold(), pattern.casefold())


class TenantPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_apps: tuple[App, ...] | None = None
    rules: tuple[Rule, ...] = ()


class LicencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_apps: tuple[App, ...] = ("vc",)
    rules: tuple[Rule, ...] = ()
    tenants: dict[str, TenantPolicy] = Field(default_factory=dict)
    # how an unknown employee id is matched to a leaver (a rehire under a new id)
    rehire_match: tuple[Literal["email", "employee_number"], ...] = ("email",)

    def apps_for(self, tenant: str, department: str | None, title: str | None) -> tuple[App, ...]:
        own = self.tenants.get(tenant)
        for rule in (*(own.rules if own else ()), *self.rules):
            if rule.matches(department, title):
                return _ordered(rule.apps)
        if own is not None and own.default_apps is not None:
            return _ordered(own.default_apps)
        return _ordered(self.default_apps)

    @classmethod
    def load(cls, path: Path | None) -> LicencePolicy:
        if path is None:
            return cls()
        try:
            with path.open("rb") as handle:
                return cls.model_validate(tomllib.load(handle))
        except OSError as exc:
            raise PolicyError(f"licence policy {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"licence policy {path}: not TOML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PolicyError(f"licence policy {path}: {where}: {first['msg']}") from None


def _ordered(apps: tuple[App, ...]) -> tuple[App, ...]:
    order: tuple[App, ...] = ("vc", "wb")
    return tuple(app for app in order if app in apps)
