"""Users: add, edit, get, list, and licence assign/revoke (`X-License`) on PATCH."""

from __future__ import annotations

import secrets
from typing import Any

from sandbox import domain
from sandbox.api.access import app_access
from sandbox.auth import MANAGER_ROLES, can_see_customer, can_see_user, require_role, visible_user
from sandbox.errors import ApiError
from sandbox.http import Ctx, Op, header_variants
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import APPS, User, fmt, hash_password, new_id
from sandbox.validation import Check

USER_TYPES = ("AP", "CA")
STATUSES = ("A", "S")


def render(u: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user_id": u.user_id,
        "customer_id": u.customer_id,
        "user_type": u.user_type,
        "first_name": u.first_name,
        "middle_name": u.middle_name,
        "last_name": u.last_name,
        "email": u.email,
        "status": u.status,
        "designation": u.designation,
        "department": u.department,
        "created_at": fmt(u.created_at),
        "updated_at": fmt(u.updated_at),
        "activated_at": fmt(u.activated_at),
        "suspended_at": fmt(u.suspended_at),
    }
    for app, access in app_access(u).items():
        access["subscription_id"] = u.apps.get(app, {}).get("subscription_id")
        out[app] = access
    return out


def _profile(check: Check, *, creating: bool) -> dict[str, Any]:
    def req(code: int) -> int | None:
        return code if creating else None

    return {
        # A blank first name is refused on edit too: every user has one.
        "first_name": check.string(
            "first_name",
            1112,
            required=1111 if creating or check.has("first_name") else None,
            max_len=(50, 1113),
        ),
        "middle_name": check.string("middle_name", 1115, max_len=(50, 1116)),
        "last_name": check.string("last_name", 1119, max_len=(50, 1120)),
        "status": check.string("status", 1131, choices=(STATUSES, 1191)),
        "department": check.string("department", 1141, max_len=(100, 1142)),
        "designation": check.string("designation", 1145, max_len=(100, 1146)),
        "user_type": check.string(
            "user_type", 1152, required=req(1151), choices=(USER_TYPES, 1153)
        ),
    }


def add_user(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *MANAGER_ROLES)
    store = ctx.store
    check = Check(ctx.body)
    values = _profile(check, creating=True)
    email = check.email("email", required=1101, type_code=1105, invalid=1105, max_code=1107)
    password = check.string("password", 1121, min_len=(8, 1122), strip=False)
    welcome = check.boolean("send_welcome_mail", 1161)
    customer_id = actor.customer_id
    # Refused rather than ignored when out of scope: a user made in the wrong customer
    # would hold that customer's licences.
    if check.has("customer_id"):
        wanted = check.string("customer_id", 1202)
        if wanted is not None and not can_see_customer(store, actor, wanted):
            check.fail(1234, "customer_id")
        customer_id = wanted or customer_id
    if email is not None and email.lower() in store.user_by_email:
        check.fail(1103, "email")
    check.done()
    assert email is not None
    now = store.now()
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    status = values.pop("status") or "A"
    user = store.add_user(
        User(
            user_id=new_id(),
            customer_id=customer_id,
            email=email,
            password_hash=hash_password(password),
            status=status,
            created_at=now,
            updated_at=now,
            activated_at=now if status == "A" else None,
            suspended_at=now if status == "S" else None,
            **{k: v for k, v in values.items() if v is not None},
        )
    )
    if welcome:
        store.mail("welcome", email, user_id=user.user_id, password_generated=generated)
    return {
        "result": 1,
        "msg": f"User {user.full_name} has been added.",
        "user": {"user_id": user.user_id, "name": user.full_name},
    }


def edit_user(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *MANAGER_ROLES)
    store = ctx.store
    user = visible_user(store, actor, ctx.path_params["user_id"])
    check = Check(ctx.body)
    values = _profile(check, creating=False)
    if values["user_type"] and user.user_type not in USER_TYPES:
        # Only AP and CA can be set; a TA or RA login must not be demoted by accident.
        check.fail(1153, "user_type")
    check.done()
    now = store.now()
    status = values.pop("status")
    if status and status != user.status:
        user.status = status
        if status == "S":
            user.suspended_at = now
            # A suspended user's tokens stop working at once.
            for token, entry in list(store.tokens.items()):
                if entry.user_id == user.user_id:
                    del store.tokens[token]
        else:
            user.activated_at = now
    for key, value in values.items():
        if value is not None:
            # "" empties an optional field (a blank first name was refused above); it
            # reads back as null, like a field never set.
            setattr(user, key, value or None)
    user.updated_at = now
    return {
        "result": 1,
        "msg": f"User {user.full_name} has been updated",
        "user": {"user_id": user.user_id, "name": user.full_name},
    }


def get_user(ctx: Ctx) -> dict[str, Any]:
    require_role(ctx.actor, *MANAGER_ROLES)
    return {
        "result": 1,
        "user": render(visible_user(ctx.store, ctx.actor, ctx.path_params["user_id"])),
    }


LIST_SPEC = ListSpec(
    search={
        "first_name": Searchable(lambda u: u.first_name),
        "last_name": Searchable(lambda u: u.last_name),
        "email": Searchable(lambda u: u.email, "exact"),
        "status": Searchable(lambda u: u.status, "exact"),
        "user_type": Searchable(lambda u: u.user_type, "exact"),
        "vc": Searchable(lambda u: u.apps.get("vc", {}).get("access", False), "bool"),
        "wb": Searchable(lambda u: u.apps.get("wb", {}).get("access", False), "bool"),
        "customer_id": Searchable(lambda u: u.customer_id, "exact"),
    },
    order={
        "first_name": lambda u: u.first_name,
        "last_name": lambda u: u.last_name,
        "email": lambda u: u.email,
        "status": lambda u: u.status,
        "created_at": lambda u: u.created_at,
    },
    dates={
        "from_create_dt": (lambda u: u.created_at, "from"),
        "to_create_dt": (lambda u: u.created_at, "to"),
    },
    default_order="created_at",
)


def list_users(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *MANAGER_ROLES)
    store = ctx.store
    if ctx.query.get("search_by") == "email" and ctx.query.get("search_string"):
        found = store.user_by_email.get(ctx.query["search_string"].lower())  # index, not a scan
        items = [store.users[found]] if found else []
    else:
        items = list(store.users.values())
    visible = [u for u in items if u.user_id != actor.user_id and can_see_user(store, actor, u)]
    rows, echo = paginate(visible, ctx.query, LIST_SPEC, render)
    return {"result": 1, "search": echo, "users": rows}


def _app(check: Check) -> str | None:
    return check.string("app", 1172, required=1171, choices=(APPS, 1172))


def assign_licence(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *MANAGER_ROLES)
    store = ctx.store
    user = visible_user(store, actor, ctx.path_params["user_id"])
    check = Check(ctx.body)
    app = _app(check)
    subscription_id = check.string("subscription_id", 1405, required=1404)
    send_mail = check.boolean("send_access_mail", 1408)
    check.done()
    assert app and subscription_id
    sub = store.subscriptions.get(subscription_id)
    if sub is None or sub.customer_id != user.customer_id:
        raise ApiError(1220, "subscription_id")
    if sub.app != app:
        raise ApiError(1173, "subscription_id")
    if not domain.subscription_active(sub, store.now()):
        raise ApiError(domain.NO_SUBSCRIPTION[app], "subscription_id")
    if user.apps.get(app, {}).get("access"):
        raise ApiError(1261, "app")
    if sub.seats_used >= sub.qty:
        raise ApiError(1262, "subscription_id")
    sub.seats_used += 1
    now = store.now()
    user.apps[app] = {
        "access": True,
        "status": "A",
        "wef": fmt(now),
        "subscription_id": sub.subscription_id,
    }
    room = domain.ensure_room(store, user, app, sub)
    url = domain.direct_url(ctx.public_url, "room", room.room_id)
    if send_mail:
        store.mail("access", user.email, app=app, room_id=room.room_id, url=url)
    app_name = "meeting" if app == "vc" else "webinar"
    return {
        "result": 1,
        "msg": f"The user {user.full_name} has been provided access to the {app_name} application.",
        "user": {
            "user_id": user.user_id,
            "name": user.full_name,
            "access": {
                "app": app,
                "url": url,
                "ppin": room.ppin,
                "mpin": room.mpin,
                "room_id": room.room_id,
            },
        },
    }


def revoke_licence(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *MANAGER_ROLES)
    store = ctx.store
    user = visible_user(store, actor, ctx.path_params["user_id"])
    check = Check(ctx.body)
    app = _app(check)
    check.done()
    assert app
    licence = user.apps.get(app) or {}
    if not licence.get("access"):
        raise ApiError(1260, "app")
    sub = store.subscriptions.get(licence.get("subscription_id") or "")
    if sub is not None and sub.seats_used > 0:
        sub.seats_used -= 1
    user.apps[app] = {
        "access": False,
        "status": "R",
        "wef": fmt(store.now()),
        "subscription_id": None,
    }
    room = domain.user_room(store, user.user_id, app)
    if room is not None:
        room.active = False
    app_name = "meeting" if app == "vc" else "webinar"
    return {
        "result": 1,
        "msg": f"The user {user.full_name} has been revoked access to the {app_name} application.",
        "user": {"user_id": user.user_id, "name": user.full_name, "access": {"app": app}},
    }


ROUTES: list[Op] = [
    Op("POST", "/users", add_user),
    Op("GET", "/users", list_users),
    Op("GET", "/users/{user_id}", get_user),
    *header_variants(
        "PATCH",
        "/users/{user_id}",
        ("x-license",),
        {"assign": assign_licence, "revoke": revoke_licence},
        otherwise=edit_user,
    ),
]
