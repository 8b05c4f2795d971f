"""The chaos scenario: thousands of HR, CRM and calendar events from a seeded generator.

Pure: the same seed, size and `now` give the same events. What it holds:

- companies: a few tenants (created, renamed once or twice, three purchases each: a
  meeting plan, a top-up of the same plan, a webinar plan; one purchase comes before its
  company, one company is first announced by a complete `updated`), and short-lived
  companies (created, renamed, closed);
- employees: each joins, then walks a random life (transfers, promotions, new family
  names, leaves and returns, leaving, rehire, repeats of an event id, events for people
  HR never hired); each employee's events stay in order (one key, one partition), the
  employees' lives are interleaved;
- calendars: a feed per organiser, registered by a CloudEvent, in several versions (new,
  edited, moved, cancelled, EXDATE'd and vanished occurrences) served one after another,
  then emptied (its cancels held for approval, never given), and for every second feed
  restored after that (the held cancels moot).

The licence policy: Sales gets meetings and webinars, everyone else meetings.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from connectors.hr.scim import CORE, ENTERPRISE
from tests.chaos.calendars import FeedPlan, feed_plan

Topic = Literal["hr", "crm", "calendar"]
SOURCES: dict[Topic, str] = {
    "hr": "/chaos/hr",
    "crm": "/chaos/crm",
    "calendar": "/chaos/calendar",
}
DEPARTMENTS = ("Engineering", "Sales", "Support", "Finance", "Operations")
TITLES = ("Engineer", "Manager", "Analyst", "Specialist", "Director", "Coordinator")
GIVEN = ("Ann", "Bo", "Chloé", "Dário", "Élodie", "Femi", "Gül", "Hiro", "Inès", "Jörg")
FAMILY = ("Lee", "Martin", "Müller", "Nakamura", "Okafor", "Pérez", "Quinn", "Rossi")
POLICY_TOML = 'default_apps = ["vc"]\n\n[[rules]]\ndepartment = "sales"\napps = ["vc", "wb"]\n'


@dataclass(frozen=True)
class Published:
    """One CloudEvent to publish on a topic, at a point of the run (0..1)."""

    topic: Topic
    body: dict[str, Any]
    at: float

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.body["source"]), str(self.body["id"]))


@dataclass
class Scenario:
    seed: int
    events: list[Published]  # in publishing order
    feeds: list[FeedPlan]
    tenants: list[str]
    policy_toml: str = POLICY_TOML

    @property
    def unique_ids(self) -> set[tuple[str, str]]:
        return {e.key for e in self.events}


@dataclass
class _Person:
    tenant: str
    employee_id: str
    given: str
    family: str
    middle: str | None
    department: str
    title: str
    domain: str
    mailbox: str | None = None  # a rehire under a new id keeps the first id's mailbox

    @property
    def email(self) -> str:
        return f"{(self.mailbox or self.employee_id).lower()}@{self.domain}"


@dataclass
class _Builder:
    rng: random.Random
    now: datetime
    events: list[Published] = field(default_factory=list)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, topic: Topic, type_: str, subject: str, data: dict[str, Any], at: float) -> None:
        body = {
            "specversion": "1.0",
            "id": self.new_id(),
            "source": SOURCES[topic],
            "type": type_,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
        self.events.append(Published(topic, body, at))

    def again(self, event: Published, at: float) -> None:
        """The same event (same id) delivered again, as producers that retry do."""
        self.events.append(Published(event.topic, event.body, at))


def company_data(crm_id: str, name: str, domain: str) -> dict[str, Any]:
    return {
        "company_id": crm_id,
        "name": name,
        "legal_name": f"{name} Ltd",
        "contact": {"name": "Pat Doe", "email": f"billing@{domain}"},
        "office_address": {"line1": "1 Main St", "city": "Paris", "postal_code": "75002",
                           "country": "FR"},
        "individual": False,
    }  # fmt: skip


def scim(person: _Person, *, active: bool = True) -> dict[str, Any]:
    name: dict[str, Any] = {"givenName": person.given, "familyName": person.family}
    if person.middle:
        name["middleName"] = person.middle
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": person.employee_id,
        "userName": person.email,
        "name": name,
        "emails": [{"value": person.email, "type": "work", "primary": True}],
        "active": active,
        "title": person.title,
        ENTERPRISE: {"employeeNumber": person.employee_id, "department": person.department},
        "tenant": person.tenant,
    }


def _crm(b: _Builder, tenants: int, short_lived: int, staff: int, today: date) -> list[str]:
    codes: list[str] = []
    for n in range(tenants):
        code, domain = f"CHAOS-{n + 1}", f"t{n + 1}.chaos.example"
        codes.append(code)
        data = company_data(code, f"Tenant {n + 1}", domain)
        seats = staff + 50  # every licence fits in any one of its subscriptions

        def buy(purchase: str, plan: str, at: float, code: str = code, seats: int = seats) -> None:
            bought = {"company_id": code, "purchase_id": purchase, "plan": plan,
                      "app": plan[:2], "seats": seats, "start": today.isoformat()}  # fmt: skip
            b.add("crm", "crm.subscription.purchased", code, bought, at)

        if n == 0:
            buy(f"PO-{n}-vc", "vc-pro", 0.0)  # before its company: it waits
        kind = "crm.company.updated" if n == 1 else "crm.company.created"
        b.add("crm", kind, code, data, 0.001)
        if n != 0:
            buy(f"PO-{n}-vc", "vc-pro", 0.002)
        buy(f"PO-{n}-wb", "wb-basic", 0.003)
        buy(f"PO-{n}-vc-topup", "vc-pro", b.rng.uniform(0.1, 0.6))  # same plan again
        for rename in range(b.rng.randint(1, 2)):
            renamed = {"company_id": code, "name": f"Tenant {n + 1} rev {rename + 1}"}
            b.add("crm", "crm.company.updated", code, renamed, b.rng.uniform(0.1, 0.9))
    for n in range(short_lived):
        code, domain = f"SHORT-{n + 1}", f"s{n + 1}.chaos.example"
        start = b.rng.uniform(0.0, 0.5)
        b.add("crm", "crm.company.created", code, company_data(code, f"Short {n}", domain), start)
        renamed = {"company_id": code, "name": f"Short {n} renamed"}
        b.add("crm", "crm.company.updated", code, renamed, start + 0.1)
        b.add("crm", "crm.company.closed", code, {"company_id": code}, start + 0.3)
    return codes


def _person(b: _Builder, tenant: str, index: int) -> _Person:
    rng = b.rng
    return _Person(
        tenant=tenant,
        employee_id=f"{tenant[-1]}E{index:05d}",
        given=rng.choice(GIVEN),
        family=rng.choice(FAMILY),
        middle=rng.choice((None, None, None, "Marie", "J.")),
        department=rng.choice(DEPARTMENTS),
        title=rng.choice(TITLES),
        domain=f"t{tenant.rsplit('-', 1)[1]}.chaos.example",
    )


def _life(b: _Builder, person: _Person, start: float, *, stable: bool) -> None:
    """One employee's events from `start` on, in order; `stable`: an organiser, who stays."""
    rng = b.rng
    at = start
    b.add("hr", "hr.user.joined", person.employee_id, scim(person), at)
    status = "active"
    steps = 0 if stable else rng.choices((0, 1, 2, 3, 4), (30, 25, 20, 15, 10))[0]
    for _ in range(steps):
        at += rng.uniform(0.005, 0.1)
        if rng.random() < 0.06:  # a producer's retry: the same id again
            b.again(b.events[-1], at)
            continue
        moves = {
            "active": ("updated", "updated", "leave_started", "left", "leave_ended"),
            "on_leave": ("updated", "leave_ended", "leave_ended", "left"),
            "left": ("joined", "updated", "left"),
        }[status]
        kind = rng.choice(moves)
        if kind == "left" and rng.random() < 0.5:
            # as Workday- and Entra-style feeds terminate: an update, SCIM active false
            b.add("hr", "hr.user.updated", person.employee_id, scim(person, active=False), at)
            status = "left"
            continue
        if kind in ("updated", "joined"):
            change = rng.choice(("department", "title", "family", "middle"))
            if change == "department":
                person.department = rng.choice([d for d in DEPARTMENTS if d != person.department])
            elif change == "title":
                person.title = rng.choice([t for t in TITLES if t != person.title])
            elif change == "family":
                person.family = rng.choice([f for f in FAMILY if f != person.family])
            else:
                person.middle = None if person.middle else "K."
            if kind == "joined" or status == "left":
                status = "active"  # an update of a leaver, active true, is a rehire too
        elif kind == "leave_started" and status == "active":
            status = "on_leave"
        elif kind == "leave_ended" and status == "on_leave":
            status = "active"
        elif kind == "left":
            status = "left"
        b.add("hr", f"hr.user.{kind}", person.employee_id, scim(person, active=kind != "left"), at)
    if status == "left" and rng.random() < 0.3:
        # back under a new employee id, the same work e-mail: the same UCaaS user
        back = replace(person, employee_id=f"R{person.employee_id}", mailbox=person.employee_id)
        b.add("hr", "hr.user.joined", back.employee_id, scim(back), at + rng.uniform(0.1, 0.3))


def _strangers(b: _Builder, tenant: str, count: int) -> None:
    """Events for people HR never hired here: a leaver and an inactive update (recorded,
    nothing done), an update of an active one (created as a joiner) and a leave (created,
    suspended: the SCIM user says they are employed, on leave)."""
    for n in range(count):
        person = _person(b, tenant, 90_000 + n)
        kind, active = b.rng.choice(
            (("leave_started", True), ("left", False), ("updated", False), ("updated", True))
        )
        b.add("hr", f"hr.user.{kind}", person.employee_id, scim(person, active=active),
              b.rng.uniform(0.05, 0.8))  # fmt: skip


def build(seed: int, scale: float = 1.0, *, now: datetime | None = None) -> Scenario:
    """About 2,300 events at scale 1 (1,000 employees over 3 tenants, 3 feeds)."""
    now = now or datetime.now(UTC)
    b = _Builder(random.Random(seed), now)
    tenants_n, employees = 3, round(1000 * scale)
    staff = -(-employees // tenants_n)
    tenants = _crm(b, tenants_n, short_lived=2, staff=staff + 50, today=now.date())
    feeds: list[FeedPlan] = []
    feeds_n = max(1, round(3 * scale))
    for n in range(employees):
        tenant = tenants[n % tenants_n]
        person = _person(b, tenant, n)
        organiser = n < feeds_n
        _life(b, person, b.rng.uniform(0.005, 0.7) if not organiser else 0.004, stable=organiser)
        if organiser:
            feed_id = f"feed-{n + 1}"
            restored = n % 2 == 1  # the others end emptied, their cancels held
            plan = feed_plan(feed_id, person.email, tenant, now, b.rng, scale, restored=restored)
            feeds.append(plan)
            registered = {"feed_id": feed_id, "url": "", "organizer_email": person.email,
                          "tenant": tenant}  # fmt: skip
            b.add("calendar", "calendar.feed.registered", feed_id, registered, 0.005)
    for tenant in tenants:
        _strangers(b, tenant, max(2, round(10 * scale)))
    b.events.sort(key=lambda e: e.at)  # stable: one entity's events keep their order
    return Scenario(seed, b.events, feeds, tenants)


def with_feed_urls(scenario: Scenario, urls: dict[str, str]) -> None:
    """The registrations point at the feeds' servers (known once those are up)."""
    for event in scenario.events:
        if event.body["type"] == "calendar.feed.registered":
            event.body["data"]["url"] = urls[event.body["data"]["feed_id"]]
