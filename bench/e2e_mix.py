"""The end-to-end benchmark's events: a seeded mix of HR and CRM CloudEvents across
several tenants, built with the demo scenario's builders (service/devtools/demo/scenario.py).

Every tenant's company is created and buys a vc subscription first (the onboarding,
published before the mix). Then employees
join at random times and live on: about half get a profile update (a transfer, a
promotion, a new family name), some a leave and a return, some leave, a few of those are
hired again; companies change their contact now and then. Each employee's events keep
their order; the streams of all employees interleave. Tenants differ in size (a long
tail), as a service provider's customers do.

Proportions of 20,000 events, near enough: 51% joined (rehires included), 35% updated,
4% + 4% leave started / ended, 6% left, 0.1% company updated; any prefix of a few hundred
events has about the same mix.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import count
from typing import Any

from service.devtools.demo.scenario import (
    COMPANIES,
    DEPARTMENTS,
    TITLES,
    Company,
    Employee,
    Event,
    Stream,
    ascii_local,
    cloudevent,
    company_data,
    scim_user,
)

SEED = 7_2026


@dataclass(frozen=True)
class Mix:
    tenants: tuple[Company, ...]
    onboarding: tuple[Event, ...]  # each tenant's company created, then its subscription
    events: tuple[Event, ...]  # the mixed events after that, in the order published

    def kinds(self, events: tuple[Event, ...] | None = None) -> dict[str, int]:
        return dict(Counter(e.type for e in (self.events if events is None else events)))


def tenant(number: int) -> Company:
    base = COMPANIES[number % len(COMPANIES)]
    domain = f"t{number:02d}.{base.domain}"
    return replace(
        base,
        crm_id=f"CRM-{3000 + number}",
        name=f"{base.name} {number:02d}",
        legal_name=f"{base.legal_name} {number:02d}",
        contact=(base.contact[0], f"billing@{domain}"),  # a contact belongs to one customer
        domain=domain,
    )


class _Builder:
    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.ids = count()
        self.timed: list[tuple[float, int, Event]] = []
        self.first: list[Event] = []

    def add(
        self, at: float | None, stream: Stream, type_: str, subject: str, data: dict[str, Any]
    ) -> None:
        """An event at time `at` (0..1 and a little beyond), or first (None)."""
        number = next(self.ids)
        event = cloudevent(stream, type_, subject, data, f"bench-{number:07d}", self.now)
        if at is None:
            self.first.append(event)
        else:
            self.timed.append((at, number, event))

    def life(self, company: Company, employee: Employee) -> int:
        """One employee's events from a random start; how many."""
        rng = self.rng
        at = rng.random()

        def hr(kind: str, who: Employee, *, active: bool = True) -> None:
            data = scim_user(who, company.name, active=active)
            self.add(at, "hr", f"hr.user.{kind}", who.employee_id, data)

        hr("joined", employee)
        made = 1
        for _ in range(rng.choices((0, 1, 2), (45, 40, 15))[0]):
            at += rng.uniform(0.001, 0.03)
            employee = self.changed(company, employee)
            hr("updated", employee)
            made += 1
        if rng.random() < 0.08:
            at += rng.uniform(0.001, 0.03)
            hr("leave_started", employee)
            at += rng.uniform(0.001, 0.03)
            hr("leave_ended", employee)
            made += 2
        if rng.random() < 0.12:
            at += rng.uniform(0.001, 0.03)
            hr("left", employee, active=False)
            made += 1
            if rng.random() < 0.1:  # hired again later
                at += rng.uniform(0.005, 0.05)
                hr("joined", employee)
                made += 1
        return made

    def changed(self, company: Company, employee: Employee) -> Employee:
        rng = self.rng
        what = rng.random()
        if what < 0.5:
            department = rng.choice([d for d in DEPARTMENTS if d != employee.department])
            return replace(employee, department=department, title=rng.choice(TITLES[department]))
        if what < 0.85:
            return replace(employee, title=f"Senior {employee.title.removeprefix('Senior ')}")
        family = rng.choice([f for f in company.family_names if f != employee.family])
        return replace(employee, family=family)  # the e-mail stays: the API cannot edit it


def build(total: int, tenants: int = 20, *, seed: int = SEED, now: datetime | None = None) -> Mix:
    """The tenants' onboarding, then `total` mixed events, in the order they are published."""
    rng = random.Random(seed)
    builder = _Builder(rng, now or datetime.now(UTC))
    companies = tuple(tenant(n) for n in range(tenants))
    weights = [1 / (n + 1) ** 0.7 for n in range(tenants)]  # a long tail of smaller tenants
    staff: Counter[str] = Counter()
    made = 0
    for number in count():
        if made >= total:
            break
        company = rng.choices(companies, weights)[0]
        given, family = rng.choice(company.given_names), rng.choice(company.family_names)
        department = rng.choice(DEPARTMENTS)
        employee = Employee(
            tenant=company.crm_id,
            employee_id=f"{company.crm_id[4:]}-E{number:06d}",
            given=given,
            family=family,
            department=department,
            title=rng.choice(TITLES[department]),
            email=f"{ascii_local(given)}.{ascii_local(family)}.{number}@{company.domain}",
        )
        staff[company.crm_id] += 1
        made += builder.life(company, employee)
    for company in companies:
        # onboarding comes first; updates of the contact are spread over the run
        builder.add(None, "crm", "crm.company.created", company.crm_id, company_data(company))
        purchase = {
            "company_id": company.crm_id,
            "purchase_id": f"PO-{company.crm_id[4:]}-01",
            "plan": company.plan,
            "app": "vc",
            "seats": staff[company.crm_id] + 10,
            "start": builder.now.date().isoformat(),
        }
        builder.add(None, "crm", "crm.subscription.purchased", company.crm_id, purchase)
        for step in range(max(1, staff[company.crm_id] // 400)):
            contact = {"name": f"Contact {step}", "email": f"billing{step}@{company.domain}"}
            data = {"company_id": company.crm_id, "contact": contact}
            builder.add(rng.random(), "crm", "crm.company.updated", company.crm_id, data)
    ordered = sorted(builder.timed, key=lambda item: (item[0], item[1]))
    return Mix(companies, tuple(builder.first), tuple(e for _, _, e in ordered[:total]))
