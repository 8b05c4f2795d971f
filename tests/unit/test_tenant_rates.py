"""Per-tenant token buckets (tenant_rates.py), on a clock the test moves."""

from __future__ import annotations

from service.outbox.tenant_rates import TenantRates
from service.settings import DispatcherSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tenant_without_a_limit_is_never_counted() -> None:
    rates = TenantRates(DispatcherSettings(tenant_limits={"A": 5}))
    assert rates.limited
    assert rates.budget("B") is None
    rates.spend("B", 1000)
    assert rates.budget("B") is None
    assert not TenantRates(DispatcherSettings()).limited


def test_the_bucket_holds_a_second_and_refills_at_the_rate() -> None:
    clock = Clock()
    rates = TenantRates(DispatcherSettings(tenant_calls_per_s=10), clock=clock)
    assert rates.budget("A") == 10  # a new bucket starts full: one second's worth
    rates.spend("A", 10)
    assert rates.budget("A") == 0
    clock.now += 0.25
    assert rates.budget("A") == 2
    clock.now += 60
    assert rates.budget("A") == 10  # idle for long: still one second's worth at most


def test_settling_charges_extra_calls_and_gives_back_unused_ones() -> None:
    clock = Clock()
    rates = TenantRates(DispatcherSettings(tenant_limits={"A": 4}), clock=clock)
    rates.spend("A", 4)  # four commands claimed
    rates.settle([("A", 0), ("A", 1)])  # one made no call, one made its one call
    assert rates.budget("A") == 1
    rates.settle([("A", 3)])  # a lookup before creating, and a retry of it
    assert rates.budget("A") == 0
    clock.now += 0.25  # 1 token refilled, 1 owed
    assert rates.budget("A") == 0
    clock.now += 0.25
    assert rates.budget("A") == 1


def test_several_dispatchers_share_the_limit() -> None:
    clock = Clock()
    rates = TenantRates(
        DispatcherSettings(tenant_calls_per_s=30, tenant_limits={"BIG": 90}, processes=3),
        clock=clock,
    )
    assert rates.rate("A") == 10
    assert rates.rate("BIG") == 30
    rates.spend("A", 10)
    clock.now += 1
    assert rates.budget("A") == 10  # three processes: 30 calls/s in all
