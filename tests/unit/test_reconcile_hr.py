"""Reconcile against HR, the pure part: snapshot records to people (the intake's mapping),
managed users, orphans and leavers still active, the commands that deprovision them, and
the snapshots that must not deprovision anybody."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from connectors.events.cloudevents import Record
from connectors.hr.snapshot import ListResponse, SnapshotError, list_response
from connectors.ucaas.models.users import User
from service.domain.commands import APPROVAL, Command, Kind, user_entity
from service.intake.guard import approvals, people
from service.reconcile.hr_drift import candidates, find, managed_users, suspicions
from service.reconcile.hr_model import Found, ManagedUser, Mapped, Snapshot
from service.reconcile.hr_people import from_list_response, from_records
from service.reconcile.hr_repair import deprovisioning, with_repairs
from service.reconcile.model import SOURCE, OpenCommand, RepairStatus
from tests.support.hr_snapshot import enterprise_user
from tests.support.hr_snapshot import list_response as document
from tests.support.kafka import cloudevent

T = "CRM-1"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def snapshot(*users: dict[str, Any], tenant: str | None = T, **kw: Any) -> Snapshot:
    response = list_response(orjson.dumps(document(list(users), **kw)))
    return from_list_response(response, "hr.json", tenant)


def mapped(employee: str, ucaas_id: str, *, minutes: int = 0, tenant: str = T) -> Mapped:
    email = f"{employee.lower()}@example.com"
    return Mapped(tenant, employee, ucaas_id, email, NOW - timedelta(minutes=minutes))


def api_user(ucaas_id: str, status: str) -> User:
    return User.model_validate({"user_id": ucaas_id, "email": "x@example.com", "status": status})


def table(findings: Any) -> list[tuple[Any, ...]]:
    return [(f.what, f.user.employee_ids, f.status, f.needs, f.reason) for f in findings]


# -- the snapshot's records --------------------------------------------------------------------
def test_a_list_response_maps_each_resource_as_the_intake_does() -> None:
    bad_email = enterprise_user("E3", email="not-an-address")
    bad_email["userName"] = "bjensen"
    found = snapshot(
        enterprise_user("E1", tenant=T),
        enterprise_user("E2", active=False),  # no tenant of its own: --tenant's
        bad_email,
        "a string, not a user",
        enterprise_user("E4", tenant="CRM-2"),  # another tenant: left out
        tenant=T,
    )
    assert [(p.ref, p.tenant, p.employee_id, p.active, p.email) for p in found.people] == [
        ("Resources[0]", T, "E1", True, "e1@example.com"),
        ("Resources[1]", T, "E2", False, "e2@example.com"),
    ]
    assert [(s.ref, s.employee_id, s.reason) for s in found.skipped] == [
        ("Resources[2]", "E3", "'not-an-address' is not a valid e-mail address"),
        ("Resources[3]", None, "a JSON str, not a SCIM user"),
    ]
    assert (found.records, found.declared, found.elsewhere) == (5, 5, 1)


def test_without_a_tenant_anywhere_the_record_is_skipped() -> None:
    found = snapshot(enterprise_user("E1"), tenant=None)
    assert found.people == ()
    [skipped] = found.skipped
    assert (skipped.employee_id, skipped.reason) == ("E1", "tenant: Field required (1 problem(s))")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b"[]", "a JSON list, not a SCIM ListResponse"),
        (b'{"schemas": ["urn:x"], "totalResults": 0}', "schemas: Value error"),
        (
            b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}',
            "totalResults: Field required",
        ),
    ],
)
def test_what_is_not_a_list_response_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(SnapshotError, match=reason):
        list_response(body)


def _record(offset: int, key: str, value: Any) -> Record:
    raw = None if value is None else (value if isinstance(value, bytes) else orjson.dumps(value))
    return Record("hr.snapshot", 0, offset, key.encode(), raw)


def test_a_topics_latest_events_say_who_left_who_is_on_leave_and_who_is_gone() -> None:
    def event(kind: str, employee: str, **kw: Any) -> dict[str, Any]:
        return cloudevent(f"hr.user.{kind}", employee, enterprise_user(employee, tenant=T, **kw))

    found = from_records(
        [
            _record(1, "E1", event("updated", "E1")),
            _record(2, "E2", event("left", "E2")),  # active: true in its data, but left
            _record(3, "E3", event("leave_started", "E3", active=False)),
            _record(4, "E4", None),  # a tombstone
            _record(5, "E5", b"not json"),
            _record(6, "E6", cloudevent("crm.company.created", "E6", {})),
        ],
        "kafka:hr.snapshot",
        None,
    )
    assert [(p.employee_id, p.active, p.on_leave) for p in found.people] == [
        ("E1", True, False),
        ("E2", False, False),
        ("E3", False, True),
    ]
    assert [(s.ref, s.employee_id) for s in found.skipped] == [
        ("hr.snapshot/0@5", "E5"),
        ("hr.snapshot/0@6", "E6"),
    ]
    assert found.skipped[0].reason.startswith("not_json: ")
    assert found.skipped[1].reason == "type 'crm.company.created' is not an hr.user event"
    assert (found.records, found.tombstones) == (5, 1)


# -- managed users -----------------------------------------------------------------------------
def test_a_rehire_under_a_new_employee_id_is_one_user_with_both_ids() -> None:
    users = managed_users(
        [mapped("E1", "u1", minutes=60), mapped("E9", "u1", minutes=1), mapped("E2", "u2")],
        [(T, "E1:vc"), (T, "E1:wb"), (T, "E2:vc"), ("CRM-2", "E2:wb")],
    )
    assert [(u.ucaas_id, u.employee_ids, u.licences) for u in users] == [
        # the licence holder first (its revokes, then the suspend, run in order)
        ("u1", ("E1", "E9"), (("E1", "vc"), ("E1", "wb"))),
        ("u2", ("E2",), (("E2", "vc"),)),
    ]
    [only] = managed_users([mapped("E1", "u1", minutes=60), mapped("E9", "u1", minutes=1)], [])
    assert only.employee_ids == ("E9", "E1")  # no licences: the latest mapped first


# -- orphans and leavers -----------------------------------------------------------------------
USERS = managed_users(
    [
        mapped("E1", "u1"),  # in HR, active
        mapped("E2", "u2"),  # gone from HR: an orphan
        mapped("E3", "u3"),  # inactive in HR: a leaver
        mapped("E4", "u4"),  # inactive in HR, already suspended
        mapped("E5", "u5", minutes=9),  # rehired as E6 (also u5): E5 gone, E6 present
        mapped("E6", "u5"),
        mapped("E7", "u7"),  # gone, already suspended, no licence
        mapped("E8", "u8"),  # gone, suspended, a licence still mapped
    ],
    [(T, f"E{n}:vc") for n in (1, 2, 3, 4, 5, 8)],
)
OBSERVED = {
    "u1": api_user("u1", "A"),
    "u2": api_user("u2", "A"),
    "u3": api_user("u3", "A"),
    "u4": api_user("u4", "S"),
    "u5": api_user("u5", "A"),
    "u7": api_user("u7", "S"),
    "u8": api_user("u8", "S"),
}
HR = snapshot(
    enterprise_user("E1"),
    enterprise_user("E3", active=False),
    enterprise_user("E4", active=False),
    enterprise_user("E6"),
)


def test_orphans_and_leavers_still_active_are_found_per_ucaas_user() -> None:
    found = find(USERS, HR, OBSERVED)
    assert table(found) == [
        (Found.ORPHAN, ("E2",), "A", True, None),
        (Found.LEAVER, ("E3",), "A", True, None),
        (Found.ORPHAN, ("E7",), "S", False, "already suspended, no licence mapped"),
        (Found.ORPHAN, ("E8",), "S", True, None),
    ]
    # u5 is not an orphan: E5 is gone but E6, mapped to the same user, is in HR
    assert "u5" not in {f.user.ucaas_id for f in found}
    # only the users HR does not call active are read from UCaaS
    assert [u.ucaas_id for u in candidates(USERS, HR)] == ["u2", "u3", "u4", "u7", "u8"]


def test_a_rehired_user_is_an_orphan_only_when_none_of_its_ids_is_in_hr() -> None:
    without = snapshot(enterprise_user("E1"))
    u5 = [f for f in find(USERS, without, OBSERVED) if f.user.ucaas_id == "u5"]
    assert table(u5) == [(Found.ORPHAN, ("E5", "E6"), "A", True, None)]
    # one id inactive, the other active: not a leaver either
    mixed = snapshot(enterprise_user("E5", active=False), enterprise_user("E6"))
    assert [f for f in find(USERS, mixed, OBSERVED) if f.user.ucaas_id == "u5"] == []


def test_a_user_whose_email_hr_has_under_another_id_is_left_alone() -> None:
    """A rehire the intake has not taken yet: the e-mail is in HR, active, as E12."""
    hr = snapshot(enterprise_user("E1"), enterprise_user("E12", email="e2@example.com"))
    [orphan] = [f for f in find(USERS, hr, OBSERVED) if f.user.ucaas_id == "u2"]
    assert (orphan.needs, orphan.reason) == (
        False,
        "HR has e2@example.com as employee E12 (a rehire not taken yet?): left alone",
    )
    assert not orphan.unresolved


def test_nobody_is_deprovisioned_for_a_record_hr_sent_badly() -> None:
    bad = enterprise_user("E2", email="not-an-address")
    bad["userName"] = "e2"
    hr = snapshot(*[enterprise_user(e) for e in ("E1", "E6")], bad)
    assert [s.employee_id for s in hr.skipped] == ["E2"]
    assert "u2" not in {f.user.ucaas_id for f in find(USERS, hr, OBSERVED)}


def test_someone_on_leave_is_not_a_leaver() -> None:
    on_leave = {user_entity(T, "E3")}
    found = find(USERS, HR, OBSERVED, on_leave)
    assert [f.user.employee_ids for f in found if f.what is Found.LEAVER] == []


def test_an_orphan_gone_from_ucaas_has_nothing_to_undo() -> None:
    observed = {k: v for k, v in OBSERVED.items() if k != "u2"}
    [orphan] = [f for f in find(USERS, HR, observed) if f.user.ucaas_id == "u2"]
    assert (orphan.status, orphan.needs, orphan.reason) == (None, False, "not in UCaaS")


# -- the repairs ------------------------------------------------------------------------------
def kinds(commands: Any) -> list[tuple[str, str]]:
    return [(c.kind.value, c.entity) for c in commands]


def test_the_commands_are_a_leavers_revokes_then_suspend() -> None:
    found = with_repairs(find(USERS, HR, OBSERVED), {})
    assert [(f.user.employee_ids, f.repair_status, kinds(f.repair or ())) for f in found] == [
        (
            ("E2",),
            RepairStatus.PLANNED,
            [("revoke_licence", "user:CRM-1:E2"), ("suspend_user", "user:CRM-1:E2")],
        ),
        (
            ("E3",),
            RepairStatus.PLANNED,
            [("revoke_licence", "user:CRM-1:E3"), ("suspend_user", "user:CRM-1:E3")],
        ),
        (("E7",), RepairStatus.NONE, []),
        (("E8",), RepairStatus.PLANNED, [("revoke_licence", "user:CRM-1:E8")]),  # suspended
    ]


def test_a_rehired_users_licences_are_revoked_under_their_own_ids_before_the_suspend() -> None:
    user = ManagedUser(T, "u5", ("E6", "E5"), "e6@example.com", (("E5", "vc"), ("E6", "wb")))
    [orphan] = find([user], snapshot(enterprise_user("E1")), {"u5": api_user("u5", "A")})
    assert kinds(deprovisioning(orphan)) == [
        ("revoke_licence", "user:CRM-1:E5"),
        ("revoke_licence", "user:CRM-1:E6"),
        ("suspend_user", "user:CRM-1:E6"),
    ]


def test_a_user_with_open_commands_gets_none() -> None:
    found = find(USERS, HR, OBSERVED)
    pending = {
        user_entity(T, "E2"): OpenCommand(7, "/hr/workday"),  # the intake's left, held
        user_entity(T, "E3"): OpenCommand(9, SOURCE),  # an earlier run's repair
    }
    out = with_repairs(found, pending)
    assert [(f.repair_status, f.reason, f.repair) for f in out[:2]] == [
        (RepairStatus.WAITS, "waits for #7", None),
        (RepairStatus.ALREADY_QUEUED, "repair #9 queued", None),
    ]
    assert [f.unresolved for f in out] == [True, False, False, True]


def test_the_guard_counts_each_deprovisioned_person_once() -> None:
    planned = with_repairs(find(USERS, HR, OBSERVED), {})
    commands: list[Command] = [c for f in planned for c in f.repair or ()]
    assert len(commands) == 5
    assert people(commands) == 3
    assert approvals(commands, recent=0, threshold=3, window_s=3600) == {}
    held = approvals(commands, recent=1, threshold=3, window_s=3600)
    assert sorted(held) == [0, 1, 2, 3, 4]
    assert {commands[i].kind for i in held} == {Kind.REVOKE_LICENCE, Kind.SUSPEND_USER}
    assert set(held.values()) == {
        f"{APPROVAL}4 people suspended/revoked in tenant CRM-1 within 60 min (limit 3)"
    }


# -- snapshots that must not deprovision everybody -----------------------------------------------
def test_an_empty_or_truncated_snapshot_is_suspect() -> None:
    assert suspicions(snapshot(), [T], {T: 8}) == (
        "the snapshot hr.json holds nobody",
        "no people of tenant CRM-1 in the snapshot, which has 8 managed users",
    )
    paged = snapshot(enterprise_user("E1"), total=40, startIndex=1, itemsPerPage=1)
    assert suspicions(paged, [T], {T: 8}) == (
        "totalResults is 40 but 1 resources are present (a page of a paged answer?)",
    )
    later = snapshot(enterprise_user("E1"), startIndex=3)
    assert suspicions(later, [T], {T: 8}) == ("startIndex is 3: a later page, not the whole list",)
    assert suspicions(HR, [T, "CRM-2"], {T: 8}) == ()  # CRM-2 has nobody managed


def test_the_list_response_model_reads_rfc_7644_paging() -> None:
    page = ListResponse.model_validate(document([], total=0, startIndex=1, itemsPerPage=10))
    assert (page.total_results, page.start_index, page.items_per_page) == (0, 1, 10)
