"""Provisioning and session access: login, passwords, session join/invite, branding."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sandbox import datapool
from sandbox.auth import ensure_active
from sandbox.errors import unauthorized
from sandbox.http import Ctx, Op
from sandbox.state import Token, User, check_password, fmt
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


ROUTES: list[Op] = [
    Op("POST", "/login", login, public=True),
]
