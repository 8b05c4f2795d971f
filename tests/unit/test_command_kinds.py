"""Each command kind is declared once: one payload model (with the kind's properties) and
one executor; the lists of kinds are derived from those declarations."""

from __future__ import annotations

import pytest

from service.devtools import sample_commands as c
from service.domain.commands import (
    DEPROVISIONING,
    PAYLOADS,
    PRODUCERS,
    Command,
    Kind,
    Payload,
    command,
)
from service.executors import EXECUTORS, REGISTRY
from service.executors.base import Exec
from service.executors.registry import executes
from service.outbox.outcomes import Done, Outcome


def test_every_kind_has_exactly_one_payload_model() -> None:
    assert set(PAYLOADS) == set(Kind)
    assert all(model.kind is kind for kind, model in PAYLOADS.items())
    assert len(set(PAYLOADS.values())) == len(Kind)  # no model serves two kinds


def test_every_kind_has_exactly_one_executor() -> None:
    assert set(EXECUTORS) == set(Kind)
    assert len(set(EXECUTORS.values())) == len(Kind)
    assert set(REGISTRY) == {kind.value for kind in Kind}
    assert all(REGISTRY[kind.value][0] is PAYLOADS[kind] for kind in Kind)


def test_a_second_payload_model_for_a_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="suspend_user has two payload models"):

        @command(Kind.SUSPEND_USER, result="ucaas.user.suspended")
        class AnotherSuspend(Payload):
            tenant: str


def test_a_second_executor_for_a_kind_is_refused() -> None:
    suspend = PAYLOADS[Kind.SUSPEND_USER]
    with pytest.raises(TypeError, match="suspend_user has two executors"):

        @executes(suspend)
        async def another_suspend(x: Exec, p: Payload) -> Outcome:
            return Done()

    assert EXECUTORS[Kind.SUSPEND_USER].__name__ == "suspend_user"


def test_derived_kind_lists() -> None:
    assert {Kind.SUSPEND_USER, Kind.REVOKE_LICENCE} == DEPROVISIONING
    assert {
        Kind.CREATE_CUSTOMER,
        Kind.CREATE_SUBSCRIPTION,
        Kind.CREATE_USER,
        Kind.REVOKE_LICENCE,
        # a customer reopened, a subscription active again or with more seats: what a
        # waiting user, licence or meeting may need
        Kind.REOPEN_CUSTOMER,
        Kind.SET_SUBSCRIPTION_STATUS,
        Kind.SET_SUBSCRIPTION_SEATS,
    } == PRODUCERS


@pytest.mark.parametrize(
    ("made", "kind"),
    [
        (c.create_user("T1", "E1"), Kind.CREATE_USER),
        (c.revoke("T1", "E1"), Kind.REVOKE_LICENCE),
        (c.create_subscription("T1"), Kind.CREATE_SUBSCRIPTION),
        (c.reopen_customer("T1"), Kind.REOPEN_CUSTOMER),
        (c.set_subscription_status("T1", "S"), Kind.SET_SUBSCRIPTION_STATUS),
        (c.set_subscription_seats("T1", 5), Kind.SET_SUBSCRIPTION_SEATS),
        (c.cancel("T1", "k", "a@t1.example"), Kind.CANCEL_MEETING),
    ],
)
def test_a_command_takes_its_payloads_kind(made: Command, kind: Kind) -> None:
    assert made.kind is kind
    assert Command.of(made.payload) == made
