"""detect and with_repairs: mappings against what UCaaS answers, and the fixing commands.

Pure: the pushed states are what the executors write, the observed objects are the
client's models as the sandbox answers them. A fixed `now` throughout.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from connectors.ucaas.models.customers import Customer
from connectors.ucaas.models.meetings import Meeting
from connectors.ucaas.models.subscriptions import Subscription
from connectors.ucaas.models.users import User
from service.domain.commands import Command, Kind, MeetingSpec, parse_payload
from service.reconcile import (
    SOURCE,
    Drift,
    MeetingOwner,
    Observed,
    OpenCommand,
    Pushed,
    RepairStatus,
    Report,
    What,
    detect,
    with_repairs,
)
from service.reconcile.repair import reopens
from service.reconcile.shell import UnknownKindError, kinds_of

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TENANT = "CRM-1"
OFFICE = {"address_1": "1 Main St", "city": "Lyon", "country": "FR"}
CUSTOMER_STATE = {
    "customer_name": "Acme",
    "customer_legal_name": "Acme Ltd",
    "contact_name": "Pat Contact",
    "contact_email": "billing@acme.example",
    "office_address": OFFICE,
}
USER_STATE = {"email": "ann@acme.example", "first_name": "Ann", "last_name": "Lee", "status": "A"}
SPEC = MeetingSpec(
    room_name="Weekly sync",
    desc="Agenda",
    start_time=NOW + timedelta(days=2),
    zone="Europe/Paris",
    duration=30,
    moderators=1,
    participants=2,
    invitees=("bob@acme.example",),
)
SUB_STATE = {
    "crm_id": TENANT,
    "purchase_id": "P1",
    "plan_id": "vc-basic",
    "app": "vc",
    "seats": 10,
    "start": "2026-01-05",
}
REFS = {"feed:uid:1": MeetingOwner("ann@acme.example", "vc")}


def pushed_all(**overrides: dict[str, Any]) -> list[Pushed]:
    states: dict[str, dict[str, Any]] = {
        "customer": CUSTOMER_STATE,
        "subscription": SUB_STATE,
        "user": USER_STATE,
        "licence": {"app": "vc"},
        "meeting": SPEC.model_dump(mode="json"),
    }
    states.update(overrides)
    return [
        Pushed("customer", TENANT, TENANT, "c1", TENANT, states["customer"]),
        Pushed("subscription", TENANT, "P1", "s1", "vc", states["subscription"]),
        Pushed("user", TENANT, "E1", "u1", "ann@acme.example", states["user"]),
        Pushed("licence", TENANT, "E1:vc", "s1", "vc", states["licence"]),
        Pushed("meeting", TENANT, "feed:uid:1", "m1", "u1", states["meeting"]),
    ]


def customer(**changes: Any) -> Customer:
    fields = {**CUSTOMER_STATE, "office_address": {**OFFICE, "country": "France"}}
    return Customer.model_validate(
        {"customer_id": "c1", "customer_code": TENANT, "status": "A", **fields, **changes}
    )


def subscription(qty: int = 10, status: str = "A") -> Subscription:
    return Subscription.model_validate(
        {
            "subscription_id": "s1",
            "plan_id": "vc-basic",
            "subscription": {"status": status},
            "user_license": {"qty": qty, "used": 1},
        }
    )


def user(vc: bool = True, **changes: Any) -> User:
    licence = {"access": vc, "status": "A" if vc else "R"}
    return User.model_validate({"user_id": "u1", **USER_STATE, "vc": licence, **changes})


def meeting(**changes: Any) -> Meeting:
    data = {
        "meeting_id": "m1",
        "user_id": "u1",
        "room_name": "Weekly sync",
        "desc": "Agenda",
        "start_time": SPEC.start_time.strftime("%Y-%m-%d %H:%M:%S"),
        "duration": 30,
        "moderators": 1,
        "participants": 2,
        "invitees": {"emails": ["bob@acme.example"]},
    }
    return Meeting.model_validate({**data, **changes})


def observed(**overrides: Any) -> Observed:
    found: dict[str, Any] = {
        "customers": {"c1": customer()},
        "subscriptions": {"s1": subscription()},
        "users": {"u1": user()},
        "meetings": {"m1": meeting()},
    }
    found.update(overrides)
    return Observed(**found)


def repaired(drifts: list[Drift], **kwargs: Any) -> list[Drift]:
    return with_repairs(
        drifts, refs=kwargs.get("refs", REFS), open_commands=kwargs.get("open", {}), now=NOW
    )


def kinds(drift: Drift) -> list[str]:
    return [c.kind.value for c in drift.repair or ()]


def only(drifts: list[Drift], kind: str) -> Drift:
    [found] = [d for d in drifts if d.kind == kind]
    return found


# -- in step --------------------------------------------------------------------------------
def test_everything_in_step_is_no_drift() -> None:
    comparison = detect(pushed_all(), observed(), NOW)
    assert (comparison.checked, comparison.drifts) == (5, [])


def test_fields_never_pushed_are_not_compared() -> None:
    extra = user(department="Sales", designation="Lead")  # the service set neither
    assert detect(pushed_all(), observed(users={"u1": extra}), NOW).drifts == []


def test_a_meeting_that_has_ended_is_not_checked() -> None:
    past = SPEC.model_copy(update={"start_time": NOW - timedelta(hours=2)})
    comparison = detect(
        pushed_all(meeting=past.model_dump(mode="json")), observed(meetings={}), NOW
    )
    assert (comparison.checked, comparison.drifts) == (4, [])


# -- users and licences -----------------------------------------------------------------------
def test_a_renamed_user_is_updated_back() -> None:
    drifts = repaired(
        detect(pushed_all(), observed(users={"u1": user(first_name="Anne")}), NOW).drifts
    )
    drift = only(drifts, "user")
    assert (drift.what, drift.entity, dict(drift.fields)) == (
        What.DIFFERS,
        "user:CRM-1:E1",
        {"first_name": ("Ann", "Anne")},
    )
    assert drift.status is RepairStatus.PLANNED
    [command] = drift.repair or ()
    assert command.as_json()["payload"] == {
        "tenant": TENANT,
        "employee_id": "E1",
        "email": "ann@acme.example",
        "changes": {"first_name": "Ann"},
    }


@pytest.mark.parametrize(
    ("pushed", "actual", "kind"),
    [("A", "S", Kind.REACTIVATE_USER), ("S", "A", Kind.SUSPEND_USER)],
)
def test_a_status_changed_behind_our_back_is_restored(pushed: str, actual: str, kind: Kind) -> None:
    mappings = pushed_all(user={**USER_STATE, "status": pushed})
    drifts = repaired(detect(mappings, observed(users={"u1": user(status=actual)}), NOW).drifts)
    drift = only(drifts, "user")
    assert dict(drift.fields) == {"status": (pushed, actual)}
    assert kinds(drift) == [kind.value]


def test_an_email_change_cannot_be_repaired() -> None:
    moved = user(email="ann.lee@elsewhere.example")
    drift = only(repaired(detect(pushed_all(), observed(users={"u1": moved}), NOW).drifts), "user")
    assert drift.repair is None
    assert drift.status is RepairStatus.NONE
    assert drift.reason is not None and "e-mail" in drift.reason


def test_emails_compare_without_case() -> None:
    shouting = user(email="ANN@ACME.EXAMPLE")
    assert detect(pushed_all(), observed(users={"u1": shouting}), NOW).drifts == []


def test_an_unassigned_licence_is_assigned_again() -> None:
    drifts = repaired(detect(pushed_all(), observed(users={"u1": user(vc=False)}), NOW).drifts)
    [drift] = drifts
    assert (drift.kind, drift.what, drift.entity) == ("licence", What.MISSING, "user:CRM-1:E1")
    [command] = drift.repair or ()
    assert (command.kind, command.as_json()["payload"]) == (
        Kind.ASSIGN_LICENCE,
        {"tenant": TENANT, "employee_id": "E1", "app": "vc"},
    )


def test_a_missing_user_is_created_again_with_its_licence_and_status() -> None:
    mappings = pushed_all(user={**USER_STATE, "status": "S", "department": "Sales"})
    drifts = repaired(detect(mappings, observed(users={}), NOW).drifts)
    user_drift, licence_drift = (only(drifts, "user"), only(drifts, "licence"))
    assert user_drift.what is What.MISSING and user_drift.forgets_mapping
    assert kinds(user_drift) == ["create_user", "suspend_user"]
    assert (user_drift.repair or ())[0].as_json()["payload"]["profile"] == {
        "email": "ann@acme.example",
        "first_name": "Ann",
        "last_name": "Lee",
        "department": "Sales",
    }
    assert kinds(licence_drift) == ["assign_licence"]
    assert not licence_drift.forgets_mapping
    # the user's commands come first: one entity, run in the order queued
    assert [d.kind for d in drifts] == ["user", "licence"]


def test_licences_compare_without_comparing_users() -> None:
    renamed = user(first_name="Anne", vc=False)
    comparison = detect(pushed_all(), observed(users={"u1": renamed}), NOW, kinds=["licence"])
    assert comparison.checked == 1
    assert [d.kind for d in comparison.drifts] == ["licence"]


# -- customers and subscriptions ------------------------------------------------------------
def test_a_renamed_and_suspended_customer_is_updated_and_reactivated() -> None:
    changed = customer(customer_name="Acme Corp", status="S")
    drift = only(
        repaired(detect(pushed_all(), observed(customers={"c1": changed}), NOW).drifts), "customer"
    )
    assert dict(drift.fields) == {"customer_name": ("Acme", "Acme Corp"), "status": ("A", "S")}
    [command] = drift.repair or ()
    assert command.kind is Kind.UPDATE_CUSTOMER
    assert command.as_json()["payload"]["changes"] == {"customer_name": "Acme", "status": "A"}
    assert reopens(drift)  # the tenant's other repairs are held behind this one


def test_a_closed_customer_reopened_behind_our_back_is_closed_again() -> None:
    mappings = pushed_all(customer={**CUSTOMER_STATE, "status": "C"})
    drift = only(repaired(detect(mappings, observed(), NOW).drifts), "customer")
    assert dict(drift.fields) == {"status": ("C", "A")}
    assert not reopens(drift)  # closing: nothing waits for it
    [command] = drift.repair or ()
    assert command.as_json()["payload"] == {"crm_id": TENANT, "status": "C"}


def test_an_address_goes_back_whole_and_countries_are_not_compared() -> None:
    moved = customer(office_address={**OFFICE, "city": "Paris", "country": "France"})
    drift = only(
        repaired(detect(pushed_all(), observed(customers={"c1": moved}), NOW).drifts), "customer"
    )
    assert dict(drift.fields) == {"office_address.city": ("Lyon", "Paris")}
    changes = (drift.repair or ())[0].as_json()["payload"]["changes"]
    assert changes == {"office_address": OFFICE}


def test_a_missing_customer_is_created_again() -> None:
    drifts = repaired(detect(pushed_all(), observed(customers={}), NOW).drifts)
    drift = only(drifts, "customer")
    assert drift.what is What.MISSING and drift.forgets_mapping
    [command] = drift.repair or ()
    assert command.kind is Kind.CREATE_CUSTOMER
    assert command.as_json()["payload"] == {"crm_id": TENANT, "profile": CUSTOMER_STATE}
    assert drift.reason == "re-created with a new UCaaS id"


def test_a_missing_subscription_is_bought_again_from_today() -> None:
    drift = only(
        repaired(detect(pushed_all(), observed(subscriptions={}), NOW).drifts), "subscription"
    )
    assert (drift.what, drift.entity) == (What.MISSING, "subscriptions:CRM-1")
    [command] = drift.repair or ()
    assert command.as_json()["payload"] == {**SUB_STATE, "start": "2026-03-02"}


def test_changed_seats_or_status_of_a_subscription_are_reported_not_repaired() -> None:
    changed = subscription(qty=3, status="S")
    drift = only(
        repaired(detect(pushed_all(), observed(subscriptions={"s1": changed}), NOW).drifts),
        "subscription",
    )
    assert dict(drift.fields) == {"seats": (10, 3), "status": ("A", "S")}
    assert (drift.repair, drift.status) == (None, RepairStatus.NONE)


def test_a_missing_cancelled_subscription_is_bought_again_and_suspended() -> None:
    # the state set_subscription_status and set_subscription_seats leave on the mapping
    ended = {**SUB_STATE, "seats": 14, "status": "S"}
    drift = only(
        repaired(detect(pushed_all(subscription=ended), observed(subscriptions={}), NOW).drifts),
        "subscription",
    )
    create, suspend = drift.repair or ()
    assert create.as_json()["payload"] == {**SUB_STATE, "seats": 14, "start": "2026-03-02"}
    assert suspend.as_json()["payload"] == {
        "crm_id": SUB_STATE["crm_id"],
        "purchase_id": SUB_STATE["purchase_id"],
        "status": "S",
    }
    assert create.entity == suspend.entity == "subscriptions:CRM-1"


def test_a_subscription_is_compared_with_the_status_the_service_set() -> None:
    # set_subscription_status records S for a cancelled purchase: S in UCaaS is in step
    suspended = pushed_all(subscription={**SUB_STATE, "status": "S"})
    found = detect(suspended, observed(subscriptions={"s1": subscription(status="S")}), NOW)
    assert [d.kind for d in found.drifts] == []
    active = detect(suspended, observed(subscriptions={"s1": subscription(status="A")}), NOW)
    drift = only(active.drifts, "subscription")
    assert dict(drift.fields) == {"status": ("S", "A")}


# -- meetings -------------------------------------------------------------------------------
def test_a_cancelled_meeting_is_scheduled_again() -> None:
    drift = only(repaired(detect(pushed_all(), observed(meetings={}), NOW).drifts), "meeting")
    assert (drift.what, drift.entity) == (What.GONE, "meeting:feed:uid:1")
    [command] = drift.repair or ()
    assert command.kind is Kind.UPDATE_MEETING
    payload = command.as_json()["payload"]
    assert (payload["organizer_email"], payload["app"]) == ("ann@acme.example", "vc")
    assert MeetingSpec.model_validate(payload["meeting"]) == SPEC


def test_a_meeting_changed_behind_our_back_is_edited_back() -> None:
    changed = meeting(duration=60, room_name="Other", invitees={"emails": []})
    drift = only(
        repaired(detect(pushed_all(), observed(meetings={"m1": changed}), NOW).drifts), "meeting"
    )
    assert dict(drift.fields) == {
        "room_name": ("Weekly sync", "Other"),
        "duration": (30, 60),
        "invitees": (["bob@acme.example"], []),
    }
    assert kinds(drift) == ["update_meeting"]


def test_a_running_meeting_cancelled_cannot_be_repaired() -> None:
    running = SPEC.model_copy(update={"start_time": NOW - timedelta(minutes=10)})
    mappings = pushed_all(meeting=running.model_dump(mode="json"))
    drift = only(repaired(detect(mappings, observed(meetings={}), NOW).drifts), "meeting")
    assert (drift.what, drift.repair) == (What.GONE, None)
    assert drift.reason == "already started: left as it is"


def test_a_meeting_without_its_schedule_command_cannot_be_repaired() -> None:
    drift = only(
        repaired(detect(pushed_all(), observed(meetings={}), NOW).drifts, refs={}), "meeting"
    )
    assert drift.status is RepairStatus.NONE
    assert drift.reason is not None and "organiser" in drift.reason


# -- open commands, reports -----------------------------------------------------------------
def test_an_entity_with_open_commands_gets_no_new_ones() -> None:
    drifts = detect(
        pushed_all(), observed(users={"u1": user(first_name="X")}, meetings={}), NOW
    ).drifts
    open_commands = {
        "user:CRM-1:E1": OpenCommand(7, SOURCE),
        "meeting:feed:uid:1": OpenCommand(9, "/hr"),
    }
    planned = repaired(drifts, open=open_commands)
    assert [(d.kind, d.status, d.repair, d.reason) for d in planned] == [
        ("user", RepairStatus.ALREADY_QUEUED, None, "repair #7 queued"),
        ("meeting", RepairStatus.WAITS, None, "waits for #9"),
    ]
    report = Report(5, planned, repair=True)
    assert [d.kind for d in report.unresolved] == ["meeting"]


def test_every_repair_payload_is_valid_for_its_kind() -> None:
    mappings = pushed_all()
    broken = observed(customers={}, subscriptions={}, users={}, meetings={})
    planned = repaired(detect(mappings, broken, NOW).drifts)
    commands: list[Command] = [c for d in planned for c in d.repair or ()]
    assert [c.kind.value for c in commands] == [
        "create_customer",
        "create_subscription",
        "create_user",
        "assign_licence",
        "update_meeting",
    ]
    for command in commands:
        data = command.as_json()
        assert parse_payload(data["kind"], data["payload"]) == command.payload
        of = Command.of(command.payload)
        assert (of.kind, of.entity) == (command.kind, command.entity)


def test_summary_counts() -> None:
    planned = repaired(detect(pushed_all(), observed(users={"u1": user(vc=False)}), NOW).drifts)
    assert Report(5, planned, repair=False).summary() == (
        "checked 5 objects: 4 in step, 1 drifted, 1 repairable"
    )
    assert Report(5, [], repair=False).unresolved == []


def test_kinds_are_checked() -> None:
    assert kinds_of(["User", "meeting"]) == ("user", "meeting")
    with pytest.raises(UnknownKindError, match="users"):
        kinds_of(["users"])


def test_start_date_in_the_future_is_kept() -> None:
    later = {**SUB_STATE, "start": (date(2026, 4, 1)).isoformat()}
    drift = only(
        repaired(detect(pushed_all(subscription=later), observed(subscriptions={}), NOW).drifts),
        "subscription",
    )
    assert (drift.repair or ())[0].as_json()["payload"]["start"] == "2026-04-01"
