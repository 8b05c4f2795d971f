"""The result event of a command (service/results/model.py): pure, so every family's
shape, the cause, the topic and the PINs rule are checked here without I/O."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from service.domain.commands import PAYLOADS, Kind
from service.outbox.outcomes import Dead, Done, MappingKey, MappingWrite
from service.outbox.result_log import CommandRef
from service.results.model import (
    DEAD,
    HELD,
    Known,
    ResultPolicy,
    after_batch,
    keys_read,
    occurrence_of,
    on_dead,
    on_done,
    on_held,
)

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
POLICY = ResultPolicy(source="urn:ucaas-sync:test")


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"result-{next(counter)}"


def ref(kind: Kind, payload: dict[str, Any], entity: str = "e", command_id: int = 7) -> CommandRef:
    return CommandRef(command_id, kind.value, entity, "ACME", payload, "hr-system", "evt-42")


USER = {"tenant": "ACME", "employee_id": "E1"}
PROFILE = {"email": "Ann.Lee@acme.example", "first_name": "Ann"}
USER_KEY = MappingKey("user", "ACME", "E1")
VC = MappingKey("licence", "ACME", "E1:vc")


def test_every_kind_declares_a_result_type() -> None:
    assert {model.result for model in PAYLOADS.values()} >= {
        "ucaas.user.provisioned",
        "ucaas.customer.created",
        "ucaas.subscription.created",
        "ucaas.meeting.scheduled",
        "ucaas.meeting.cancelled",
    }
    assert all(model.result.startswith("ucaas.") for model in PAYLOADS.values())


def test_a_provisioned_user_names_the_ucaas_id_the_email_and_the_licences_held() -> None:
    command = ref(Kind.CREATE_USER, USER | {"profile": PROFILE}, "user:ACME:E1")
    done = Done(mappings=(MappingWrite(USER_KEY, "u-9", "ann.lee@acme.example"),))
    before = {VC: Known("sub-1", "vc")}  # a licence already mapped for this employee id
    after = after_batch(before, [done])
    event = on_done(command, done, before, after, POLICY, NOW, ids())
    assert event is not None
    assert event.type == "ucaas.user.provisioned"
    assert event.topic == "ucaas.results"
    ce = event.cloudevent
    assert ce["specversion"] == "1.0"
    assert (ce["id"], ce["source"], ce["subject"]) == (
        "result-1",
        "urn:ucaas-sync:test",
        "user:ACME:E1",
    )
    assert ce["time"] == "2026-12-04T09:30:00Z"
    assert (ce["causationid"], ce["causationsource"], ce["commandid"]) == ("evt-42", "hr-system", 7)
    assert ce["data"] == {
        "tenant": "ACME",
        "employee_id": "E1",
        "ucaas_user_id": "u-9",
        "email": "ann.lee@acme.example",
        "licences": ["vc"],
    }


def test_a_revoked_licence_is_no_longer_held_and_a_suspended_user_keeps_its_id() -> None:
    before = {USER_KEY: Known("u-9", "ann@acme.example"), VC: Known("sub-1", "vc")}
    revoke = Done(forget=(VC,))
    command = ref(Kind.REVOKE_LICENCE, USER | {"app": "vc"})
    event = on_done(command, revoke, before, after_batch(before, [revoke]), POLICY, NOW, ids())
    assert event is not None
    assert event.type == "ucaas.user.licence_revoked"
    assert event.cloudevent["data"]["licences"] == []
    assert event.cloudevent["data"]["app"] == "vc"
    suspend = on_done(ref(Kind.SUSPEND_USER, USER), Done(), before, before, POLICY, NOW, ids())
    assert suspend is not None
    assert suspend.type == "ucaas.user.suspended"
    assert suspend.cloudevent["data"]["ucaas_user_id"] == "u-9"
    assert suspend.cloudevent["data"]["email"] == "ann@acme.example"


def test_customer_and_subscription_results_carry_the_crm_ids_and_the_ucaas_ids() -> None:
    customer_key = MappingKey("customer", "", "CRM-1")
    made = Done(mappings=(MappingWrite(customer_key, "c-5", "CRM-1"),))
    profile = {
        "customer_name": "Acme",
        "customer_legal_name": "Acme SAS",
        "contact_name": "Paul",
        "contact_email": "p@acme.example",
        "office_address": {"address_1": "1 rue", "city": "Paris", "country": "FR"},
    }
    created = on_done(
        ref(Kind.CREATE_CUSTOMER, {"crm_id": "CRM-1", "profile": profile}),
        made,
        {},
        after_batch({}, [made]),
        POLICY,
        NOW,
        ids(),
    )
    assert created is not None
    assert created.type == "ucaas.customer.created"
    assert created.cloudevent["data"] == {"crm_id": "CRM-1", "ucaas_customer_id": "c-5"}
    closed = on_done(
        ref(Kind.CLOSE_CUSTOMER, {"crm_id": "CRM-1", "status": "C"}),
        Done(),
        {customer_key: Known("c-5")},
        {customer_key: Known("c-5")},
        POLICY,
        NOW,
        ids(),
    )
    assert closed is not None
    assert closed.cloudevent["data"] == {
        "crm_id": "CRM-1",
        "ucaas_customer_id": "c-5",
        "status": "C",
    }
    sub_key = MappingKey("subscription", "CRM-1", "P-1")
    seats = on_done(
        ref(Kind.SET_SUBSCRIPTION_SEATS, {"crm_id": "CRM-1", "purchase_id": "P-1", "seats": 12}),
        Done(),
        {sub_key: Known("s-3")},
        {sub_key: Known("s-3")},
        ResultPolicy(per_domain=True),
        NOW,
        ids(),
    )
    assert seats is not None
    assert (seats.type, seats.topic) == (
        "ucaas.subscription.changed",
        "ucaas.results.subscriptions",
    )
    assert seats.cloudevent["data"] == {
        "crm_id": "CRM-1",
        "purchase_id": "P-1",
        "ucaas_subscription_id": "s-3",
        "seats": 12,
    }


MEETING = {
    "meeting_key": "team-cal:abc@google.com@20261207T090000Z",
    "tenant": "ACME",
    "organizer_email": "lena@acme.example",
    "feed_id": "team-cal",
    "meeting": {
        "room_name": "Weekly sync",
        "desc": "d",
        "start_time": "2026-12-07T09:00:00Z",
        "zone": "Europe/Berlin",
        "duration": 30,
        "moderators": 1,
        "participants": 3,
    },
}
LEARNED = {"join_url": "https://ucaas.example/j/m-1", "mpin": "1234", "ppin": "5678"}


def test_a_scheduled_meeting_carries_the_join_link_feed_uid_and_occurrence_but_no_pins() -> None:
    key = MappingKey("meeting", "ACME", MEETING["meeting_key"])
    done = Done(mappings=(MappingWrite(key, "m-1", "org-1"),), learned=LEARNED)
    command = ref(Kind.SCHEDULE_MEETING, MEETING)
    event = on_done(command, done, {}, after_batch({}, [done]), POLICY, NOW, ids())
    assert event is not None
    assert event.type == "ucaas.meeting.scheduled"
    data = event.cloudevent["data"]
    assert data == {
        "tenant": "ACME",
        "ucaas_meeting_id": "m-1",
        "meeting_key": MEETING["meeting_key"],
        "feed_id": "team-cal",
        "uid": "abc@google.com",
        "recurrence_id": "2026-12-07T09:00:00Z",
        "organizer_email": "lena@acme.example",
        "app": "vc",
        "room_name": "Weekly sync",
        "start": "2026-12-07T09:00:00Z",
        "zone": "Europe/Berlin",
        "duration_min": 30,
        "join_url": "https://ucaas.example/j/m-1",
    }
    assert "1234" not in str(event.cloudevent) and "5678" not in str(event.cloudevent)
    with_pins = on_done(
        command, done, {}, after_batch({}, [done]), ResultPolicy(include_pins=True), NOW, ids()
    )
    assert with_pins is not None
    pins = with_pins.cloudevent["data"]
    assert (pins["moderator_pin"], pins["participant_pin"]) == ("1234", "5678")


def test_a_cancelled_meeting_names_the_id_it_had_before_the_mapping_was_forgotten() -> None:
    key = MappingKey("meeting", "ACME", MEETING["meeting_key"])
    cancel = Done(forget=(key,), note="already cancelled")
    payload = {k: v for k, v in MEETING.items() if k != "meeting"}
    before = {key: Known("m-1", "org-1")}
    event = on_done(
        ref(Kind.CANCEL_MEETING, payload),
        cancel,
        before,
        after_batch(before, [cancel]),
        POLICY,
        NOW,
        ids(),
    )
    assert event is not None
    assert event.type == "ucaas.meeting.cancelled"
    assert event.cloudevent["data"]["ucaas_meeting_id"] == "m-1"
    assert event.cloudevent["data"]["note"] == "already cancelled"
    assert event.cloudevent["data"]["join_url"] is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("f:single-uid", {"uid": "single-uid", "recurrence_id": None}),
        ("f:a@b.example", {"uid": "a@b.example", "recurrence_id": None}),
        ("f:a@b@20261005T080000Z", {"uid": "a@b", "recurrence_id": "2026-10-05T08:00:00Z"}),
        ("f:#" + "0" * 40, {"uid": None, "recurrence_id": None}),
    ],
)
def test_the_uid_and_occurrence_are_read_back_from_the_meeting_key(
    key: str, expected: dict[str, Any]
) -> None:
    assert occurrence_of(key, "f") == expected


def test_dead_and_held_commands_say_what_why_and_which_event_asked() -> None:
    command = ref(Kind.SUSPEND_USER, USER, "user:ACME:E1", command_id=12)
    dead = on_dead(command, Dead("1302", "user not found"), POLICY, NOW, ids())
    assert dead.type == DEAD
    assert dead.topic == "ucaas.results"
    assert dead.cloudevent["causationid"] == "evt-42"
    assert dead.cloudevent["data"] == {
        "command_id": 12,
        "kind": "suspend_user",
        "entity": "user:ACME:E1",
        "tenant": "ACME",
        "code": "1302",
        "reason": "user not found",
    }
    held = on_held(command, "approval: 9 people suspended", ResultPolicy(per_domain=True), NOW)
    assert (held.type, held.topic) == (HELD, "ucaas.results.commands")
    assert held.cloudevent["data"]["reason"] == "approval: 9 people suspended"
    assert held.event_id != dead.event_id


def test_keys_read_cover_the_entity_and_for_a_person_their_licences() -> None:
    assert keys_read(ref(Kind.SUSPEND_USER, USER)) == [
        USER_KEY,
        VC,
        MappingKey("licence", "ACME", "E1:wb"),
    ]
    assert keys_read(ref(Kind.CLOSE_CUSTOMER, {"crm_id": "C"})) == [MappingKey("customer", "", "C")]
    assert keys_read(ref(Kind.SUSPEND_USER, {"broken": True})) == []  # dies; no mapping read


def every_kind() -> list[Any]:
    from service.devtools import sample_commands as c
    from service.domain.commands import ChangeEmail, Command, CreateUser

    rehire = CreateUser.model_validate(
        c.create_user("ACME", "E9").payload.model_dump() | {"rehire_of": "E1"}
    )
    email = ChangeEmail(tenant="ACME", employee_id="E1", old_email="a@x", new_email="b@x")
    spec = c.meeting_spec()
    return [
        c.create_customer("C1"),
        c.update_customer("C1", customer_name="New"),
        c.close_customer("C1"),
        c.reopen_customer("C1"),
        c.create_subscription("C1"),
        c.set_subscription_status("C1", "S"),
        c.set_subscription_seats("C1", 9),
        c.create_user("ACME", "E1"),
        Command.of(rehire),
        c.update_user("ACME", "E1", designation="Lead"),
        c.assign("ACME", "E1"),
        c.revoke("ACME", "E1", "wb"),
        c.suspend("ACME", "E1"),
        c.reactivate("ACME", "E1"),
        Command.of(email),
        c.schedule("ACME", "cal:uid-1", "o@acme.example", spec),
        c.update_meeting("ACME", "cal:uid-1", "o@acme.example", spec),
        c.cancel("ACME", "cal:uid-1", "o@acme.example"),
    ]


def test_every_result_the_model_builds_is_what_the_asyncapi_document_describes() -> None:
    from service.results.schema import ResultEnvelope, result_types

    types = result_types()
    commands = every_kind()
    assert {command.kind for command in commands} == set(Kind)
    built: list[Any] = []
    for n, command in enumerate(commands):
        payload = command.payload.model_dump(mode="json", exclude_none=True)
        made = ref(command.kind, payload, command.entity, command_id=n)
        known = {key: Known(f"id-{n}", "x@acme.example") for key in keys_read(made)}
        done = Done(note="adopted the existing user", learned=LEARNED)
        built.append(on_done(made, done, known, known, ResultPolicy(include_pins=True), NOW))
        built.append(on_dead(made, Dead("4030", "forbidden"), POLICY, NOW))
        built.append(on_held(made, "approval: 3 people", POLICY, NOW))
    for event in built:
        assert event is not None
        model = ResultEnvelope[types[event.type]]  # type: ignore[index]
        model.model_validate(event.cloudevent)  # extra fields are refused
    assert {e.type for e in built} == set(types)
