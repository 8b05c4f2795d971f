"""The demo's scenario: the CloudEvents HR, CRM and a calendar would send, built from a
seeded random generator. Pure: no I/O, the same seed and `now` give the same events.

Two companies in two countries buy a subscription each; fifty employees join across
five departments; a few are updated (a transfer, a promotion, a new family name); one goes
on leave and comes back; two leave; one employee's calendar is registered as a feed.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

SEED = 20_261
SOURCES = {"hr": "/demo/hr/workday", "crm": "/demo/crm/salesforce", "calendar": "/demo/calendar"}
SCIM_CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
TITLES = {
    "Engineering": ("Software Engineer", "Senior Engineer", "Site Reliability Engineer"),
    "Sales": ("Account Executive", "Sales Manager", "Business Developer"),
    "Support": ("Support Specialist", "Customer Success Manager"),
    "Finance": ("Accountant", "Financial Controller"),
    "Operations": ("Operations Analyst", "Office Manager", "Logistics Coordinator"),
}
DEPARTMENTS = tuple(TITLES)

Stream = Literal["hr", "crm", "calendar"]
STEP_DAYS = {None: 0, "DAILY": 1, "WEEKLY": 7}


@dataclass(frozen=True)
class Company:
    crm_id: str
    name: str
    legal_name: str
    contact: tuple[str, str]  # name, e-mail
    address: dict[str, str]
    domain: str
    plan: str
    seats: int
    staff: int
    given_names: tuple[str, ...]
    family_names: tuple[str, ...]


COMPANIES = (
    Company(
        crm_id="CRM-1001",
        name="Acme Robotique",
        legal_name="Acme Robotique SAS",
        contact=("Hélène Marchand", "facturation@acme-robotique.example"),
        address={"line1": "12 rue de la Paix", "city": "Paris", "postal_code": "75002",
                 "country": "FR"},
        domain="acme-robotique.example",
        plan="vc-pro",
        seats=35,
        staff=30,
        given_names=("Amélie", "Chloé", "Élodie", "Hélène", "Léa", "Zoé", "Anaïs", "Jérôme",
                     "François", "Gaël", "Loïc", "Benoît", "Noël", "Raphaël", "Clément",
                     "Maëlle", "Inès", "Cédric"),
        family_names=("Dubois", "Lefèvre", "Moreau", "Girard", "Bélanger", "Côté", "Fournier",
                      "Mercier", "Lemaître", "Rousseau", "Chevalier", "Gauthier", "Dupré",
                      "Hébert", "Ménard", "Leclère"),
    ),
    Company(
        crm_id="CRM-2002",
        name="Nordlicht Logistik",
        legal_name="Nordlicht Logistik GmbH",
        contact=("Jürgen Weiß", "einkauf@nordlicht-logistik.example"),
        address={"line1": "Große Elbstraße 145", "city": "Hamburg", "postal_code": "22767",
                 "country": "DE"},
        domain="nordlicht-logistik.example",
        plan="vc-basic",
        seats=25,
        staff=20,
        given_names=("Jürgen", "Jörg", "Björn", "Sören", "Käthe", "Günter", "Bärbel", "Uwe",
                     "Lena", "Jonas", "Mia", "Lukas", "Anja", "Tobias", "Hannelore", "Malte"),
        family_names=("Müller", "Schäfer", "Köhler", "Krüger", "Bäcker", "Weiß", "Schröder",
                      "Böhm", "Jäger", "Groß", "Hoffmann", "Vogel", "Lührs", "Strauß"),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Employee:
    tenant: str
    employee_id: str
    given: str
    family: str
    department: str
    title: str
    email: str


@dataclass(frozen=True)
class Event:
    stream: Stream
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body["type"])


@dataclass(frozen=True)
class Phase:
    title: str
    events: tuple[Event, ...]
    notes: tuple[str, ...] = ()  # who is who, for the screen


@dataclass(frozen=True)
class Series:
    """One VEVENT: a single meeting or a DAILY/WEEKLY series of `count`, some left out."""

    uid: str
    summary: str
    first: datetime  # aware, in `tzid`
    tzid: str
    minutes: int
    freq: Literal["DAILY", "WEEKLY"] | None = None
    count: int = 1
    skipped: tuple[int, ...] = ()  # EXDATEs: positions in the series left out
    cancelled: bool = False  # STATUS:CANCELLED
    sequence: int = 0
    attendees: tuple[str, ...] = ()
    description: str | None = None

    def starts(self) -> list[datetime]:
        """Every start the RRULE makes (wall-clock days: the local time holds over DST)."""
        step = STEP_DAYS[self.freq]
        return [self.first + timedelta(days=i * step) for i in range(self.count)]

    def occurrences(self) -> list[datetime]:
        """The meetings this event asks for."""
        if self.cancelled:
            return []
        return [start for i, start in enumerate(self.starts()) if i not in self.skipped]


@dataclass(frozen=True)
class Scenario:
    companies: tuple[Company, ...]
    employees: tuple[Employee, ...]
    organiser: Employee
    phases: tuple[Phase, ...]
    feed_id: str
    calendar: tuple[tuple[Series, ...], ...]  # the feed's versions, served one after another

    @property
    def events(self) -> list[Event]:
        return [event for phase in self.phases for event in phase.events]


def ascii_local(text: str) -> str:
    """An e-mail local part from a name: accents folded, ß as ss, lower case."""
    text = text.replace("ß", "ss").replace("ẞ", "SS")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c in "-.")


class _Ids:
    """CloudEvent ids from the seeded generator: the same scenario, the same ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def cloudevent(
    stream: Stream, type_: str, subject: str, data: dict[str, Any], event_id: str, now: datetime
) -> Event:
    return Event(
        stream,
        {
            "specversion": "1.0",
            "id": event_id,
            "source": SOURCES[stream],
            "type": type_,
            "subject": subject,
            "time": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": data,
        },
    )


def scim_user(employee: Employee, organisation: str, *, active: bool = True) -> dict[str, Any]:
    """A SCIM 2.0 User (core + enterprise) with our contract's `tenant`."""
    return {
        "schemas": [SCIM_CORE, SCIM_ENTERPRISE],
        "externalId": employee.employee_id,
        "userName": employee.email,
        "name": {"givenName": employee.given, "familyName": employee.family},
        "displayName": f"{employee.given} {employee.family}",
        "emails": [{"value": employee.email, "type": "work", "primary": True}],
        "active": active,
        "title": employee.title,
        SCIM_ENTERPRISE: {
            "employeeNumber": employee.employee_id,
            "department": employee.department,
            "organization": organisation,
        },
        "tenant": employee.tenant,
    }


def company_data(company: Company) -> dict[str, Any]:
    return {
        "company_id": company.crm_id,
        "name": company.name,
        "legal_name": company.legal_name,
        "contact": {"name": company.contact[0], "email": company.contact[1]},
        "office_address": company.address,
        "individual": False,
    }


def staff_of(company: Company, number: int, rng: random.Random) -> list[Employee]:
    people: list[Employee] = []
    taken: set[str] = set()
    while len(people) < company.staff:
        given, family = rng.choice(company.given_names), rng.choice(company.family_names)
        local = f"{ascii_local(given)}.{ascii_local(family)}"
        if local in taken:
            continue
        taken.add(local)
        department = DEPARTMENTS[len(people) % len(DEPARTMENTS)]  # every department staffed
        people.append(
            Employee(
                tenant=company.crm_id,
                employee_id=f"E{number}{len(people) + 1:03d}",
                given=given,
                family=family,
                department=department,
                title=rng.choice(TITLES[department]),
                email=f"{local}@{company.domain}",
            )
        )
    return people


def build(now: datetime, feed_url: str, *, seed: int = SEED) -> Scenario:
    """The whole scenario; `feed_url` is where the organiser's calendar is served."""
    rng = random.Random(seed)
    new_id = _Ids(rng)
    names = {c.crm_id: c.name for c in COMPANIES}
    crm: list[Event] = []
    for company in COMPANIES:
        crm.append(
            cloudevent("crm", "crm.company.created", company.crm_id, company_data(company),
                       new_id(), now)
        )  # fmt: skip
        purchase = {
            "company_id": company.crm_id,
            "purchase_id": f"PO-{company.crm_id[4:]}-01",
            "plan": company.plan,
            "app": "vc",
            "seats": company.seats,
            "start": now.date().isoformat(),
        }
        crm.append(
            cloudevent("crm", "crm.subscription.purchased", company.crm_id, purchase, new_id(), now)
        )
    staff = [e for n, c in enumerate(COMPANIES, 1) for e in staff_of(c, n, rng)]
    rng.shuffle(staff)  # HR sends joiners of both companies interleaved
    organiser = next(e for e in staff if e.tenant == COMPANIES[0].crm_id)

    def hr(type_: str, employee: Employee, *, active: bool = True) -> Event:
        data = scim_user(employee, names[employee.tenant], active=active)
        return cloudevent("hr", type_, employee.employee_id, data, new_id(), now)

    joiners = [hr("hr.user.joined", e) for e in staff]
    others = [e for e in staff if e != organiser]
    moved, promoted, renamed, on_leave, *leavers = rng.sample(others, 6)
    moves = [
        replace(moved, department=_other(moved.department, rng)),
        replace(promoted, title=f"Head of {promoted.department}"),
        replace(renamed, family=_other(renamed.family, rng, _family_names(renamed))),
    ]
    changes = [hr("hr.user.updated", e) for e in moves]
    changes += [hr("hr.user.leave_started", on_leave), hr("hr.user.leave_ended", on_leave)]
    changes += [hr("hr.user.left", e, active=False) for e in leavers]
    feed_id = f"{organiser.tenant.lower()}-{organiser.employee_id.lower()}"
    registered = cloudevent(
        "calendar",
        "calendar.feed.registered",
        feed_id,
        {"feed_id": feed_id, "url": feed_url, "organizer_email": organiser.email,
         "tenant": organiser.tenant},
        new_id(),
        now,
    )  # fmt: skip
    notes = (
        f"{moved.given} {moved.family} moves to {moves[0].department}",
        f"{promoted.given} {promoted.family} becomes {moves[1].title}",
        f"{renamed.given} {renamed.family} is now {renamed.given} {moves[2].family}",
        f"{on_leave.given} {on_leave.family} goes on leave and comes back",
        *(f"{e.given} {e.family} leaves" for e in leavers),
    )
    phases = (
        Phase("CRM: 2 companies created, a subscription each", tuple(crm)),
        Phase(f"HR: {len(joiners)} employees join", tuple(joiners)),
        Phase("HR: 3 updates, a leave and a return, 2 leavers", tuple(changes), notes),
        Phase(f"Calendar: {organiser.given} {organiser.family}'s feed registered", (registered,)),
    )
    calendar = calendar_versions(organiser, staff, now)
    return Scenario(COMPANIES, tuple(staff), organiser, phases, feed_id, calendar)


def calendar_versions(
    organiser: Employee, staff: list[Employee], now: datetime
) -> tuple[tuple[Series, ...], tuple[Series, ...]]:
    """The organiser's calendar, then the same with the one-off review cancelled."""
    paris = ZoneInfo("Europe/Paris")
    day = now.astimezone(paris).date() + timedelta(days=1)

    def at(days: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hour, minute), tzinfo=paris)

    team = tuple(e.email for e in staff if e.tenant == organiser.tenant and e != organiser)[:4]
    guests = tuple(e.email for e in staff if e.tenant != organiser.tenant)[:2]
    weekly = Series("weekly-product@demo", "Revue produit hebdomadaire", at(0, 10), "Europe/Paris",
                    60, "WEEKLY", count=4, attendees=team,
                    description="Roadmap, risques, décisions")  # fmt: skip
    standup = Series("standup@demo", "Daily stand-up", at(0, 9, 15), "Europe/Paris", 15,
                     "DAILY", count=5, skipped=(2,), attendees=team)  # fmt: skip
    review = Series("qbr-nordlicht@demo", "Quarterly business review", at(2, 14), "Europe/Paris",
                    45, attendees=team[:1] + guests)  # fmt: skip
    first = (weekly, standup, review)
    return first, (weekly, standup, replace(review, cancelled=True, sequence=1))


def _family_names(employee: Employee) -> tuple[str, ...]:
    return next(c.family_names for c in COMPANIES if c.crm_id == employee.tenant)


def _other(current: str, rng: random.Random, among: tuple[str, ...] = DEPARTMENTS) -> str:
    return rng.choice([value for value in among if value != current])
