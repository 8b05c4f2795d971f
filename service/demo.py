"""`ucaas-sync demo`: start the UCaaS sandbox and drive a scripted scenario through the client.

Everything runs on this machine with no configuration: the sandbox is started as a child
process on a free loopback port, and every step is a real HTTP call made by the typed
client. The printout says what each step did and ends with what now exists in UCaaS.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.table import Table

from connectors.ucaas import (
    AlreadyExistsError,
    Credentials,
    MissingPrerequisiteError,
    UCaaSClient,
)
from connectors.ucaas.models.customers import AddressIn, NewCustomer
from connectors.ucaas.models.meetings import MeetingChanges, NewMeeting
from connectors.ucaas.models.subscriptions import NewSubscription, NewSubscriptionTerms
from connectors.ucaas.models.users import NewUser, UserChanges
from service.local_sandbox import DEFAULT_ADMIN, DEFAULT_API_ID, LocalSandbox

COMPANIES = (
    # CRM id, name, country, plan, seats, employees (first, last, department)
    ("CRM-1001", "Acme Robotics", "FR", "vc-basic", 3, [("Ann", "Lee", "Engineering"),
        ("Bruno", "Marais", "Sales"), ("Chloé", "Dubois", "Support"), ("Denis", "Roy", "Sales")]),
    ("CRM-1002", "Globex Logistics", "DE", "vc-pro", 5, [("Eva", "Schulz", "Operations"),
        ("Felix", "Wagner", "Finance")]),
)  # fmt: skip


def ascii_name(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return folded.lower()


@dataclass
class Outcome:
    customers: int = 0
    users: int = 0
    licences: int = 0
    meetings: int = 0
    waits: list[str] = field(default_factory=list)
    subscriptions: dict[str, str] = field(default_factory=dict)  # CRM id -> subscription


async def run_scenario(base_url: str, console: Console) -> Outcome:
    outcome = Outcome()
    admin = Credentials.of(*DEFAULT_ADMIN)
    async with UCaaSClient(base_url, api_id=DEFAULT_API_ID, credentials=admin) as api:
        plans = {p.plan_id: p for p in await api.datapool.plans()}
        zones = {z.zone_name: z.timezone_id for z in await api.datapool.timezones()}
        console.print(f"[dim]datapool:[/] {len(plans)} plans, {len(zones)} time zones")
        for code, name, country, plan_id, seats, people in COMPANIES:
            created = await api.customers.add(
                NewCustomer(
                    customer_name=name,
                    customer_legal_name=f"{name} Ltd",
                    customer_code=code,
                    contact_name=f"{people[0][0]} {people[0][1]}",
                    contact_email=f"billing@{code.lower()}.example",
                    office_address=AddressIn(
                        address_1="1 Main Street", city="Capital", country=country
                    ),
                )
            )
            outcome.customers += 1
            customer_id = created.customer.customer_id
            console.print(
                f"[green]customer[/] {name} ({code}) -> {customer_id}, portal login issued"
            )
            today = datetime.now(UTC).date()
            sub = await api.subscriptions.add(
                NewSubscription(
                    customer_id=customer_id,
                    plan_id=plan_id,
                    room_type="standard",
                    subscription=NewSubscriptionTerms(subsxn_date=today, no_of_license=seats),
                )
            )
            subscription_id = sub.subscription.subscription_id
            outcome.subscriptions[code] = subscription_id
            console.print(f"[green]subscription[/] {plans[plan_id].plan_name}, {seats} seats")
            assert created.portal_access is not None  # noqa: S101 - the API always sends it
            portal = api.as_account(
                Credentials(created.portal_access.username, created.portal_access.password)
            )
            await _staff(portal, console, outcome, code, people, subscription_id)
            if code == "CRM-1001":
                await _meeting(portal, console, outcome, zones["Europe/Paris"], code)
    return outcome


async def _staff(
    portal: UCaaSClient,
    console: Console,
    outcome: Outcome,
    code: str,
    people: list[tuple[str, str, str]],
    subscription_id: str,
) -> None:
    for first, last, department in people:
        email = f"{ascii_name(first)}.{ascii_name(last)}@{code.lower()}.example"
        new = NewUser(
            user_type="AP", first_name=first, last_name=last, email=email, department=department
        )
        user = await portal.users.add(new)
        outcome.users += 1
        try:
            await portal.users.add(new)  # a retry after a lost answer: the API says 1103
        except AlreadyExistsError as exc:
            found = await portal.users.find_by_email(email)
            adopted = found is not None and found.user_id == user.user.user_id
            console.print(f"  [yellow]repeat[/] of {email}: code {exc.code}, adopted={adopted}")
        try:
            access = await portal.users.assign_licence(
                user.user.user_id, app="vc", subscription_id=subscription_id
            )
            outcome.licences += 1
            pins = access.user.access
            pin = pins.ppin if pins else "?"
            console.print(f"  [green]user[/] {first} {last} ({department}): vc licence, PIN {pin}")
        except MissingPrerequisiteError as exc:
            outcome.waits.append(f"{email}: {exc.api_message}")
            console.print(f"  [yellow]wait[/] {first} {last}: code {exc.code} ({exc.api_message})")


async def _meeting(
    portal: UCaaSClient, console: Console, outcome: Outcome, zone_id: str, code: str
) -> None:
    organiser = await portal.users.find_by_email(f"ann.lee@{code.lower()}.example")
    if organiser is None:  # pragma: no cover - made a moment ago
        return
    start = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    meeting = await portal.meetings.schedule(
        NewMeeting(
            user_id=organiser.user_id,
            room_name="Weekly engineering sync",
            desc="Status, risks, next steps",
            start_time=start,
            timezone_id=zone_id,
            duration=30,
            moderators=1,
            participants=8,
        ),
        "vc",
    )
    await portal.meetings.edit(meeting.meeting_id, MeetingChanges(duration=45), "vc")
    outcome.meetings += 1
    console.print(f"  [green]meeting[/] {meeting.room_name} at {start:%Y-%m-%d %H:%M} UTC, 45 min")
    leaver = await portal.users.find_by_email(f"bruno.marais@{code.lower()}.example")
    if leaver is not None:
        await portal.users.revoke_licence(leaver.user_id, "vc")
        await portal.users.edit(leaver.user_id, UserChanges(status="S"))
        outcome.licences -= 1
        console.print(
            "  [red]leaver[/] Bruno Marais: licence revoked, user suspended (frees a seat)"
        )
    waiting = await portal.users.find_by_email(f"denis.roy@{code.lower()}.example")
    if waiting is not None and waiting.vc is not None and not waiting.vc.access:
        await portal.users.assign_licence(
            waiting.user_id, app="vc", subscription_id=outcome.subscriptions[code]
        )
        outcome.licences += 1
        outcome.waits.pop()
        console.print("  [green]seat free[/]: Denis Roy's waiting licence goes through now")


def summary(root: str, console: Console) -> None:
    """What now exists in UCaaS, read back from the sandbox."""
    state = httpx.get(f"{root}/_sandbox/state", auth=DEFAULT_ADMIN, timeout=10).json()
    calls = httpx.get(f"{root}/_sandbox/calls", auth=DEFAULT_ADMIN, timeout=10).json()
    table = Table(title="What exists in UCaaS now")
    for column in ("customer", "users (active)", "licences", "meetings"):
        table.add_column(column)
    for customer in state["customers"]:
        if customer["customer_type"] == "T":
            continue
        users = [
            u
            for u in state["users"]
            if u["customer_id"] == customer["customer_id"] and u["user_type"] == "AP"
        ]
        active = sum(1 for u in users if u["status"] == "A")
        licences = sum(1 for u in users for a in u["apps"].values() if a.get("access"))
        meetings = sum(1 for m in state["meetings"] if m["customer_id"] == customer["customer_id"])
        table.add_row(
            customer["customer_name"], f"{len(users)} ({active})", str(licences), str(meetings)
        )
    console.print(table)
    console.print(
        f"{calls['total']} API calls: " + ", ".join(f"{k} x{v}" for k, v in calls["calls"].items())
    )


def main(serve: bool = False, port: int | None = None) -> int:
    console = Console()
    sandbox = LocalSandbox.start(port)
    try:
        console.rule(f"UCaaS sandbox at {sandbox.base_url}")
        outcome = asyncio.run(run_scenario(sandbox.base_url, console))
        console.rule("Summary")
        summary(sandbox.root, console)
        people = sum(len(c[5]) for c in COMPANIES)
        console.print(
            f"asked for: {len(COMPANIES)} customers, {people} users with a licence each, "
            f"1 meeting, 1 leaver; made: {outcome.customers} customers, {outcome.users} users, "
            f"{outcome.licences} licences held, {outcome.meetings} meeting; "
            f"waiting for a seat: {len(outcome.waits)}"
        )
        console.print(
            f"Look around: curl -u admin@sandbox.test:sandbox-admin {sandbox.root}/_sandbox/state"
        )
        if serve:
            console.print("[bold]--serve:[/] the sandbox keeps running; Ctrl-C to stop.")
            sandbox.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0
