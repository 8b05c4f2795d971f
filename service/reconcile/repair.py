"""Drift to the commands that fix it: the kinds and payloads translation emits. Pure.

    customer missing        create_customer (+ close_customer if it was closed/suspended)
    customer differs        update_customer with the pushed values (status "A" included),
                            close_customer when the pushed status is C or S
    subscription missing    create_subscription (starting today if the purchase is older),
                            + set_subscription_status if it was suspended or expired
    subscription differs    none: reconcile leaves a subscription's seats, plan and status
                            to a person (the CRM's changes set them)
    user missing            create_user (+ suspend_user if it was suspended); its licences
                            are their own drifts: assign_licence
    user differs            update_user with the pushed values; suspend_user/reactivate_user
                            for the status; an e-mail cannot be changed through the API
    licence missing         assign_licence
    meeting gone/differs    update_meeting with the pushed spec (re-schedules a cancelled
                            one), only while it has not started

A customer whose status is repaired back to active refuses its tenant's login until then
(403, 4014): the tenant's other repairs of the same run are queued held behind that
command and run once it is done (shell.py).

An entity with unfinished commands gets no new ones: they were accepted after the state
the mapping holds, and a repair behind them would undo them. Its drift is compared again
once they have run (an earlier reconcile's repair among them is reported as queued).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from service.domain.commands import (
    AssignLicence,
    CloseCustomer,
    Command,
    CreateCustomer,
    CreateSubscription,
    CreateUser,
    CustomerProfile,
    ReactivateUser,
    SetSubscriptionStatus,
    SuspendUser,
    UpdateCustomer,
    UpdateMeeting,
    UpdateUser,
    UserProfile,
)
from service.reconcile.drift import employee_of, meeting_spec
from service.reconcile.model import SOURCE, Drift, MeetingOwner, OpenCommand, RepairStatus, What

Plan = tuple[tuple[Command, ...] | None, str | None]
RECREATED = "re-created with a new UCaaS id"


def with_repairs(
    drifts: Iterable[Drift],
    *,
    refs: Mapping[str, MeetingOwner],
    open_commands: Mapping[str, OpenCommand],
    now: datetime,
) -> list[Drift]:
    """Each drift with its repair commands and status (`planned` until queued)."""
    out: list[Drift] = []
    for drift in drifts:
        commands, reason = repair_commands(drift, refs=refs, now=now)
        pending = open_commands.get(drift.entity)
        if commands and pending is not None:
            mine = pending.source == SOURCE
            status = RepairStatus.ALREADY_QUEUED if mine else RepairStatus.WAITS
            why = f"repair #{pending.id} queued" if mine else f"waits for #{pending.id}"
            out.append(replace(drift, repair=None, status=status, reason=why))
        elif commands:
            out.append(replace(drift, repair=commands, status=RepairStatus.PLANNED, reason=reason))
        else:
            out.append(replace(drift, repair=None, status=RepairStatus.NONE, reason=reason))
    return out


def repair_commands(drift: Drift, *, refs: Mapping[str, MeetingOwner], now: datetime) -> Plan:
    """The commands that bring UCaaS back to the pushed state, or None and why not."""
    try:
        if drift.kind == "customer":
            return _customer(drift)
        if drift.kind == "subscription":
            return _subscription(drift, now.date())
        if drift.kind == "user":
            return _user(drift)
        if drift.kind == "licence":
            employee, app = employee_of(drift.external_id)
            payload = AssignLicence(tenant=drift.tenant, employee_id=employee, app=app)
            return (Command.of(payload),), None
        if drift.kind == "meeting":
            return _meeting(drift, refs.get(drift.external_id), now)
    except ValidationError as exc:
        return None, f"the pushed state is incomplete ({exc.error_count()} field(s))"
    return None, f"no repair for {drift.kind}"


def reopens(drift: Drift) -> bool:
    """The repair makes the customer active again (it was suspended, closed, ...)."""
    return (
        drift.kind == "customer"
        and drift.what is What.DIFFERS
        and "status" in drift.fields
        and drift.state.get("status") not in ("C", "S")
    )


def _pushed(drift: Drift, *names: str) -> dict[str, Any]:
    return {n: drift.fields[n][0] for n in names if n in drift.fields}


# -- customers and subscriptions ----------------------------------------------------------
def _customer(drift: Drift) -> Plan:
    crm_id = drift.external_id
    status = drift.state.get("status")
    closing: tuple[Command, ...] = ()
    if status in ("C", "S"):
        closing = (Command.of(CloseCustomer(crm_id=crm_id, status=status)),)
    if drift.what is What.MISSING:
        profile = CustomerProfile.model_validate(
            {k: v for k, v in drift.state.items() if k in CustomerProfile.model_fields}
        )
        create = Command.of(CreateCustomer(crm_id=crm_id, profile=profile))
        return (create, *closing), RECREATED
    changes: dict[str, Any] = {}
    for name in drift.fields:
        top = name.split(".", 1)[0]
        if top != "status":
            changes[top] = drift.state[top]  # an address goes whole: the API wants it so
    if "status" in drift.fields and not closing:
        changes["status"] = "A"
    commands: list[Command] = []
    if changes:
        commands.append(Command.of(UpdateCustomer(crm_id=crm_id, changes=changes)))
    if "status" in drift.fields and closing:
        commands.extend(closing)
    return tuple(commands), None


def _subscription(drift: Drift, today: date) -> Plan:
    if drift.what is not What.MISSING:
        return None, "reconcile does not change a subscription: change it in UCaaS or in the CRM"
    fields = {k: v for k, v in drift.state.items() if k in CreateSubscription.model_fields}
    payload = CreateSubscription.model_validate(fields)
    if payload.start < today:  # the API refuses a start in the past
        payload = payload.model_copy(update={"start": today})
    commands = [Command.of(payload)]
    status = drift.state.get("status")
    if status in ("S", "X"):  # the purchase was cancelled or expired: made as it was
        ended = SetSubscriptionStatus(
            crm_id=payload.crm_id, purchase_id=payload.purchase_id, status=status
        )
        commands.append(Command.of(ended))
    return tuple(commands), "re-created from today" if payload.start == today else None


# -- users --------------------------------------------------------------------------------
def _user(drift: Drift) -> Plan:
    ref = {"tenant": drift.tenant, "employee_id": drift.external_id}
    status = drift.state.get("status") or "A"
    if drift.what is What.MISSING:
        profile = UserProfile.model_validate(
            {k: v for k, v in drift.state.items() if k in UserProfile.model_fields}
        )
        suspend = (Command.of(SuspendUser(**ref)),) if status == "S" else ()
        return (Command.of(CreateUser(**ref, profile=profile)), *suspend), RECREATED
    commands: list[Command] = []
    reason = None
    changes = _pushed(drift, *UserProfile.model_fields)
    if changes.pop("email", None) is not None:
        reason = "the API cannot change a user's e-mail: a person decides"
    email = drift.state.get("email")
    if changes and isinstance(email, str):
        commands.append(Command.of(UpdateUser(**ref, email=email, changes=changes)))
    if "status" in drift.fields:
        kind = SuspendUser if status == "S" else ReactivateUser
        commands.append(Command.of(kind(**ref)))
    return (tuple(commands) or None), reason


# -- meetings -----------------------------------------------------------------------------
def _meeting(drift: Drift, ref: MeetingOwner | None, now: datetime) -> Plan:
    spec = meeting_spec(drift.state)
    if spec is None:
        return None, "no meeting spec was recorded"
    if spec.start_time <= now:
        return None, "already started: left as it is"
    if ref is None:
        return None, "no schedule command on record to take the organiser from"
    payload = UpdateMeeting(
        meeting_key=drift.external_id,
        tenant=drift.tenant,
        organizer_email=ref.organizer_email,
        app=ref.app,
        meeting=spec,
    )
    return (Command.of(payload),), None
