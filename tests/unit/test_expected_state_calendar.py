"""The oracle's reading of feeds (service/devtools/expected_state.py `calendar`), which the
demo and the chaos suite compare UCaaS with: meetings live, cancelled, and held by the
mass-cancel guard."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from service.devtools.expected_state import ExpectedState, Meeting

ORGANISER = "Lena@Team.example"
START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)


def meetings(*numbers: int) -> dict[str, Meeting]:
    return {f"m{n}": (START + timedelta(days=n), f"Meeting {n}", 30) for n in numbers}


def folded(*versions: dict[str, Meeting]) -> tuple[Counter[Meeting], ...]:
    state = ExpectedState().calendar(ORGANISER, list(versions))
    who = ORGANISER.lower()
    return state.live[who], state.cancelled[who], state.held[who]


def test_everyday_changes_cancel() -> None:
    live, cancelled, held = folded(meetings(1, 2, 3, 4, 5, 6), meetings(1, 2, 3, 4, 7))
    assert live == Counter(meetings(1, 2, 3, 4, 7).values())
    assert cancelled == Counter(meetings(5, 6).values()) and not held


def test_a_mass_cancel_and_an_emptied_feed_are_held() -> None:
    live, cancelled, held = folded(meetings(1, 2, 3, 4, 5, 6), meetings(1, 2, 7))
    assert live == Counter(meetings(1, 2, 3, 4, 5, 6, 7).values())
    assert held == Counter(meetings(3, 4, 5, 6).values()) and not cancelled
    live, cancelled, held = folded(meetings(1, 2), {})
    assert live == held == Counter(meetings(1, 2).values()) and not cancelled


def test_a_held_version_then_restored_or_passing() -> None:
    live, cancelled, held = folded(meetings(1, 2, 3, 4), {}, meetings(1, 2, 3, 4))
    assert live == Counter(meetings(1, 2, 3, 4).values()) and not cancelled and not held
    live, cancelled, held = folded(meetings(*range(1, 9)), {}, meetings(*range(1, 7)))
    assert live == Counter(meetings(*range(1, 7)).values())
    assert cancelled == Counter(meetings(7, 8).values()) and not held
