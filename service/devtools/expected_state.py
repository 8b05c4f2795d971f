"""What a stream of events asks of UCaaS, object by object: an independent reading of
docs/events.md.

`ExpectedState.fold` takes CloudEvents (HR, CRM; others are passed over) and
`ExpectedState.calendar` a feed's versions, and applies the contract's rules on its own.
None of the service's translation code is used (not service.domain.translation, not the calendar's
translation, not the HR or CRM mapping), so a bug there cannot hide itself: the demo's
"asked" numbers and the chaos suite's oracle are both folded here and then compared with
what UCaaS really holds.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connectors.hr.scim import ENTERPRISE

Meeting = tuple[datetime, str, int]  # start (UTC), title, minutes
UserStatus = Literal["active", "on_leave", "left"]


@dataclass(frozen=True)
class Rule:
    apps: tuple[str, ...]
    department: str | None = None
    title: str | None = None

    def matches(self, department: str | None, title: str | None) -> bool:
        return all(
            pattern is None or fnmatch.fnmatchcase((value or "").casefold(), pattern.casefold())
            for pattern, value in ((self.department, department), (self.title, title))
        )


@dataclass(frozen=True)
class Policy:
    """The licence policy as docs/events.md states it (global rules and default only)."""

    default: tuple[str, ...] = ("vc",)
    rules: tuple[Rule, ...] = ()

    def apps(self, department: str | None, title: str | None) -> frozenset[str]:
        for rule in self.rules:
            if rule.matches(department, title):
                return frozenset(rule.apps)
        return frozenset(self.default)


@dataclass
class User:
    tenant: str
    email: str
    first: str
    middle: str | None
    last: str | None
    department: str | None
    title: str | None
    status: UserStatus
    apps: frozenset[str]
    # each employee id that has this UCaaS user: their status and licences
    holders: dict[str, UserStatus] = field(default_factory=dict)
    wants: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def ucaas_status(self) -> str:
        return "A" if self.status == "active" else "S"


@dataclass
class Company:
    created: bool = False
    name: str | None = None
    closed: bool = False
    purchases: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> plan, seats


def _profile(data: dict[str, Any]) -> dict[str, Any]:
    name = data.get("name") or {}
    emails = data.get("emails") or []
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    email = primary["value"] if primary else data["userName"]
    given = name.get("givenName") or (data.get("displayName") or "").split(" ")[0]
    enterprise = data.get(ENTERPRISE) or {}
    return {
        "email": email.lower(),
        "first": given,
        "middle": name.get("middleName"),
        "last": name.get("familyName"),
        "department": enterprise.get("department"),
        "title": data.get("title"),
    }


def _complete(data: dict[str, Any]) -> bool:
    return all(data.get(k) for k in ("name", "legal_name", "contact", "office_address"))


@dataclass
class ExpectedState:
    policy: Policy = field(default_factory=Policy)
    users: dict[tuple[str, str], User] = field(default_factory=dict)  # tenant, employee
    companies: dict[str, Company] = field(default_factory=dict)  # CRM company id
    live: dict[str, Counter[Meeting]] = field(default_factory=dict)  # organiser -> meetings
    cancelled: dict[str, Counter[Meeting]] = field(default_factory=dict)
    # live meetings whose cancellation waits for an operator's approval (never given here)
    held: dict[str, Counter[Meeting]] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def fold(self, events: Iterable[dict[str, Any]]) -> ExpectedState:
        for event in events:
            key = (event["source"], event["id"])
            if key in self.seen:
                continue  # an id seen before is acknowledged and ignored
            self.seen.add(key)
            kind: str = event["type"]
            if kind.startswith("hr.user."):
                self._hr(kind.removeprefix("hr.user."), event["data"])
            elif kind.startswith("crm."):
                self._crm(kind, event["subject"], event["data"])
        return self

    def _hr(self, kind: str, data: dict[str, Any]) -> None:
        """docs/events.md's HR rules: SCIM `active` false or `left` is a leaver whatever
        the type, `leave_started` on leave, `joined`/`leave_ended` active, `updated` as
        before (active when unknown or gone). An unknown employee id with the e-mail of
        a user the tenant has is that user (a rehire under a new id, or its joiner come
        first); a user stays active while any of its employee ids is."""
        profile = _profile(data)
        employee = (data.get(ENTERPRISE) or {}).get("employeeNumber") or data["externalId"]
        tenant = data["tenant"]
        key = (tenant, employee)
        if not data.get("active", True) or kind == "left":
            target: UserStatus | None = "left"
        elif kind == "leave_started":
            target = "on_leave"
        elif kind in ("joined", "leave_ended"):
            target = "active"
        else:
            target = None  # updated: as before
        user = self.users.get(key)
        if user is None:
            if target == "left":
                return  # never here: nothing to take away
            user = next(
                (
                    u
                    for (t, _), u in self.users.items()
                    if t == tenant and u.email == profile["email"]
                ),
                None,
            ) or User(tenant, status="left", apps=frozenset(), **profile)
            self.users[key] = user
            was: UserStatus = "left"
        else:
            was = user.holders.get(employee, "left")
        now: UserStatus = target or (was if was != "left" else "active")
        if was == "left" and now == "left":
            return
        wanted = self.policy.apps(profile["department"], profile["title"])
        user.holders[employee] = now
        user.wants[employee] = wanted if now != "left" else frozenset()
        if now != "left":
            for name in ("first", "middle", "last", "department", "title"):
                setattr(user, name, profile[name])  # the e-mail cannot change
        statuses = set(user.holders.values())
        user.status = next(
            s for s in ("active", "on_leave", "left") if s in statuses or s == "left"
        )
        user.apps = frozenset().union(*user.wants.values())

    def _crm(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        company = self.companies.setdefault(data.get("company_id") or subject, Company())
        if kind == "crm.subscription.purchased":
            company.purchases.setdefault(data["purchase_id"], (data["plan"], int(data["seats"])))
        elif kind == "crm.company.closed":
            company.closed = True
        elif company.created:
            company.name = data.get("name") or company.name
        elif kind == "crm.company.created" or _complete(data):
            company.created, company.name = True, data["name"]

    def calendar(
        self,
        organiser: str,
        versions: Sequence[Mapping[str, Meeting]],
        *,
        hold_share: float = 0.5,
        hold_least: int = 3,
        hold_empty: bool = True,
    ) -> ExpectedState:
        """A feed's versions (every meeting in them to come), each applied in turn: one
        cancelled meeting for each occurrence that left the feed, unless the version that
        dropped it is held. A version is held when the meetings it drops are at least
        `hold_share` of those UCaaS has for the feed and at least `hold_least`, or when it
        has no meeting at all (`hold_empty`): its cancels wait for an approval never given
        here, so those meetings stay live (counted in `held` too), and the next version is
        judged against them as well. The meetings left at the end are live."""
        live = self.live.setdefault(organiser.lower(), Counter())
        cancelled = self.cancelled.setdefault(organiser.lower(), Counter())
        held = self.held.setdefault(organiser.lower(), Counter())
        have: dict[str, Meeting] = {}  # what UCaaS has of the feed's meetings
        waiting: list[str] = []  # dropped by a held version, not cancelled
        for version in versions:
            gone = [key for key in have if key not in version]
            many = len(gone) >= hold_least and len(gone) >= hold_share * len(have)
            if gone and (many or (hold_empty and not version)):
                waiting = gone
                have = {**{key: have[key] for key in gone}, **version}
            else:
                cancelled.update(have[key] for key in gone)
                waiting = []
                have = dict(version)
        live.update(have.values())
        held.update(have[key] for key in waiting)
        return self

    def created(self) -> dict[str, Company]:
        """The companies that became UCaaS customers (closed ones too: closing keeps them)."""
        return {code: company for code, company in self.companies.items() if company.created}
