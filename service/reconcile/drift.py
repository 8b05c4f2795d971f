"""Drift: what the service last pushed (the id mappings' states) against what UCaaS
reports now, object by object. Pure.

Only what the service pushed is compared: a field it never set (absent or None in the
state) is not its business, and objects it never made are not looked at. Country codes are
not compared (the service pushes "FR", the API answers "France"), nor meeting time zones
(the API may have substituted UTC for a zone it does not know).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from connectors.ucaas.models.customers import Address as ApiAddress
from connectors.ucaas.models.customers import Customer
from connectors.ucaas.models.meetings import Meeting, to_utc
from connectors.ucaas.models.subscriptions import Subscription
from connectors.ucaas.models.users import User
from service.domain.commands import (
    MeetingSpec,
    customer_entity,
    meeting_entity,
    subscription_entity,
    user_entity,
)
from service.reconcile.model import KINDS, Comparison, Drift, Observed, Pushed, What

USER_FIELDS = ("email", "first_name", "middle_name", "last_name", "department", "designation")
CUSTOMER_FIELDS = (
    "customer_name",
    "customer_legal_name",
    "contact_name",
    "contact_email",
    "individual",
)
ADDRESS_FIELDS = ("address_1", "address_2", "address_3", "city", "state", "zipcode")
MEETING_FIELDS = ("room_name", "desc", "start_time", "duration", "moderators", "participants")
Fields = dict[str, tuple[Any, Any]]


def employee_of(licence_id: str) -> tuple[str, str]:
    """A licence mapping's external id is "employee:app"."""
    employee, _, app = licence_id.rpartition(":")
    return employee, app


def meeting_spec(state: Mapping[str, Any]) -> MeetingSpec | None:
    try:
        return MeetingSpec.model_validate(dict(state))
    except ValidationError:
        return None


def meeting_over(pushed: Pushed, now: datetime) -> bool:
    """A meeting that has ended is history: not compared, not counted."""
    spec = meeting_spec(pushed.state)
    return spec is not None and spec.start_time + timedelta(minutes=spec.duration) <= now


def detect(
    pushed: Iterable[Pushed],
    observed: Observed,
    now: datetime,
    kinds: Iterable[str] = KINDS,
) -> Comparison:
    """Compare every mapping of `kinds` with its UCaaS object; the drifts in repair order.

    User mappings are given whenever licences are compared (a licence names its user by
    employee id), even when users themselves are not compared."""
    mappings = list(pushed)
    wanted = frozenset(kinds)
    users = {(p.tenant, p.external_id): p for p in mappings if p.kind == "user"}
    checked = 0
    drifts: list[Drift] = []
    for p in sorted(mappings, key=lambda m: (KINDS.index(m.kind), m.tenant, m.external_id)):
        if p.kind not in wanted or (p.kind == "meeting" and meeting_over(p, now)):
            continue
        if p.kind == "licence" and (p.tenant, employee_of(p.external_id)[0]) not in users:
            continue  # its user is not being compared (filtered out, or never mapped)
        checked += 1
        found = _compare(p, observed, users, now)
        if found is not None:
            drifts.append(found)
    return Comparison(checked, drifts)


def _compare(
    p: Pushed, observed: Observed, users: Mapping[tuple[str, str], Pushed], now: datetime
) -> Drift | None:
    if p.kind == "customer":
        return _customer(p, observed.customers.get(p.ucaas_id))
    if p.kind == "subscription":
        return _subscription(p, observed.subscriptions.get(p.ucaas_id))
    if p.kind == "user":
        return _user(p, observed.users.get(p.ucaas_id))
    if p.kind == "licence":
        user = users[(p.tenant, employee_of(p.external_id)[0])]
        return _licence(p, user, observed.users.get(user.ucaas_id))
    if p.kind == "meeting":
        return _meeting(p, observed.meetings.get(p.ucaas_id), now)
    return None


def _drift(p: Pushed, what: What, entity: str, fields: Fields | None = None) -> Drift:
    return Drift(
        kind=p.kind,
        tenant=p.tenant,
        external_id=p.external_id,
        ucaas_id=p.ucaas_id,
        what=what,
        entity=entity,
        fields=fields or {},
        state=p.state,
    )


def _differ(pushed: Mapping[str, Any], actual: Any, names: Iterable[str]) -> Fields:
    out: Fields = {}
    for name in names:
        want = pushed.get(name)
        have = getattr(actual, name, None)
        if want is not None and want != have:
            out[name] = (want, have)
    return out


# -- customers and subscriptions ----------------------------------------------------------
def _customer(p: Pushed, actual: Customer | None) -> Drift | None:
    entity = customer_entity(p.external_id)
    if actual is None:
        return _drift(p, What.MISSING, entity)
    fields = _differ(p.state, actual, CUSTOMER_FIELDS)
    for name in ("office_address", "billing_address"):
        fields.update(_address(name, p.state.get(name), getattr(actual, name)))
    wanted = p.state.get("status") or "A"
    if actual.status is not None and actual.status != wanted:
        fields["status"] = (wanted, actual.status)
    return _drift(p, What.DIFFERS, entity, fields) if fields else None


def _address(name: str, pushed: Any, actual: ApiAddress | None) -> Fields:
    if not isinstance(pushed, Mapping):
        return {}
    return {f"{name}.{k}": (v, a) for k, (v, a) in _differ(pushed, actual, ADDRESS_FIELDS).items()}


def _subscription(p: Pushed, actual: Subscription | None) -> Drift | None:
    entity = subscription_entity(p.tenant)
    if actual is None:
        return _drift(p, What.MISSING, entity)
    fields: Fields = {}
    if p.state.get("plan_id") is not None and p.state["plan_id"] != actual.plan_id:
        fields["plan_id"] = (p.state["plan_id"], actual.plan_id)
    seats = actual.user_license.qty if actual.user_license else None
    if p.state.get("seats") is not None and seats is not None and p.state["seats"] != seats:
        fields["seats"] = (p.state["seats"], seats)
    status = actual.subscription.status if actual.subscription else None
    wanted = p.state.get("status") or "A"  # set_subscription_status records S, X, A
    if status is not None and status != wanted:
        fields["status"] = (wanted, status)
    return _drift(p, What.DIFFERS, entity, fields) if fields else None


# -- users and licences -------------------------------------------------------------------
def _user(p: Pushed, actual: User | None) -> Drift | None:
    entity = user_entity(p.tenant, p.external_id)
    if actual is None:
        return _drift(p, What.MISSING, entity)
    fields = _differ(p.state, actual, USER_FIELDS)
    if "email" in fields and str(fields["email"][0]).lower() == str(actual.email or "").lower():
        del fields["email"]  # e-mails compare without case
    wanted = p.state.get("status") or "A"
    if actual.status is not None and actual.status != wanted:
        fields["status"] = (wanted, actual.status)
    return _drift(p, What.DIFFERS, entity, fields) if fields else None


def _licence(p: Pushed, user: Pushed, actual: User | None) -> Drift | None:
    employee, app = employee_of(p.external_id)
    entity = user_entity(p.tenant, employee)
    if actual is None:
        return _drift(p, What.MISSING, entity)  # with its user
    access = getattr(actual, app, None)
    if access is not None and access.access:
        return None
    return _drift(p, What.MISSING, entity, {"access": (True, False)})


# -- meetings -----------------------------------------------------------------------------
def _meeting(p: Pushed, actual: Meeting | None, now: datetime) -> Drift | None:
    entity = meeting_entity(p.external_id)
    if actual is None:
        return _drift(p, What.GONE, entity)
    spec = meeting_spec(p.state)
    if spec is None:
        return None  # nothing comparable was recorded
    wanted = spec.model_dump() | {"start_time": to_utc(spec.start_time)}
    wanted["room_name"] = spec.room_name.strip()
    fields: Fields = {}
    for name in MEETING_FIELDS:
        have = getattr(actual, name, None)
        if name == "room_name":
            have = (have or "").strip()
        if wanted[name] != have:
            fields[name] = (wanted[name], have)
    invited = sorted(e.lower() for e in (actual.invitees.emails if actual.invitees else []))
    if sorted(e.lower() for e in spec.invitees) != invited:
        fields["invitees"] = (sorted(spec.invitees), invited)
    return _drift(p, What.DIFFERS, entity, fields) if fields else None
