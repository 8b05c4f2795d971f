"""Commands as translation will produce them, for tests and benchmarks that start at the
outbox."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Literal

from service.domain.commands import (
    Address,
    App,
    AssignLicence,
    CancelMeeting,
    CloseCustomer,
    Command,
    CreateCustomer,
    CreateSubscription,
    CreateUser,
    CustomerProfile,
    MeetingSpec,
    ReactivateUser,
    ReopenCustomer,
    RevokeLicence,
    ScheduleMeeting,
    SetSubscriptionSeats,
    SetSubscriptionStatus,
    SuspendUser,
    UpdateCustomer,
    UpdateMeeting,
    UpdateUser,
    UserProfile,
)
from service.outbox.unit_of_work import EventRecord

_events = itertools.count(1)


def event(source: str = "test", **kwargs: str) -> EventRecord:
    return EventRecord(source=source, event_id=f"evt-{next(_events)}", type="test.event", **kwargs)


def create_customer(crm_id: str, name: str | None = None) -> Command:
    name = name or f"Company {crm_id}"
    return Command.of(
        CreateCustomer(
            crm_id=crm_id,
            profile=CustomerProfile(
                customer_name=name,
                customer_legal_name=f"{name} Ltd",
                contact_name="Pat Contact",
                contact_email=f"billing@{crm_id.lower()}.example",
                office_address=Address(address_1="1 Main St", city="Lyon", country="FR"),
            ),
        )
    )


def close_customer(crm_id: str, status: Literal["C", "S"] = "C") -> Command:
    return Command.of(CloseCustomer(crm_id=crm_id, status=status))


def reopen_customer(crm_id: str) -> Command:
    return Command.of(ReopenCustomer(crm_id=crm_id))


def update_customer(crm_id: str, **changes: object) -> Command:
    return Command.of(UpdateCustomer(crm_id=crm_id, changes=changes))


def create_subscription(
    crm_id: str, seats: int = 50, plan_id: str = "vc-basic", purchase: str = "p1"
) -> Command:
    return Command.of(
        CreateSubscription(
            crm_id=crm_id,
            purchase_id=f"{crm_id}-{purchase}",
            plan_id=plan_id,
            app="vc" if plan_id.startswith("vc") else "wb",
            seats=seats,
            start=datetime.now(UTC).date(),
        )
    )


def set_subscription_status(
    crm_id: str, status: Literal["A", "S", "X"], purchase: str = "p1"
) -> Command:
    return Command.of(
        SetSubscriptionStatus(crm_id=crm_id, purchase_id=f"{crm_id}-{purchase}", status=status)
    )


def set_subscription_seats(crm_id: str, seats: int, purchase: str = "p1") -> Command:
    return Command.of(
        SetSubscriptionSeats(crm_id=crm_id, purchase_id=f"{crm_id}-{purchase}", seats=seats)
    )


def email_of(tenant: str, employee_id: str) -> str:
    return f"{employee_id.lower()}@{tenant.lower()}.example"


def create_user(tenant: str, employee_id: str, **profile: str) -> Command:
    fields = {"email": email_of(tenant, employee_id), "first_name": "Emp", "last_name": employee_id}
    fields.update(profile)
    return Command.of(
        CreateUser(tenant=tenant, employee_id=employee_id, profile=UserProfile(**fields))
    )


def update_user(tenant: str, employee_id: str, **changes: str) -> Command:
    return Command.of(
        UpdateUser(
            tenant=tenant,
            employee_id=employee_id,
            email=email_of(tenant, employee_id),
            changes=changes,
        )
    )


def assign(tenant: str, employee_id: str, app: App = "vc") -> Command:
    return Command.of(AssignLicence(tenant=tenant, employee_id=employee_id, app=app))


def revoke(tenant: str, employee_id: str, app: App = "vc") -> Command:
    return Command.of(RevokeLicence(tenant=tenant, employee_id=employee_id, app=app))


def suspend(tenant: str, employee_id: str) -> Command:
    return Command.of(SuspendUser(tenant=tenant, employee_id=employee_id))


def reactivate(tenant: str, employee_id: str) -> Command:
    return Command.of(ReactivateUser(tenant=tenant, employee_id=employee_id))


def meeting_spec(name: str = "Weekly sync", days: int = 2, duration: int = 30) -> MeetingSpec:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    return MeetingSpec(
        room_name=name,
        desc="Agenda",
        start_time=start,
        zone="Europe/Paris",
        duration=duration,
        moderators=1,
        participants=5,
    )


def schedule(tenant: str, key: str, organizer: str, spec: MeetingSpec | None = None) -> Command:
    return Command.of(
        ScheduleMeeting(
            meeting_key=key,
            tenant=tenant,
            organizer_email=organizer,
            meeting=spec or meeting_spec(),
        )
    )


def update_meeting(tenant: str, key: str, organizer: str, spec: MeetingSpec) -> Command:
    return Command.of(
        UpdateMeeting(meeting_key=key, tenant=tenant, organizer_email=organizer, meeting=spec)
    )


def cancel(tenant: str, key: str, organizer: str) -> Command:
    return Command.of(CancelMeeting(meeting_key=key, tenant=tenant, organizer_email=organizer))


def onboarding(tenant: str, employees: int, seats: int = 50) -> list[Command]:
    """A customer, its subscription, and employees with a licence each."""
    commands = [create_customer(tenant), create_subscription(tenant, seats=seats)]
    for n in range(employees):
        employee = f"E{n:04d}"
        commands += [create_user(tenant, employee), assign(tenant, employee)]
    return commands
