"""HR events to user commands over the desired state: every lifecycle rule, and properties
over any sequence of events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.commands import (
    AssignLicence,
    ChangeEmail,
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
from service.intake.licences import LicencePolicy, Rule
from service.intake.lifecycle import UserState, translate_hr

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
    assert again.note == "nothing changed: active already"


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


def test_email_change_is_held_for_a_person_and_the_state_keeps_the_ucaas_email() -> None:
    result = run(event("updated", email="ann.lee@new.example", first_name="Anne"), state())
    update, change = result.commands
    assert isinstance(update.payload, UpdateUser)
    assert update.payload.changes == {"first_name": "Anne"}
    assert update.payload.email == "ann@acme.example"  # how the executor finds the user
    assert change.payload == ChangeEmail(
        **REF, old_email="ann@acme.example", new_email="ann.lee@new.example"
    )
    assert change.held == (
        "needs a person: the UCaaS API cannot change an e-mail "
        "(ann@acme.example -> ann.lee@new.example)"
    )
    assert change.as_json()["held"] == change.held
    assert update.held is None
    assert result.state is not None
    assert result.state.profile.email == "ann@acme.example"
    assert result.state.email_flagged == "ann.lee@new.example"
    # flagged once: the same e-mail again is not flagged again
    again = run(event("updated", email="ann.lee@new.example", first_name="Anne"), result.state)
    assert again.commands == []


def test_updated_for_an_unknown_active_user_creates_it() -> None:
    result = run(event("updated"), None)
    assert kinds(result) == [Kind.CREATE_USER, Kind.ASSIGN_LICENCE, Kind.ASSIGN_LICENCE]
    assert result.state is not None
    assert result.state.status == "active"


def test_an_unknown_user_who_is_inactive_or_out_of_scope_is_recorded_only() -> None:
    for ev in (event("updated", active=False), event("joined", active=False), event("left")):
        result = run(ev, None)
        assert result.commands == []
        assert result.state is None
        assert "unknown user" in (result.note or "")
    scoped = HrEvent("joined", "CRM-1", "E1", PROFILE, None, out_of_scope="userType Contractor")
    assert run(scoped, None).commands == []


def test_active_false_on_any_event_of_an_active_user_is_a_leaver() -> None:
    for kind in ("updated", "joined", "leave_ended", "leave_started"):
        result = run(event(kind, active=False), state(apps=("vc",)))
        assert [c.payload for c in result.commands] == [
            RevokeLicence(**REF, app="vc"),
            SuspendUser(**REF),
        ], kind
        assert result.state is not None
        assert (result.state.status, result.state.apps) == ("left", ())


def test_leaving_the_policy_scope_is_leaving() -> None:
    ev = HrEvent("updated", "CRM-1", "E1", PROFILE, None, out_of_scope="country DE")
    result = run(ev, state(apps=("vc",)))
    assert kinds(result) == [Kind.REVOKE_LICENCE, Kind.SUSPEND_USER]


def test_active_true_on_a_leaver_is_a_rehire_whatever_the_event() -> None:
    gone = state("left", apps=(), department="Support")
    result = run(event("updated", department="Sales"), gone)
    assert [c.payload for c in result.commands] == [
        ReactivateUser(**REF),
        UpdateUser(**REF, email="ann@acme.example", changes={"department": "Sales"}),
        AssignLicence(**REF, app="vc"),
        AssignLicence(**REF, app="wb"),
    ]
    assert result.note == "rehire: same UCaaS user"


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


def test_leave_for_someone_already_on_leave_does_nothing() -> None:
    result = run(event("leave_started"), state("on_leave"))
    assert result.commands == []
    assert result.state is None


def test_leave_ended_reactivates() -> None:
    result = run(event("leave_ended"), state("on_leave"))
    assert [c.payload for c in result.commands] == [ReactivateUser(**REF)]
    assert result.state == state("active")


def test_return_for_someone_active_does_nothing() -> None:
    result = run(event("leave_ended"), state("active"))
    assert result.commands == []
    assert result.state is None


def test_leave_events_for_an_unknown_user_create_them_as_the_event_says() -> None:
    on_leave = run(event("leave_started"), None)
    assert kinds(on_leave) == [
        Kind.CREATE_USER,
        Kind.SUSPEND_USER,
        Kind.ASSIGN_LICENCE,
        Kind.ASSIGN_LICENCE,
    ]
    assert on_leave.state is not None
    assert on_leave.state.status == "on_leave"
    back = run(event("leave_ended"), None)
    assert kinds(back)[0] == Kind.CREATE_USER
    assert Kind.SUSPEND_USER not in kinds(back)


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
    assert again.state is None


def test_rehire_reuses_the_user_reactivates_updates_and_assigns() -> None:
    gone = state("left", apps=(), department="Support")
    result = run(event("joined", department="Sales", email="ann@other.example"), gone)
    assert [c.payload for c in result.commands] == [
        ReactivateUser(**REF),
        UpdateUser(**REF, email="ann@acme.example", changes={"department": "Sales"}),
        AssignLicence(**REF, app="vc"),
        AssignLicence(**REF, app="wb"),
        # the e-mail HR now gives is not the UCaaS user's: a person changes it
        ChangeEmail(**REF, old_email="ann@acme.example", new_email="ann@other.example"),
    ]
    assert {c.entity for c in result.commands} == {ENTITY}
    assert Kind.CREATE_USER not in kinds(result)
    assert result.note == "rehire: same UCaaS user"
    assert result.state is not None
    assert (result.state.status, result.state.apps) == ("active", ("vc", "wb"))
    assert result.state.profile == PROFILE.model_copy(update={"department": "Sales"})


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
