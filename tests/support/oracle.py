"""What a stream of events asks of UCaaS, object by object, and the check of a sandbox's
state against it.

`Oracle.fold` takes CloudEvents (HR, CRM, calendar) and calendar versions and applies
the rules of docs/events.md on its own — none of the service's translation code is used,
so a bug there cannot hide itself. `compare` puts the result next to `/_sandbox/state`:
every customer (status, name), subscription (plan, seats), user (e-mail, names,
department, title, status, licences) and meeting (scheduled or cancelled) must be there
exactly once, with nothing extra. It returns the counts it compared and every difference.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.hr.scim import ENTERPRISE

Meeting = tuple[datetime, str, int]  # start (UTC), title, minutes


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
    status: str  # active, on_leave, left
    apps: frozenset[str]

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
class Oracle:
    policy: Policy = field(default_factory=Policy)
    users: dict[tuple[str, str], User] = field(default_factory=dict)
    companies: dict[str, Company] = field(default_factory=dict)
    live: dict[str, Counter[Meeting]] = field(default_factory=dict)  # organiser -> meetings
    cancelled: dict[str, Counter[Meeting]] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def fold(self, events: Iterable[dict[str, Any]]) -> Oracle:
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
        profile = _profile(data)
        employee = (data.get(ENTERPRISE) or {}).get("employeeNumber") or data["externalId"]
        key = (data["tenant"], employee)
        known = self.users.get(key)
        wanted = self.policy.apps(profile["department"], profile["title"])
        if kind in ("joined", "updated"):
            if known is None:
                if kind == "updated" and not data.get("active", True):
                    return
                self.users[key] = User(data["tenant"], status="active", apps=wanted, **profile)
                return
            if known.status == "left" and kind == "updated":
                return
            if known.status == "left":
                known.status = "active"  # rehire: the same UCaaS user
            for name in ("first", "middle", "last", "department", "title"):
                setattr(known, name, profile[name])  # the e-mail cannot change
            known.apps = wanted
        elif known is None:
            return
        elif kind == "leave_started" and known.status == "active":
            known.status = "on_leave"
        elif kind == "leave_ended" and known.status == "on_leave":
            known.status = "active"
        elif kind == "left" and known.status != "left":
            known.status, known.apps = "left", frozenset()

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

    def calendar(self, organiser: str, versions: Sequence[dict[str, Meeting]]) -> Oracle:
        """A feed's versions, each applied in turn: the last one's meetings live, one
        cancelled meeting for each time an occurrence left the feed."""
        live = self.live.setdefault(organiser.lower(), Counter())
        cancelled = self.cancelled.setdefault(organiser.lower(), Counter())
        for before, after in itertools.pairwise(versions):
            cancelled.update(meeting for key, meeting in before.items() if key not in after)
        live.update(versions[-1].values() if versions else ())
        return self


# -- the sandbox against it --------------------------------------------------------------------
@dataclass
class Comparison:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        order = ("customers", "subscriptions", "users", "licences", "meetings", "cancelled")
        return ", ".join(f"{self.counts[k]:,} {k}" for k in order)

    def report(self, limit: int = 40) -> str:
        shown = "\n".join(self.problems[:limit])
        more = len(self.problems) - limit
        return shown + (f"\n... and {more} more" if more > 0 else "")


def _start(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def compare(want: Oracle, state: dict[str, Any]) -> Comparison:
    out = Comparison()
    customers = [c for c in state["customers"] if c["customer_type"] != "T"]
    by_code = Counter(c["customer_code"] for c in customers)
    out.problems += [f"customer {code}: {n} in UCaaS" for code, n in by_code.items() if n > 1]
    code_of = {c["customer_id"]: c["customer_code"] for c in customers}
    found = {c["customer_code"]: c for c in customers}
    wanted = {code: c for code, c in want.companies.items() if c.created}
    for code in sorted(set(found) - set(wanted)):
        out.problems.append(f"customer {code}: in UCaaS, never asked for")
    subscriptions: dict[str, Counter[tuple[str, int]]] = {}
    for sub in state["subscriptions"]:
        code = code_of.get(sub["customer_id"], "?")
        subscriptions.setdefault(code, Counter())[(sub["plan_id"], sub["qty"])] += 1
    for code, company in sorted(wanted.items()):
        got = found.get(code)
        status = "C" if company.closed else "A"
        if got is None:
            out.problems.append(f"customer {code}: missing")
        elif (got["customer_name"], got["status"]) != (company.name, status):
            out.problems.append(
                f"customer {code}: {got['customer_name']!r} {got['status']}, "
                f"asked {company.name!r} {status}"
            )
        out.counts["customers"] += 1
        asked = Counter(company.purchases.values())
        if subscriptions.get(code, Counter()) != asked:
            out.problems.append(
                f"subscriptions of {code}: {dict(subscriptions.get(code, {}))}, asked {dict(asked)}"
            )
        out.counts["subscriptions"] += sum(asked.values())
    _users(want, state, code_of, out)
    _meetings(want, state, out)
    return out


def _users(want: Oracle, state: dict[str, Any], code_of: dict[str, str], out: Comparison) -> None:
    users = [u for u in state["users"] if u["user_type"] == "AP"]
    emails = Counter(u["email"].lower() for u in users)
    out.problems += [f"user {e}: {n} in UCaaS" for e, n in emails.items() if n > 1]
    found = {u["email"].lower(): u for u in users}
    asked = {u.email: u for u in want.users.values()}
    for email in sorted(set(found) - set(asked)):
        out.problems.append(f"user {email}: in UCaaS, never asked for")
    for email, user in sorted(asked.items()):
        got = found.get(email)
        out.counts["users"] += 1
        out.counts["licences"] += len(user.apps)
        if got is None:
            out.problems.append(f"user {email}: missing")
            continue
        apps = frozenset(a for a, lic in (got.get("apps") or {}).items() if lic.get("access"))
        seen = (
            code_of.get(got["customer_id"]),
            got["first_name"],
            got.get("middle_name") or None,
            got.get("last_name") or None,
            got.get("department"),
            got.get("designation"),
            got["status"],
            sorted(apps),
        )
        wanted = (
            user.tenant,
            user.first,
            user.middle or None,
            user.last or None,
            user.department,
            user.title,
            user.ucaas_status,
            sorted(user.apps),
        )
        if seen != wanted:
            out.problems.append(f"user {email} ({user.status}): {seen}, asked {wanted}")


def _meetings(want: Oracle, state: dict[str, Any], out: Comparison) -> None:
    email_of = {u["user_id"]: u["email"].lower() for u in state["users"]}
    live: dict[str, Counter[Meeting]] = {}
    cancelled: dict[str, Counter[Meeting]] = {}
    for m in state["meetings"]:
        meeting = (_start(m["start_time"]), m["room_name"], m["duration"])
        into = live if m.get("cancelled_at") is None else cancelled
        into.setdefault(email_of.get(m["user_id"], "?"), Counter())[meeting] += 1
    for kind, asked, got in (
        ("meetings", want.live, live),
        ("cancelled", want.cancelled, cancelled),
    ):
        for organiser in sorted(set(asked) | set(got)):
            a, g = asked.get(organiser, Counter()), got.get(organiser, Counter())
            out.counts[kind] += sum(a.values())
            if a != g:
                out.problems.append(
                    f"{kind} of {organiser}: missing {_show(a - g)}, extra {_show(g - a)}"
                )


def _show(meetings: Counter[Meeting]) -> list[str]:
    return [f"{n}x {title} at {start:%m-%d %H:%M} ({mins} min)"
            for (start, title, mins), n in sorted(meetings.items())]  # fmt: skip
