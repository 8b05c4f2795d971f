"""Subscriptions: get, list (TA, RA, CA read), add and update (TA only)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox import datapool
from sandbox.auth import MANAGER_ROLES, can_see_customer, require_role
from sandbox.errors import FieldError, not_found
from sandbox.http import Ctx, Op
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import Subscription, fmt, new_id
from sandbox.validation import Check

STATUS_NAMES = {"A": "Active", "X": "Expired", "S": "Suspended"}
BASE_NAMES = {"UL": "User License", "UB": "Usage"}


def render(s: Subscription) -> dict[str, Any]:
    plan = datapool.PLANS[s.plan_id]
    price = s.unit_price if s.unit_price is not None else plan["user_license"]["price"]["USD"]
    return {
        "subscription_id": s.subscription_id,
        "customer_id": s.customer_id,
        "plan_id": s.plan_id,
        "app_const": s.app,
        "plan_name": plan["plan_name"],
        "room_type": s.room_type,
        "title": s.title,
        "settings": dict(plan["settings"]),
        "subscription": {
            "base": "UL",
            "base_ex": BASE_NAMES["UL"],
            "trial": False,
            "allow_meeting_overlap": s.allow_meeting_overlap,
            "prepaid": s.prepaid,
            "postpaid": not s.prepaid,
            "subsxn_date": s.subsxn_date,
            "expiry_date": s.expiry_date,
            "currency": s.currency,
            "status": s.status,
            "status_ex": STATUS_NAMES[s.status],
        },
        "features": {"screenshare": True, "whiteboard": True, "livestreaming": s.app == "wb"},
        "user_license": {
            "qty": s.qty,
            "used": s.seats_used,
            "unit_price": {s.currency: price},
            "total_price": {s.currency: round(price * s.qty, 2)},
        },
        "connect": plan["connect"],
        "records": plan["records"],
        "download": plan["download"],
        "storage": plan["storage"],
        "created_at": fmt(s.created_at),
    }


def _visible(ctx: Ctx, subscription_id: str) -> Subscription:
    sub = ctx.store.subscriptions.get(subscription_id)
    if sub is None or not can_see_customer(ctx.store, ctx.actor, sub.customer_id):
        raise not_found("subscription", 1220)
    return sub


def get_subscription(ctx: Ctx) -> dict[str, Any]:
    require_role(ctx.actor, *MANAGER_ROLES)
    return {"result": 1, "subscription": render(_visible(ctx, ctx.path_params["subscription_id"]))}


LIST_SPEC = ListSpec(
    search={
        "customer_id": Searchable(lambda s: s.customer_id, "exact"),
        "app": Searchable(lambda s: s.app, "exact"),
        "plan_id": Searchable(lambda s: s.plan_id, "exact"),
        "status": Searchable(lambda s: s.status, "exact"),
        "base": Searchable(lambda s: "UL", "exact"),
    },
    order={
        "subsxn_date": lambda s: s.subsxn_date,
        "expiry_date": lambda s: s.expiry_date,
        "plan_id": lambda s: s.plan_id,
        "customer_id": lambda s: s.customer_id,
        "created_at": lambda s: s.created_at,
    },
    dates={
        "from_subxn_dt": (lambda s: _as_dt(s.subsxn_date), "from"),
        "to_subxn_dt": (lambda s: _as_dt(s.subsxn_date), "to"),
        "from_expiry_dt": (lambda s: _as_dt(s.expiry_date), "from"),
        "to_expiry_dt": (lambda s: _as_dt(s.expiry_date), "to"),
    },
    default_order="created_at",
)


def _as_dt(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def list_subscriptions(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *MANAGER_ROLES)
    store = ctx.store
    if ctx.query.get("search_by") == "customer_id" and ctx.query.get("search_string"):
        items = store.customer_subscriptions(ctx.query["search_string"])  # index, not a scan
    else:
        items = list(store.subscriptions.values())
    visible = [s for s in items if can_see_customer(store, actor, s.customer_id)]
    rows, echo = paginate(visible, ctx.query, LIST_SPEC, render)
    return {"result": 1, "search": echo, "subscriptions": rows}


def _answer(ctx: Ctx, sub: Subscription, msg: str) -> dict[str, Any]:
    customer = ctx.store.customers[sub.customer_id]
    plan = datapool.PLANS[sub.plan_id]
    return {
        "result": 1,
        "msg": msg.format(
            customer=customer.customer_name, plan=plan["plan_name"], app=sub.app, qty=sub.qty
        ),
        "subscription": {
            "subscription_id": sub.subscription_id,
            "customer_id": sub.customer_id,
            "customer_name": customer.customer_name,
            "plan_id": sub.plan_id,
            "plan_name": plan["plan_name"],
            "qty": sub.qty,
        },
    }


def _text(check: Check, name: str, max_len: int = 100) -> str | None:
    """An optional free-text field. The reference gives these no error code, so a wrong
    type answers 4000 (malformed body) with a message naming the field."""
    value = check.body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > max_len:
        msg = f"{check.prefix}{name} must be a string of at most {max_len} characters."
        check.errors.append(FieldError(4000, f"{check.prefix}{name}", msg))
        return None
    return value.strip()


def add_subscription(ctx: Ctx) -> dict[str, Any]:
    require_role(ctx.actor, "TA")
    store = ctx.store
    check = Check(ctx.body)
    customer_id = check.string("customer_id", 1202, required=1201)
    plan_id = check.string("plan_id", 1212, required=1211)
    room_type = check.string("room_type", 1326, required=1326)
    title = _text(check, "title")
    terms = check.obj("subscription", 1229, required=1221)
    values: dict[str, Any] = {}
    start: date | None = None
    if terms is not None:
        values["qty"] = terms.integer("no_of_license", 1254, required=1255, minimum=(1, 1255))
        price = terms.number("unit_price", 1256)
        if price is not None and not 1 <= price <= 100000:
            terms.fail(1256, "unit_price")
        values["unit_price"] = price
        values["allow_meeting_overlap"] = terms.boolean("allow_meeting_overlap", 1228)
        values["prepaid"] = terms.boolean("prepaid", 1232)
        values["payment_cycle"] = _text(terms, "payment_cycle", 50)
        values["po"] = _text(terms, "po")
        mode = terms.body.get("payment_mode")
        if mode is not None and mode not in ("F", "O"):
            msg = "subscription.payment_mode must be F (offline) or O (online)."
            terms.errors.append(FieldError(4000, "subscription.payment_mode", msg))
            mode = None
        values["payment_mode"] = mode
        # The reference's table spells the date `subxn_date`, its example `subsxn_date`.
        alias = terms.has("subxn_date") and not terms.has("subsxn_date")
        date_key = "subxn_date" if alias else "subsxn_date"
        start = terms.api_date(date_key, required=1327, invalid=1328)
        today = store.now().date()
        if start is not None and start < today:
            terms.fail(1329, date_key)
            start = None
    if customer_id is not None and customer_id not in store.customers:
        check.fail(1234, "customer_id")
    if plan_id is not None and plan_id not in datapool.PLANS:
        check.fail(1325, "plan_id")
    check.done()
    assert customer_id and plan_id and start and room_type
    now = store.now()
    sub = Subscription(
        subscription_id=new_id(),
        customer_id=customer_id,
        plan_id=plan_id,
        app=datapool.PLANS[plan_id]["app"],
        subsxn_date=start.isoformat(),
        expiry_date=(start + timedelta(days=365)).isoformat(),
        room_type=room_type,
        title=title,
        created_at=now,
        **{k: v for k, v in values.items() if v is not None},
    )
    store.add_subscription(sub)
    return _answer(
        ctx, sub, "{customer} has subscribed to plan: {plan} (For {app}). User license: {qty}."
    )


def update_subscription(ctx: Ctx) -> dict[str, Any]:
    require_role(ctx.actor, "TA")
    sub = _visible(ctx, ctx.path_params["subscription_id"])
    check = Check(ctx.body)
    terms = check.obj("subscription", 1229)
    status = qty = None
    if terms is not None:
        status = terms.string("status", 1230, choices=(tuple(STATUS_NAMES), 1231))
        qty = terms.integer("no_of_license", 1254, minimum=(1, 1255))
        if qty is not None and qty < sub.seats_used:
            terms.fail(1257, "no_of_license")
            qty = None
    check.done()
    if status:
        sub.status = status
    if qty:
        sub.qty = qty
    return _answer(
        ctx, sub, "Subscription information for {customer} is updated for plan: {plan} (For {app})."
    )


ROUTES: list[Op] = [
    Op("GET", "/subscriptions/{subscription_id}", get_subscription),
    Op("GET", "/subscriptions", list_subscriptions),
    Op("POST", "/subscriptions", add_subscription),
    Op("PATCH", "/subscriptions/{subscription_id}", update_subscription),
]
