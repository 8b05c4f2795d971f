"""The deprovisioning guard: which commands wait for a person, and why."""

from __future__ import annotations

import pytest

from service.domain.commands import (
    APPROVAL,
    AssignLicence,
    Command,
    RevokeLicence,
    SuspendUser,
    UpdateUser,
)
from service.intake.guard import approvals, people

REF = {"tenant": "CRM-1", "employee_id": "E1"}
LEFT = [
    Command.of(RevokeLicence(**REF, app="vc")),
    Command.of(RevokeLicence(**REF, app="wb")),
    Command.of(SuspendUser(**REF)),
]
MIXED = [
    Command.of(UpdateUser(**REF, email="a@b.example", changes={"department": "X"})),
    Command.of(AssignLicence(**REF, app="wb")),
    Command.of(RevokeLicence(**REF, app="vc")),
]


def test_nothing_held_up_to_the_threshold() -> None:
    assert approvals(LEFT, recent=0, threshold=1, window_s=3600) == {}
    assert approvals(LEFT, recent=19, threshold=20, window_s=3600) == {}


def test_a_leaver_is_one_person_however_many_licences() -> None:
    """Three commands (two revokes and a suspend) of one employee count once."""
    assert people(LEFT) == 1
    assert approvals(LEFT, recent=2, threshold=3, window_s=3600) == {}
    other = Command.of(SuspendUser(tenant="CRM-1", employee_id="E2"))
    assert people([*LEFT, other]) == 2


def test_beyond_the_threshold_every_deprovisioning_command_is_held() -> None:
    held = approvals(LEFT, recent=3, threshold=3, window_s=3600)
    assert sorted(held) == [0, 1, 2]
    assert set(held.values()) == {
        f"{APPROVAL}4 people suspended/revoked in tenant CRM-1 within 60 min (limit 3)"
    }


def test_only_deprovisioning_is_held() -> None:
    held = approvals(MIXED, recent=5, threshold=5, window_s=1800)
    assert list(held) == [2]
    assert held[2] == (
        f"{APPROVAL}6 people suspended/revoked in tenant CRM-1 within 30 min (limit 5)"
    )


def test_no_deprovisioning_nothing_held_however_busy() -> None:
    assert approvals(MIXED[:2], recent=1000, threshold=0, window_s=60) == {}
    assert approvals([], recent=1000, threshold=0, window_s=60) == {}


def test_threshold_zero_holds_every_deprovisioning() -> None:
    held = approvals([LEFT[2]], recent=0, threshold=0, window_s=600)
    assert held == {
        0: f"{APPROVAL}1 people suspended/revoked in tenant CRM-1 within 10 min (limit 0)"
    }


@pytest.mark.parametrize(
    ("recent", "threshold", "held"),
    [(0, 0, True), (0, 1, False), (2, 2, True), (2, 3, False), (10, 5, True)],
)
def test_the_count_includes_recent_and_new(recent: int, threshold: int, held: bool) -> None:
    assert bool(approvals(LEFT, recent=recent, threshold=threshold, window_s=3600)) is held


def test_reasons_start_with_the_approval_marker() -> None:
    """The store's approve/deny select held commands by this prefix."""
    for reason in approvals(LEFT, recent=99, threshold=1, window_s=3600).values():
        assert reason.startswith("approval: ")
        assert len(reason) <= 255  # the outbox's hold_reason column
