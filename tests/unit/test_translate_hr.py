"""HR events to user commands over the desired state: every lifecycle rule, and properties
over any sequence of events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.commands import (
    AssignLicence,
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
from service.intake.hr import UserState, translate_hr
from service.intake.licences import LicencePolicy, Rule

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
POLICY = LicencePolicy(
    default_apps=("vc",),
    rules=(
        Rule(department="Sales", apps=("vc", "wb")),
        Rule(department="Support", apps=("wb",)),
    ),
)
PROFILE = UserProfile(
    email="ann@acme.example",
    first_name="Ann",
    last_name="Lee",
    department="Sales",
    designation="Director",
)
REF = {"tenant": "CRM-1", "employee_id": "E1"}
ENTITY = user_entity("CRM-1", "E1")


def event(kind: HrKind, effective_at: datetime | None = None, **profile: Any) -> HrEvent:
    active = profile.pop("active", True)
    return HrEvent(
        kind, "CRM-1", "E1", PROFILE.model_copy(update=profile), effective_at, active=active
    )


def state(status: str = "active", apps: Sequence[str] = ("vc", "wb"), **profile: Any) -> UserState:
    return UserState.model_validate(
        {"status": status, "profile": PROFILE.model_copy(update=profile), "apps": tuple(apps)}
    )


def kinds(translation: Any) -> list[Kind]:
    return [c.kind for c in translation.commands]


def run(ev: HrEvent, st_: UserState | None, now: datetime = NOW) -> Any:
    return translate_hr(ev, st_, POLICY, now=now)


# -- joined -------------------------------------------------------------------------------
def test_joined_creates_the_user_then_assigns_the_policy_apps() -> None:
    result = run(event("joined"), None)
    assert [c.payload for c in result.commands] == [
        CreateUser(**REF, profile=PROFILE),
        AssignLicence(**REF, app="vc"),
        AssignLicence(**REF, app="wb"),
    ]
    assert all(c.entity == ENTITY and c.tenant == "CRM-1" for c in result.commands)
    assert all(c.not_before is None for c in result.commands)
    assert result.state == UserState(status="active", profile=PROFILE, apps=("vc", "wb"))


def test_joined_outside_any_rule_gets_the_default() -> None:
    result = run(event("joined", department="Finance"), None)
    assert kinds(result) == [Kind.CREATE_USER, Kind.ASSIGN_LICENCE]
    assert result.commands[1].payload == AssignLicence(**REF, app="vc")


def test_repeated_joined_with_the_same_content_does_nothing() -> None:
    first = run(event("joined"), None)
    again = run(event("joined"), first.state)
    assert again.commands == []
    assert again.state is None  # unchanged
    assert again.note == "nothing changed"


def test_joined_for_a_known_user_pushes_only_the_changes() -> None:
    result = run(event("joined", last_name="Lee-Smith"), state())
    assert [c.payload for c in result.commands] == [
        UpdateUser(**REF, email="ann@acme.example", changes={"last_name": "Lee-Smith"})
    ]


# -- updated ------------------------------------------------------------------------------
def test_updated_carries_only_the_changed_fields() -> None:
    result = run(event("updated", first_name="Anne", designation="VP Sales"), state())
    assert [c.payload for c in result.commands] == [
        UpdateUser(
            **REF,
            email="ann@acme.example",
            changes={"first_name": "Anne", "designation": "VP Sales"},
        )
    ]
    assert result.state is not None
    assert result.state.profile.first_name == "Anne"
    assert result.state.apps == ("vc", "wb")


def test_updated_can_clear_a_field() -> None:
    result = run(event("updated", last_name=None), state())
    assert result.commands[0].payload == UpdateUser(
        **REF, email="ann@acme.example", changes={"last_name": None}
    )


def test_updated_department_moves_the_licences_with_the_policy() -> None:
    result = run(event("updated", department="Support"), state(apps=("vc", "wb")))
    assert [c.payload for c in result.commands] == [
        UpdateUser(**REF, email="ann@acme.example", changes={"department": "Support"}),
        RevokeLicence(**REF, app="vc"),
    ]
    assert result.state is not None
    assert result.state.apps == ("wb",)

    back = run(event("updated", department="Finance"), result.state)
    assert [c.payload for c in back.commands] == [
        UpdateUser(**REF, email="ann@acme.example", changes={"department": "Finance"}),
        AssignLicence(**REF, app="vc"),
        RevokeLicence(**REF, app="wb"),
    ]
    assert back.state is not None
    assert back.state.apps == ("vc",)


def test_email_change_is_not_pushed_and_the_state_keeps_the_ucaas_email() -> None:
    result = run(event("updated", email="ann.lee@new.example"), state())
    assert result.commands == []
    assert result.state is None

    both = run(event("updated", email="ann.lee@new.example", first_name="Anne"), state())
    [update] = [c.payload for c in both.commands]
    assert isinstance(update, UpdateUser)
    assert update.changes == {"first_name": "Anne"}
    assert update.email == "ann@acme.example"  # how the executor finds the user
    assert both.state is not None
    assert both.state.profile.email == "ann@acme.example"


def test_updated_for_an_unknown_active_user_creates_it() -> None:
    result = run(event("updated"), None)
    assert kinds(result) == [Kind.CREATE_USER, Kind.ASSIGN_LICENCE, Kind.ASSIGN_LICENCE]
    assert result.note == "update for an unknown user: created"
    assert result.state is not None
    assert result.state.status == "active"


def test_updated_for_an_unknown_inactive_user_is_recorded_only() -> None:
    result = run(event("updated", active=False), None)
    assert result.commands == []
    assert result.state is None
    assert result.note is not None
    assert "inactive" in result.note


def test_updated_for_a_leaver_is_recorded_only() -> None:
    result = run(event("updated", first_name="Anne"), state("left", apps=()))
    assert result.commands == []
    assert result.state is None
    assert "leaver" in (result.note or "")


def test_updated_while_on_leave_changes_the_profile_and_keeps_the_leave() -> None:
    result = run(event("updated", first_name="Anne"), state("on_leave"))
    assert kinds(result) == [Kind.UPDATE_USER]
    assert result.state is not None
    assert result.state.status == "on_leave"


# -- leave --------------------------------------------------------------------------------
def test_leave_started_suspends() -> None:
    result = run(event("leave_started"), state())
    assert [c.payload for c in result.commands] == [SuspendUser(**REF)]
    assert result.state == state("on_leave")


def test_leave_for_someone_already_on_leave_or_gone_does_nothing() -> None:
    for status in ("on_leave", "left"):
        result = run(event("leave_started"), state(status))
        assert result.commands == []
        assert result.state is None
        assert status in (result.note or "")


def test_leave_ended_reactivates() -> None:
    result = run(event("leave_ended"), state("on_leave"))
    assert [c.payload for c in result.commands] == [ReactivateUser(**REF)]
    assert result.state == state("active")


def test_return_for_someone_active_or_gone_does_nothing() -> None:
    for status in ("active", "left"):
        result = run(event("leave_ended"), state(status))
        assert result.commands == []
        assert result.state is None


def test_leave_events_for_an_unknown_user_are_recorded_only() -> None:
    for kind in ("leave_started", "leave_ended", "left"):
        result = run(event(kind), None)
        assert result.commands == []
        assert result.state is None
        assert "unknown user" in (result.note or "")


# -- left and rehire ----------------------------------------------------------------------
def test_left_revokes_each_licence_in_state_order_then_suspends() -> None:
    result = run(event("left"), state(apps=("wb", "vc")))
    assert [c.payload for c in result.commands] == [
        RevokeLicence(**REF, app="wb"),
        RevokeLicence(**REF, app="vc"),
        SuspendUser(**REF),
    ]
    assert result.state is not None
    assert (result.state.status, result.state.apps) == ("left", ())


def test_left_from_leave_revokes_too_and_left_twice_is_nothing() -> None:
    result = run(event("left"), state("on_leave", apps=("vc",)))
    assert kinds(result) == [Kind.REVOKE_LICENCE, Kind.SUSPEND_USER]
    again = run(event("left"), result.state)
    assert again.commands == []
    assert again.note == "already left: nothing to do"


def test_rehire_reuses_the_user_reactivates_updates_and_assigns() -> None:
    gone = state("left", apps=(), department="Support")
    result = run(event("joined", department="Sales", email="ann@other.example"), gone)
    assert [c.payload for c in result.commands] == [
        ReactivateUser(**REF),
        UpdateUser(**REF, email="ann@acme.example", changes={"department": "Sales"}),
        AssignLicence(**REF, app="vc"),
        AssignLicence(**REF, app="wb"),
    ]
    assert {c.entity for c in result.commands} == {ENTITY}
    assert Kind.CREATE_USER not in kinds(result)
    assert result.note == "rehire: same UCaaS user"
    assert result.state == state("active", apps=("vc", "wb"), department="Sales")


# -- effective dates ----------------------------------------------------------------------
def test_future_effective_at_dates_every_command() -> None:
    when = NOW + timedelta(days=14)
    result = run(event("left", effective_at=when), state())
    assert len(result.commands) == 3
    assert all(c.not_before == when for c in result.commands)
    assert result.commands[0].as_json()["not_before"] == when.isoformat()
    joined = run(event("joined", effective_at=when), None)
    assert [c.not_before for c in joined.commands] == [when, when, when]


def test_past_or_present_effective_at_runs_now() -> None:
    for when in (NOW - timedelta(days=1), NOW):
        result = run(event("leave_started", effective_at=when), state())
        assert [c.not_before for c in result.commands] == [None]
        assert "not_before" not in result.commands[0].as_json()


# -- properties ---------------------------------------------------------------------------
KINDS: tuple[HrKind, ...] = ("joined", "updated", "leave_started", "leave_ended", "left")
events = st.builds(
    event,
    kind=st.sampled_from(KINDS),
    department=st.sampled_from(["Sales", "Support", "Finance", None]),
    first_name=st.sampled_from(["Ann", "Anne"]),
    email=st.sampled_from(["ann@acme.example", "ann@new.example"]),
    active=st.booleans(),
)


def _check_step(before: UserState | None, ev: HrEvent, result: Any) -> UserState | None:
    """The commands agree with the state machine; returns the state after the step."""
    found = kinds(result)
    after = result.state if result.state is not None else before
    status = before.status if before else None
    assert all(c.entity == ENTITY for c in result.commands)
    if Kind.CREATE_USER in found:
        assert before is None
        assert found.index(Kind.CREATE_USER) == 0
    if Kind.SUSPEND_USER in found:
        assert status in ("active", "on_leave")
        assert found[-1] == Kind.SUSPEND_USER  # revokes first
    if Kind.REACTIVATE_USER in found:
        assert (status, ev.kind) in (("on_leave", "leave_ended"), ("left", "joined"))
        assert found[0] == Kind.REACTIVATE_USER
    if status == "left" and ev.kind != "joined":
        assert found == []
    # licences: assigned only when not held, revoked only when held
    held = set(before.apps) if before else set()
    for command in result.commands:
        payload = command.payload
        if isinstance(payload, AssignLicence):
            assert payload.app not in held
        if isinstance(payload, RevokeLicence):
            assert payload.app in held
    if after is not None:
        if after.status == "left":
            assert after.apps == ()
        else:
            wanted = POLICY.apps_for("CRM-1", after.profile.department, None)
            assert after.apps == wanted
        if before is not None:
            assert after.profile.email == before.profile.email  # never changed in UCaaS
    return after


@settings(max_examples=300, deadline=None)
@given(st.lists(events, min_size=1, max_size=12))
def test_any_sequence_agrees_with_the_state_machine(sequence: list[HrEvent]) -> None:
    current: UserState | None = None
    for ev in sequence:
        result = run(ev, current)
        current = _check_step(current, ev, result)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=8), events)
def test_the_same_event_twice_in_a_row_does_nothing_the_second_time(
    prefix: list[HrEvent], ev: HrEvent
) -> None:
    current: UserState | None = None
    for earlier in prefix:
        result = run(earlier, current)
        current = result.state if result.state is not None else current
    first = run(ev, current)
    current = first.state if first.state is not None else current
    second = run(ev, current)
    assert second.commands == []
    assert second.state is None  # unchanged


@settings(max_examples=100, deadline=None)
@given(st.lists(events, max_size=8), st.integers(min_value=1, max_value=30))
def test_future_events_are_all_dated_and_translate_alike(
    sequence: list[HrEvent], days: int
) -> None:
    current: UserState | None = None
    when = NOW + timedelta(days=days)
    for ev in sequence:
        dated = HrEvent(ev.kind, ev.tenant, ev.employee_id, ev.profile, when, ev.active)
        now_result = run(ev, current)
        later = run(dated, current)
        assert [c.payload for c in later.commands] == [c.payload for c in now_result.commands]
        assert all(c.not_before == when for c in later.commands)
        assert later.state == now_result.state
        current = later.state if later.state is not None else current
