"""The level-triggered HR lifecycle: effective dating without blocking, order by source
time, rehires under a new employee id, and convergence on what the latest event says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.commands import (
    AssignLicence,
    ChangeEmail,
    Command,
    CreateUser,
    Kind,
    ReactivateUser,
    RevokeLicence,
    SuspendUser,
    UpdateUser,
    UserProfile,
    user_entity,
)
from service.domain.events import HrEvent, HrKind
from service.domain.translation import Translation
from service.intake.events import to_domain
from service.intake.licences import LicencePolicy, Rule
from service.intake.lifecycle import Leaver, UserState, settled, translate_hr
from service.intake.people import People
from tests.support.kafka import envelope

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)
POLICY = LicencePolicy(
    default_apps=("vc",),
    rules=(Rule(department="Sales", apps=("vc", "wb")),),
)
PROFILE = UserProfile(email="ann@acme.example", first_name="Ann", department="Finance")
REF = {"tenant": "CRM-1", "employee_id": "E1"}


def event(
    kind: HrKind = "updated",
    effective_at: datetime | None = None,
    *,
    active: bool = True,
    at: datetime | None = None,
    employee_id: str = "E1",
    number: str | None = None,
    **profile: Any,
) -> HrEvent:
    return HrEvent(
        kind,
        "CRM-1",
        employee_id,
        PROFILE.model_copy(update=profile),
        effective_at,
        active,
        source_time=at,
        employee_number=number,
    )


def run(ev: HrEvent, state: UserState | None, now: datetime = NOW, **kw: Any) -> Translation:
    return translate_hr(ev, state, POLICY, now=now, **kw)


def active(**profile: Any) -> UserState:
    result = run(event("joined", **profile), None)
    assert isinstance(result.state, UserState)
    return result.state


def payloads(result: Translation) -> list[Any]:
    return [c.payload for c in result.commands]


# -- effective dating ---------------------------------------------------------------------
def notice() -> Translation:
    """A termination dated a month ahead for an active employee with a vc licence."""
    return run(event("left", LATER), active())


def test_a_future_termination_waits_for_its_date() -> None:
    result = notice()
    assert payloads(result) == [RevokeLicence(**REF, app="vc"), SuspendUser(**REF)]
    assert {c.not_before for c in result.commands} == {LATER}
    assert not result.withdraw
    assert isinstance(result.state, UserState)
    assert result.state.status == "active"  # until the date
    assert result.state.pending is not None
    assert (result.state.pending.at, result.state.pending.status) == (LATER, "left")


def test_an_update_during_the_notice_period_takes_effect_now() -> None:
    waiting = notice().state
    assert isinstance(waiting, UserState)
    result = run(event("updated", first_name="Anna"), waiting)
    assert payloads(result) == [
        UpdateUser(**REF, email="ann@acme.example", changes={"first_name": "Anna"})
    ]
    assert result.commands[0].not_before is None
    assert not result.withdraw  # the termination still stands
    assert isinstance(result.state, UserState)
    assert result.state.pending == waiting.pending


def test_a_department_change_during_the_notice_replans_the_revokes() -> None:
    waiting = notice().state
    result = run(event("updated", department="Sales"), waiting)
    assert result.withdraw
    now = [c for c in result.commands if c.not_before is None]
    dated = [c for c in result.commands if c.not_before == LATER]
    assert [c.payload for c in now] == [
        UpdateUser(**REF, email="ann@acme.example", changes={"department": "Sales"}),
        AssignLicence(**REF, app="wb"),
    ]
    assert [c.payload for c in dated] == [
        RevokeLicence(**REF, app="vc"),
        RevokeLicence(**REF, app="wb"),
        SuspendUser(**REF),
    ]


def test_a_rescinding_joined_withdraws_the_termination() -> None:
    result = run(event("joined"), notice().state)
    assert result.withdraw
    assert result.commands == []
    assert isinstance(result.state, UserState)
    assert (result.state.status, result.state.pending) == ("active", None)


def test_an_event_active_again_at_the_date_withdraws_it_too() -> None:
    result = run(event("updated", LATER + timedelta(days=1), active=True), notice().state)
    assert result.withdraw is False  # a dated update keeps the dated termination
    rescinded = run(event("joined", LATER - timedelta(days=1)), notice().state)
    assert rescinded.withdraw
    assert rescinded.commands == []


def test_a_new_termination_date_replaces_the_waiting_commands() -> None:
    sooner = NOW + timedelta(days=7)
    result = run(event("left", sooner), notice().state)
    assert result.withdraw
    assert kinds_dated(result) == [(Kind.REVOKE_LICENCE, sooner), (Kind.SUSPEND_USER, sooner)]
    same = run(event("left", LATER), notice().state)
    assert (same.withdraw, same.commands) == (False, [])


def test_a_termination_now_replaces_the_dated_one() -> None:
    for ev in (event("left"), event("updated", active=False)):
        result = run(ev, notice().state)
        assert result.withdraw
        assert kinds_dated(result) == [(Kind.REVOKE_LICENCE, None), (Kind.SUSPEND_USER, None)]


def test_once_the_date_has_passed_the_person_has_left() -> None:
    waiting = notice().state
    assert isinstance(waiting, UserState)
    after = settled(waiting, LATER + timedelta(seconds=1))
    assert (after.status, after.apps, after.pending) == ("left", (), None)
    back = run(event("joined"), waiting, now=LATER + timedelta(days=1))
    assert not back.withdraw  # nothing is waiting any more: it ran
    assert [c.kind for c in back.commands][:2] == [Kind.REACTIVATE_USER, Kind.ASSIGN_LICENCE]


def test_a_dated_start_is_replanned_by_updates_and_called_off_by_a_leaver() -> None:
    start = run(event("joined", LATER), None)
    assert kinds_dated(start) == [(Kind.CREATE_USER, LATER), (Kind.ASSIGN_LICENCE, LATER)]
    waiting = start.state
    assert isinstance(waiting, UserState)
    assert waiting.status == "absent"
    renamed = run(event("updated", first_name="Anna"), waiting)
    assert renamed.withdraw
    [create, _] = renamed.commands
    assert isinstance(create.payload, CreateUser)
    assert (create.payload.profile.first_name, create.not_before) == ("Anna", LATER)
    called_off = run(event("updated", active=False), waiting)
    assert (called_off.withdraw, called_off.commands) == (True, [])
    assert isinstance(called_off.state, UserState)
    hired_after_all = run(event("joined"), called_off.state)
    assert hired_after_all.commands[0].kind == Kind.CREATE_USER


def kinds_dated(result: Translation) -> list[tuple[Kind, datetime | None]]:
    return [(c.kind, c.not_before) for c in result.commands]


# -- order by source time -----------------------------------------------------------------
def test_an_event_older_than_the_one_applied_changes_nothing() -> None:
    t1, t2 = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    newer = run(event("updated", at=t2, first_name="Anna"), active())
    assert isinstance(newer.state, UserState)
    assert newer.state.as_of == t2
    stale = run(event("updated", at=t1, first_name="Annie"), newer.state)
    assert stale.commands == []
    assert stale.state is None
    assert "older" in (stale.note or "")
    stale_leaver = run(event("left", at=t1), newer.state)
    assert stale_leaver.commands == []
    same_time = run(event("updated", at=t2, first_name="Anna"), newer.state)
    assert same_time.commands == []  # applied already: nothing new


# -- rehire under a new employee id -------------------------------------------------------
def leaver_state(**profile: Any) -> UserState:
    result = run(event("left"), active(**profile))
    assert isinstance(result.state, UserState)
    return result.state


def test_a_new_id_with_a_leavers_email_adopts_and_reactivates_their_user() -> None:
    ev = event("joined", employee_id="E2", department="Sales")
    result = run(ev, None, leaver=Leaver("E1", leaver_state()))
    new = {"tenant": "CRM-1", "employee_id": "E2"}
    assert payloads(result) == [
        CreateUser(**new, profile=PROFILE, rehire_of="E1"),
        ReactivateUser(**new),
        UpdateUser(**new, email="ann@acme.example", changes={"department": "Sales"}),
        AssignLicence(**new, app="vc"),
        AssignLicence(**new, app="wb"),
    ]
    # queued behind what E1's user still has to do (its suspension, say): one user, one queue
    assert {c.entity for c in result.commands} == {user_entity("CRM-1", "E1")}
    assert result.entity == user_entity("CRM-1", "E1")
    assert result.note == "rehire of E1: their UCaaS user"
    assert isinstance(result.state, UserState)
    assert (result.state.status, result.state.rehire_of) == ("active", "E1")


def people_with(*entries: tuple[str, UserState], match: Any = ("email",)) -> People:
    people = People(match)
    for employee_id, state in entries:
        people.add(user_entity("CRM-1", employee_id), "CRM-1", state)
    return people


def test_people_find_who_an_unknown_id_is_by_email() -> None:
    joiner = event("joined", employee_id="E2")
    assert people_with(("E1", leaver_state())).leaver(joiner, NOW) == Leaver("E1", leaver_state())
    # someone active with the e-mail: the same UCaaS user, shared (one user, one queue)
    assert people_with(("E1", active())).leaver(joiner, NOW) == Leaver("E1", active(), True)
    both = people_with(("E1", leaver_state()), ("E3", active()))
    assert both.leaver(joiner, NOW) == Leaver("E3", active(), True)
    other_tenant = People()
    other_tenant.add(user_entity("CRM-9", "E1"), "CRM-9", leaver_state())
    assert other_tenant.leaver(joiner, NOW) is None


def test_a_second_id_of_an_active_person_adopts_their_user_and_queue() -> None:
    """A rehire's joiner heard before the leaving (another partition): the joiner takes
    the user on the leaver's queue, reactivating it after what is queued there."""
    on_leave = run(event("leave_started", department="Sales"), active(department="Sales")).state
    assert isinstance(on_leave, UserState)
    joiner = event("joined", employee_id="E2")  # Finance: vc only
    result = run(joiner, None, leaver=Leaver("E1", on_leave, shared=True))
    new = {"tenant": "CRM-1", "employee_id": "E2"}
    assert payloads(result) == [
        CreateUser(**new, profile=on_leave.profile, rehire_of="E1"),
        ReactivateUser(**new),
        UpdateUser(**new, email="ann@acme.example", changes={"department": "Finance"}),
    ]  # E1's wb is theirs to keep: not revoked by E2
    assert {c.entity for c in result.commands} == {user_entity("CRM-1", "E1")}
    assert result.note == "same person as E1: their UCaaS user"


def test_people_match_by_employee_number_when_the_policy_says_so() -> None:
    gone = leaver_state().model_copy(update={"employee_number": "701984"})
    joiner = event("joined", employee_id="X-2", number="701984", email="ann.lee@acme.example")
    assert people_with(("E1", gone)).leaver(joiner, NOW) is None  # e-mail differs
    by_number = people_with(("E1", gone), match=("email", "employee_number"))
    found = by_number.leaver(joiner, NOW)
    assert found is not None
    result = run(joiner, None, leaver=found)
    kinds = [c.kind for c in result.commands]
    assert kinds[:2] == [Kind.CREATE_USER, Kind.REACTIVATE_USER]
    assert kinds[-1] == Kind.CHANGE_EMAIL  # the UCaaS user keeps the leaver's e-mail


def test_a_termination_whose_date_passed_makes_a_leaver_to_match() -> None:
    waiting = notice().state
    assert isinstance(waiting, UserState)
    people = people_with(("E1", waiting))
    before = people.leaver(event("joined", employee_id="E2"), NOW)
    assert before is not None
    assert before.shared  # still active until the date
    after = people.leaver(event("joined", employee_id="E2"), LATER)
    assert after is not None
    assert not after.shared


# -- convergence --------------------------------------------------------------------------
@dataclass
class FakeUser:
    """What UCaaS would hold after the commands (the executors' effect, without I/O)."""

    exists: bool = False
    status: str = "A"
    apps: set[str] = field(default_factory=set)
    profile: dict[str, Any] = field(default_factory=dict)

    def apply(self, command: Command) -> None:
        p = command.payload
        if command.held is not None:
            return  # waits for a person
        if isinstance(p, CreateUser) and not self.exists:
            self.exists, self.status, self.profile = True, "A", p.profile.model_dump()
        elif isinstance(p, UpdateUser):
            self.profile.update(p.changes)
        elif isinstance(p, SuspendUser):
            self.status = "S"
        elif isinstance(p, ReactivateUser):
            self.status = "A"
        elif isinstance(p, AssignLicence):
            self.apps.add(p.app)
        elif isinstance(p, RevokeLicence):
            self.apps.discard(p.app)
        else:
            assert isinstance(p, ChangeEmail)


STEPS = st.tuples(
    st.sampled_from(["joined", "updated", "left"]),
    st.booleans(),  # SCIM active
    st.sampled_from(["Finance", "Sales"]),
    st.sampled_from(["Ann", "Anna"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(STEPS, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_any_interleaving_converges_on_what_the_latest_event_says(
    steps: list[tuple[str, bool, str, str]], random: Any
) -> None:
    """Events of one person with increasing source times, delivered in any order: UCaaS
    ends as the latest one describes (older ones arriving late change nothing)."""
    sent = [
        event(kind, active=on, department=dept, first_name=name, at=NOW + timedelta(minutes=i))  # type: ignore[arg-type]
        for i, (kind, on, dept, name) in enumerate(steps)
    ]
    delivered = list(sent)
    random.shuffle(delivered)
    user, state = FakeUser(), None
    for ev in delivered:
        result = run(ev, state, now=NOW + timedelta(hours=1))
        for command in result.commands:
            user.apply(command)
        state = result.state if result.state is not None else state
    latest = sent[-1]
    if latest.active and latest.kind != "left":
        assert user.exists
        assert user.status == "A"
        assert user.apps == set(POLICY.apps_for("CRM-1", latest.profile.department, None))
        assert user.profile["department"] == latest.profile.department
        assert user.profile["first_name"] == latest.profile.first_name
    else:
        assert not user.exists or (user.status, user.apps) == ("S", set())


# -- the policy file's scope and attribute mapping, through the mapping --------------------
SCOPED = LicencePolicy.from_text(
    """
[scope]
user_types = ["Employee"]
countries = ["FR"]

[attributes]
department = "urn:example:params:scim:schemas:extension:acme:2.0:User:team"
"""
)


def scim_event(kind: str = "updated", **data: Any) -> Any:
    user = {
        "userName": "ann@acme.example",
        "name": {"givenName": "Ann"},
        "userType": "Employee",
        "addresses": [{"type": "work", "country": "FR", "primary": True}],
        "urn:example:params:scim:schemas:extension:acme:2.0:User": {"team": "Sales"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "E1"},
        "tenant": "CRM-1",
        **data,
    }
    return to_domain(envelope(f"hr.user.{kind}", "E1", user), SCOPED)


def test_the_mapping_fills_the_profile_as_the_policy_file_says() -> None:
    ev = scim_event()
    assert isinstance(ev, HrEvent)
    assert (ev.profile.department, ev.out_of_scope) == ("Sales", None)


def test_a_user_leaving_the_scope_is_deprovisioned_like_a_leaver() -> None:
    joined = scim_event("joined")
    state = translate_hr(joined, None, POLICY, now=NOW).state
    assert isinstance(state, UserState)
    moved = scim_event(addresses=[{"type": "work", "country": "DE"}])
    assert "DE" in (moved.out_of_scope or "")
    result = translate_hr(moved, state, POLICY, now=NOW)
    assert [c.kind for c in result.commands] == [
        Kind.REVOKE_LICENCE,
        Kind.REVOKE_LICENCE,
        Kind.SUSPEND_USER,
    ]
    contractor = scim_event("joined", userType="Contractor")
    assert translate_hr(contractor, None, POLICY, now=NOW).commands == []


def test_a_leaver_leaves_a_shared_user_to_its_active_holder() -> None:
    """E2 joined with E1's e-mail before E1's leaving was heard of (two keys, two
    partitions): E1's leaving must not suspend the user E2 now has."""
    e1 = active(department="Sales")  # vc and wb
    e2 = run(event("joined", employee_id="E2"), None).state  # vc
    assert isinstance(e2, UserState)
    people = people_with(("E1", e1), ("E2", e2))
    holder = people.holder(event("left"), NOW)
    assert holder is not None
    assert holder[0] == "E2"
    result = run(event("left"), e1, holder=holder)
    assert payloads(result) == [RevokeLicence(**REF, app="wb")]
    assert isinstance(result.state, UserState)
    assert result.state.status == "left"
    alone = run(event("left"), e1)
    assert Kind.SUSPEND_USER in [c.kind for c in alone.commands]
