"""The check of a sandbox's state against what a stream of events asks of UCaaS.

The events are folded by service/devtools/expected_state.py (the rules of docs/events.md read on
their own, without the service's translation code, so a bug there cannot hide itself);
`Oracle` is that fold. `compare` puts the result next to `/_sandbox/state`: every customer
(status, name), subscription (plan, seats), user (e-mail, names, department, title,
status, licences) and meeting (scheduled or cancelled) must be there exactly once, with
nothing extra. It returns the counts it compared and every difference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.devtools.expected_state import Company, Meeting, Policy, Rule, User
from service.devtools.expected_state import ExpectedState as Oracle

__all__ = ["Company", "Comparison", "Meeting", "Oracle", "Policy", "Rule", "User", "compare"]


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
    wanted = want.created()
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
