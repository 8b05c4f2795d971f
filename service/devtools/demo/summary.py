"""What the demo's events asked for, next to what UCaaS has now.

`asked` folds the published events (and the calendar's versions) into the numbers they
ask for with service/devtools/expected_state.py, the rules of docs/events.md read without the
service's translation code: the check is then independent of what it checks. `found` reads
UCaaS back through the client, as the platform account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from rich.table import Table

from connectors.ucaas import NotFoundError, UCaaSClient
from connectors.ucaas.models.meetings import MeetingQuery
from service.devtools.demo.scenario import Scenario, Series
from service.devtools.expected_state import ExpectedState, Meeting, User, UserStatus


@dataclass
class AskedUser:
    status: UserStatus
    email: str
    given: str
    family: str
    department: str | None
    title: str | None


@dataclass
class Asked:
    customers: dict[str, str] = field(default_factory=dict)  # CRM id -> name
    purchases: dict[str, int] = field(default_factory=dict)  # purchase id -> seats
    users: dict[tuple[str, str], AskedUser] = field(default_factory=dict)
    meetings_upcoming: int = 0
    meetings_cancelled: int = 0

    def by_status(self, *statuses: UserStatus) -> int:
        return sum(1 for u in self.users.values() if u.status in statuses)


def _asked_user(user: User) -> AskedUser:
    # UCaaS answers "" for a name it does not have
    return AskedUser(
        user.status, user.email, user.first, user.last or "", user.department, user.title
    )


def _meetings(version: Iterable[Series]) -> dict[str, Meeting]:
    return {
        f"{s.uid} {start.isoformat()}": (start.astimezone(UTC), s.summary, s.minutes)
        for s in version
        for start in s.occurrences()
    }


def asked(scenario: Scenario) -> Asked:
    expected = ExpectedState().fold(event.body for event in scenario.events)
    expected.calendar(scenario.organiser.email, [_meetings(v) for v in scenario.calendar])
    companies = expected.created()
    return Asked(
        customers={code: company.name or "" for code, company in companies.items()},
        purchases={
            purchase: seats
            for company in companies.values()
            for purchase, (_plan, seats) in company.purchases.items()
        },
        users={key: _asked_user(user) for key, user in expected.users.items()},
        meetings_upcoming=sum(sum(m.values()) for m in expected.live.values()),
        meetings_cancelled=sum(sum(m.values()) for m in expected.cancelled.values()),
    )


@dataclass
class Found:
    customers: dict[str, str] = field(default_factory=dict)  # customer code -> name
    subscriptions: int = 0
    seats: int = 0
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # e-mail -> fields
    meetings_upcoming: int = 0
    meetings_cancelled: int = 0


async def found(api: UCaaSClient, meeting_ids: Iterable[str]) -> Found:
    """What UCaaS has now. `meeting_ids`: every meeting the sync scheduled; those the API
    no longer knows (404) were cancelled (the API lists no cancelled meetings)."""
    result = Found()
    codes: dict[str, str] = {}
    async for customer in api.customers.iterate():
        if customer.customer_type != "T" and customer.customer_code:
            result.customers[customer.customer_code] = customer.customer_name or ""
            codes[customer.customer_id] = customer.customer_code
    async for subscription in api.subscriptions.iterate():
        if subscription.customer_id in codes:
            result.subscriptions += 1
            qty = subscription.user_license.qty if subscription.user_license else None
            result.seats += qty or 0
    async for user in api.users.iterate():
        if user.customer_id in codes and user.user_type == "AP" and user.email:
            result.users[user.email.lower()] = {
                "status": user.status,
                "licence": bool(user.vc and user.vc.access),
                "given": user.first_name or "",
                "family": user.last_name or "",
                "department": user.department,
                "title": user.designation,
            }
    async for _ in api.meetings.iterate(MeetingQuery(stage="upcoming"), "vc"):
        result.meetings_upcoming += 1
    for meeting_id in set(meeting_ids):
        try:
            await api.meetings.get(meeting_id, "vc")
        except NotFoundError:
            result.meetings_cancelled += 1
    return result


@dataclass(frozen=True)
class Row:
    what: str
    asked: str
    found: str
    ok: bool


def _row(what: str, want: int, got: int) -> Row:
    return Row(what, str(want), str(got), want == got)


def _statuses(
    what: str,
    want: int,
    status_of: dict[str, str | None],
    users: dict[str, AskedUser],
    asked_as: set[str],
    api_status: str,
) -> Row:
    """Counts, and each user's status too: two swapped users do not pass."""
    got = sum(s == api_status for s in status_of.values())
    each = all(
        (status_of.get(email) == api_status) == (user.status in asked_as)
        for email, user in users.items()
    )
    return Row(what, str(want), str(got), want == got and each)


def compare(want: Asked, got: Found) -> list[Row]:
    users = {u.email: u for u in want.users.values()}
    status_of = {email: fields["status"] for email, fields in got.users.items()}
    up_to_date = sum(
        1
        for email, user in users.items()
        if (fields := got.users.get(email)) is not None
        and (fields["given"], fields["family"], fields["department"], fields["title"])
        == (user.given, user.family, user.department, user.title)
    )
    seats = sum(want.purchases.values())
    return [
        Row(
            "customers",
            str(len(want.customers)),
            str(len(got.customers)),
            want.customers == got.customers,
        ),
        Row(
            "subscriptions (seats)",
            f"{len(want.purchases)} ({seats})",
            f"{got.subscriptions} ({got.seats})",
            (len(want.purchases), seats) == (got.subscriptions, got.seats),
        ),
        Row("users", str(len(users)), str(len(got.users)), set(users) == set(got.users)),
        _statuses("  active", want.by_status("active"), status_of, users, {"active"}, "A"),
        _statuses(
            "  suspended (on leave or left)",
            want.by_status("on_leave", "left"),
            status_of,
            users,
            {"on_leave", "left"},
            "S",
        ),
        _row("  profiles as last sent by HR", len(users), up_to_date),
        _row(
            "meeting licences",
            want.by_status("active", "on_leave"),
            sum(bool(fields["licence"]) for fields in got.users.values()),
        ),
        _row("meetings scheduled (upcoming)", want.meetings_upcoming, got.meetings_upcoming),
        _row("meetings cancelled", want.meetings_cancelled, got.meetings_cancelled),
    ]


def table(rows: list[Row]) -> Table:
    shown = Table(title="What the events asked for, and what UCaaS has now")
    shown.add_column("")
    shown.add_column("asked", justify="right")
    shown.add_column("in UCaaS", justify="right")
    shown.add_column("")
    for row in rows:
        mark = "[green]✓[/]" if row.ok else "[red]✗[/]"
        shown.add_row(row.what, row.asked, row.found, mark)
    return shown
