"""A field the source system removes is removed in UCaaS too (found by the chaos suite: a
dropped `middleName` stayed, as the PATCH left out the field it should have emptied).

Events go through the service's own intake, the dispatcher sends the commands to the
sandbox over HTTP, and the sandbox's state is read back; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.events.cloudevents import Envelope
from connectors.hr.scim import ENTERPRISE
from service.app.bootstrap import Service
from service.devtools import sample_commands as c
from tests.support.kafka import envelope as parsed
from tests.support.sandbox_server import SandboxAdmin

TENANT = "CRM-CLR"
_ids = itertools.count()


def envelope(type_: str, subject: str, data: dict[str, Any]) -> Envelope:
    return parsed(type_, subject, data, event_id=f"clear-{next(_ids)}", source="/test/clearing")


def employee(kind: str, name: dict[str, str], **fields: Any) -> Envelope:
    enterprise = {"employeeNumber": "E1", **fields.pop("enterprise", {})}
    data = {
        "userName": "ann.lee@clear.example",
        "name": name,
        ENTERPRISE: enterprise,
        "tenant": TENANT,
        **fields,
    }
    return envelope(f"hr.user.{kind}", "E1", data)


def purchase() -> Envelope:
    data = {"purchase_id": "PO-1", "plan": "vc-basic", "app": "vc", "seats": 5}
    return envelope("crm.subscription.purchased", TENANT, data | {"start": str(date.today())})


COMPANY = {
    "name": "Clearing Co",
    "legal_name": "Clearing Co SAS",
    "contact": {"name": "Paul Martin", "email": "billing@clear.example"},
    "office_address": {"line1": "12 rue de la Paix", "city": "Paris", "country": "FR"},
}


async def take(service: Service, *envelopes: Envelope) -> None:
    taken = await service.intake.take(list(envelopes))
    assert [t.outcome for t in taken] == ["accepted"] * len(envelopes), taken
    await service.dispatcher.run_until_idle()


def sandbox_user(sandbox: SandboxAdmin, email: str) -> dict[str, Any]:
    [user] = [u for u in sandbox.state()["users"] if u["email"] == email]
    return user


async def test_removed_optional_profile_fields_are_cleared_in_ucaas(
    service: Service, sandbox: SandboxAdmin
) -> None:
    await take(service, envelope("crm.company.created", TENANT, COMPANY), purchase())
    full = {"givenName": "Ann", "middleName": "Quincy", "familyName": "Lee"}
    await take(
        service,
        employee("joined", full, title="Engineer", enterprise={"department": "R&D"}),
    )
    user = sandbox_user(sandbox, "ann.lee@clear.example")
    assert (user["middle_name"], user["designation"], user["department"]) == (
        "Quincy",
        "Engineer",
        "R&D",
    )

    # HR drops the middle name, the title and the department (a SCIM update carries the
    # whole profile: what is absent is gone)
    await take(service, employee("updated", {"givenName": "Ann", "familyName": "Lee"}))
    user = sandbox_user(sandbox, "ann.lee@clear.example")
    assert user["middle_name"] is None
    assert user["designation"] is None
    assert user["department"] is None
    assert (user["first_name"], user["last_name"]) == ("Ann", "Lee")  # the rest is kept

    # and the family name too; a field that comes back is set again
    await take(service, employee("updated", {"givenName": "Ann", "middleName": "Q"}))
    user = sandbox_user(sandbox, "ann.lee@clear.example")
    assert (user["first_name"], user["middle_name"], user["last_name"]) == ("Ann", "Q", None)


async def test_a_status_change_leaves_the_profile_alone(
    service: Service, sandbox: SandboxAdmin
) -> None:
    """Fields not given are not cleared: only a removed field is."""
    await service.uow.accept(
        c.event(),
        [
            c.create_customer(TENANT),
            c.create_user(TENANT, "E1", middle_name="Quincy", department="R&D"),
            c.suspend(TENANT, "E1"),
        ],
    )
    await service.dispatcher.run_until_idle()
    user = sandbox_user(sandbox, c.email_of(TENANT, "E1"))
    assert (user["status"], user["middle_name"], user["department"]) == ("S", "Quincy", "R&D")


async def test_invitees_removed_from_the_calendar_are_removed_from_the_meeting(
    service: Service, sandbox: SandboxAdmin
) -> None:
    organizer = c.email_of(TENANT, "E0000")  # the employee onboarding makes
    spec = c.meeting_spec().model_copy(update={"invitees": ("guest@clear.example",)})
    await service.uow.accept(c.event(), c.onboarding(TENANT, employees=1))
    await service.dispatcher.run_until_idle()
    await service.uow.accept(c.event(), [c.schedule(TENANT, "feed:uid-1", organizer, spec)])
    await service.dispatcher.run_until_idle()
    [meeting] = sandbox.state()["meetings"]
    assert meeting["invitees"]["emails"] == ["guest@clear.example"]

    later = spec.model_copy(
        update={"invitees": (), "start_time": spec.start_time + timedelta(hours=1)}
    )
    await service.uow.accept(c.event(), [c.update_meeting(TENANT, "feed:uid-1", organizer, later)])
    await service.dispatcher.run_until_idle()
    [meeting] = sandbox.state()["meetings"]
    assert not meeting["invitees"].get("emails")
    start = datetime.fromisoformat(meeting["start_time"]).astimezone(UTC)
    assert start == later.start_time  # the update itself went through
