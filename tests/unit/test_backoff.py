"""Backoff: a jitter (full by default, half, none) below an exponential ceiling, capped,
never under Retry-After."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.backoff import Jitter, backoff_s


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 20.0), (40, 20.0)],
)
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    top = backoff_s(attempt, base_s=1.0, cap_s=20.0, rand=lambda: 1.0)
    assert top == pytest.approx(ceiling)


def test_full_jitter_scales_the_ceiling_by_the_random_draw() -> None:
    assert backoff_s(3, base_s=1.0, cap_s=20.0, rand=lambda: 0.0) == 0.0
    assert backoff_s(3, base_s=1.0, cap_s=20.0, rand=lambda: 0.25) == pytest.approx(1.0)
    assert backoff_s(3, base_s=1.0, cap_s=20.0, rand=lambda: 0.5) == pytest.approx(2.0)


def test_half_jitter_keeps_the_wait_in_the_upper_half_of_the_ceiling() -> None:
    assert backoff_s(3, base_s=1.0, cap_s=20.0, jitter="half", rand=lambda: 0.0) == 2.0
    assert backoff_s(3, base_s=1.0, cap_s=20.0, jitter="half", rand=lambda: 0.5) == 3.0
    assert backoff_s(3, base_s=1.0, cap_s=20.0, jitter="half", rand=lambda: 1.0) == 4.0


def test_no_jitter_is_the_ceiling_itself_and_draws_nothing() -> None:
    def no_draw() -> float:
        raise AssertionError("no jitter draws no random number")

    waits = [backoff_s(n, base_s=1.0, cap_s=30.0, jitter="none", rand=no_draw) for n in range(1, 9)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_uniform_draw_spreads_over_the_whole_range() -> None:
    rng = random.Random(1234)
    delays = [backoff_s(4, base_s=0.5, cap_s=300.0, rand=rng.random) for _ in range(2000)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    # Full jitter, not "equal jitter": values near 0 and near the ceiling both occur.
    assert min(delays) < 0.1
    assert max(delays) > 3.9
    assert 1.8 < sum(delays) / len(delays) < 2.2


def test_a_huge_attempt_number_does_not_overflow_past_the_cap() -> None:
    assert backoff_s(10_000, base_s=0.5, cap_s=300.0, rand=lambda: 1.0) == pytest.approx(300.0)


def test_retry_after_is_a_floor() -> None:
    # Jitter would give 0.5 s; the server asked for 7 s.
    assert backoff_s(2, base_s=1.0, cap_s=20.0, retry_after_s=7.0, rand=lambda: 0.25) == 7.0
    # ...even above the cap: the server's word beats our ceiling.
    assert backoff_s(9, base_s=1.0, cap_s=20.0, retry_after_s=45.0, rand=lambda: 1.0) == 45.0


def test_retry_after_below_the_jitter_does_not_shorten_it() -> None:
    assert backoff_s(4, base_s=1.0, cap_s=20.0, retry_after_s=1.0, rand=lambda: 0.75) == 6.0


def test_retry_after_zero_is_honoured_as_no_floor() -> None:
    assert backoff_s(1, base_s=1.0, cap_s=20.0, retry_after_s=0.0, rand=lambda: 0.5) == 0.5


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(min_value=0, max_value=5000),
    base=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=1000.0),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    retry_after=st.none() | st.floats(min_value=0.0, max_value=3600.0),
    jitter=st.sampled_from(["none", "half", "full"]),
)
def test_bounds_hold_for_any_input(
    attempt: int,
    base: float,
    cap: float,
    draw: float,
    retry_after: float | None,
    jitter: Jitter,
) -> None:
    delay = backoff_s(
        attempt, base_s=base, cap_s=cap, retry_after_s=retry_after, jitter=jitter, rand=lambda: draw
    )
    # base >= 0.001 and cap <= 1000: from attempt 22 on the cap is the ceiling.
    ceiling = cap if attempt > 30 else min(cap, base * 2.0 ** max(0, attempt - 1))
    floor = {"none": ceiling, "half": ceiling / 2, "full": 0.0}[jitter]
    assert delay >= 0.0
    if retry_after is None:
        assert floor <= delay <= ceiling
    else:
        assert delay >= retry_after
        assert delay <= max(ceiling, retry_after)
