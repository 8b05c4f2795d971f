"""Provisioning Access: login, and the password routes (forgot, validate key, reset).

The reference gives the validate and reset routes as "HTTP Request: POST" but shows `PATCH`
in the examples, so both methods serve both: a body resets, an empty body validates
(docs/api-notes.md). The Video Session Access routes are in `sandbox.api.sessions`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sandbox import datapool
from sandbox.auth import ensure_active
from sandbox.errors import ApiError, unauthorized
from sandbox.http import Ctx, Op
from sandbox.state import ResetKey, Store, Token, User, check_password, fmt, hash_password
from sandbox.validation import Check

USER_TYPE_NAMES = {
    "TA": "Tenant Admin",
    "RA": "Reseller Admin",
    "CA": "Customer Admin",
    "AP": "User",
}


def app_access(user: User) -> dict[str, Any]:
    return {
        app: {
            "access": bool(user.apps.get(app, {}).get("access")),
            "status": user.apps.get(app, {}).get("status"),
            "wef": user.apps.get(app, {}).get("wef"),
        }
        for app in ("vc", "wb")
    }


def login(ctx: Ctx) -> dict[str, Any]:
    check = Check(ctx.body)
    email = check.string("email", 1105, required=1101)
    password = check.string("password", 1121, required=1123, strip=False)
    check.done()
    store = ctx.store
    user_id = store.user_by_email.get((email or "").lower())
    user = store.users.get(user_id) if user_id else None
    if user is None or not check_password(password or "", user.password_hash):
        raise unauthorized()
    ensure_active(store, user)
    now = store.now()
    token = secrets.token_urlsafe(32)
    store.tokens[token] = Token(user.user_id, now + timedelta(seconds=ctx.token_lifetime_s))
    user.last_login_time = now
    company = store.customers[user.customer_id]
    return {
        "result": 1,
        "token": token,
        "expires_in": int(ctx.token_lifetime_s),
        "user": {
            "user_id": user.user_id,
            "user_type": user.user_type,
            "user_type_desc": USER_TYPE_NAMES[user.user_type],
            "email": user.email,
            "first_name": user.first_name,
            "middle_name": user.middle_name,
            "last_name": user.last_name,
            "profile_pic": None,
            "company": {
                "company_id": company.customer_id,
                "company_name": company.customer_name,
                "company_legal_name": company.customer_legal_name,
            },
            "apps": app_access(user),
            "timezone": datapool.timezone_object(user.timezone_id or company.timezone_id, now),
            "last_login_time": fmt(now),
            "profile_domain": ctx.public_url,
        },
    }


RESET_KEY_LIFETIME = timedelta(hours=1)


def forgot_password(ctx: Ctx) -> dict[str, Any]:
    check = Check(ctx.body)
    email = check.email("email", required=1101, type_code=1105, invalid=1105, max_code=1107)
    check.done()
    assert email is not None
    store = ctx.store
    user_id = store.user_by_email.get(email.lower())
    if user_id is None:
        raise ApiError(1106, "email")
    user = store.users[user_id]
    key = secrets.token_urlsafe(24)
    expires_at = store.now() + RESET_KEY_LIFETIME
    store.reset_keys[key] = ResetKey(user.user_id, user.email, expires_at)
    store.mail(
        "password_reset",
        user.email,
        user_id=user.user_id,
        reset_key=key,
        expires_at=fmt(expires_at),
        url=f"{ctx.public_url}/password/{key}",
    )
    return {
        "result": 1,
        "data": {
            "email": user.email,
            "msg": f"An email has been sent to {user.email} with instructions to reset the "
            "password.",
        },
    }


def _reset_key(store: Store, key: str) -> tuple[ResetKey, User]:
    entry = store.reset_keys.get(key)
    user = store.users.get(entry.user_id) if entry else None
    if entry is None or user is None or entry.expires_at <= store.now():
        store.reset_keys.pop(key, None)
        raise ApiError(4201, "reset_key")
    return entry, user


def validate_reset_key(ctx: Ctx) -> dict[str, Any]:
    _, user = _reset_key(ctx.store, ctx.path_params["reset_key"])
    return {
        "result": 1,
        "data": {
            "email": user.email,
            "user_id": user.user_id,
            "first_name": user.first_name,
            "middle_name": user.middle_name,
            "last_name": user.last_name,
        },
    }


def reset_password(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    key = ctx.path_params["reset_key"]
    # The key is the object this route acts on: a dead key makes the body moot.
    entry, user = _reset_key(store, key)
    check = Check(ctx.body)
    email = check.email("email", required=1101, type_code=1105, invalid=1105, max_code=1107)
    password = check.string("password", 1121, required=1123, min_len=(8, 1122), strip=False)
    retyped = check.string("password_retyped", 1121, required=1123, strip=False)
    if email is not None and email.lower() != entry.email.lower():
        check.fail(4202, "email")
    if password is not None and retyped is not None and password != retyped:
        check.fail(3001, "password_retyped")
    if password is not None and check_password(password, user.password_hash):
        check.fail(3011, "password")
    check.done()
    assert password is not None
    user.password_hash = hash_password(password)
    user.updated_at = store.now()
    # Whoever held the old password must not keep a session, nor reuse an older mailed key.
    for token, held in list(store.tokens.items()):
        if held.user_id == user.user_id:
            del store.tokens[token]
    for other, pending in list(store.reset_keys.items()):
        if pending.user_id == user.user_id:
            del store.reset_keys[other]
    return {
        "result": 1,
        "data": {"email": user.email, "msg": "Your account password has been reset."},
    }


def _has_body(ctx: Ctx) -> bool:
    return bool(ctx.body)


def _password_ops(method: str) -> list[Op]:
    path = "/password/{reset_key}"
    return [
        Op(method, path, reset_password, public=True, variant="reset", when=_has_body),
        Op(method, path, validate_reset_key, public=True, variant="validate"),
    ]


ROUTES: list[Op] = [
    Op("POST", "/login", login, public=True),
    Op("POST", "/password", forgot_password, public=True),
    *_password_ops("POST"),
    *_password_ops("PATCH"),
]
