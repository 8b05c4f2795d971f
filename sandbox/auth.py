"""Who is calling, and what their role lets them see.

Roles (user_type): TA tenant admin (everything), RA reseller admin (its own company and the
customers under it), CA customer admin (its own customer), AP application user (itself).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from sandbox.errors import ApiError, forbidden, not_found, unauthorized
from sandbox.state import Customer, Store, User, check_password

ADMIN_ROLES = ("TA", "RA")
MANAGER_ROLES = ("TA", "RA", "CA")


def check_api_id(store: Store, headers: Mapping[str, str], *, required: bool) -> None:
    api_id = headers.get("x-api-id")
    if api_id is None and not required:
        return
    if api_id is None or not hmac.compare_digest(api_id, store.api_id):
        raise unauthorized(4012)


def authenticate(store: Store, headers: Mapping[str, str]) -> User:
    header = headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    scheme = scheme.lower()
    user: User | None = None
    if scheme in ("token", "bearer") and credential:
        token = store.tokens.get(credential.strip())
        if token is None:
            raise unauthorized()
        if token.expires_at <= store.now():
            store.tokens.pop(credential.strip(), None)
            raise unauthorized(4011)
        user = store.users.get(token.user_id)
    elif scheme == "basic" and credential:
        try:
            email, _, password = base64.b64decode(credential).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized() from None
        user_id = store.user_by_email.get(email.lower())
        user = store.users.get(user_id) if user_id else None
        if user is None or not check_password(password, user.password_hash):
            raise unauthorized()
    if user is None:
        raise unauthorized()
    ensure_active(store, user)
    return user


def ensure_active(store: Store, user: User) -> None:
    customer = store.customers.get(user.customer_id)
    if user.status != "A" or customer is None or customer.status not in ("A", "U"):
        raise ApiError(4014, status=403)


def require_role(user: User, *roles: str) -> None:
    if user.user_type not in roles:
        raise forbidden()


def can_see_customer(store: Store, actor: User, customer_id: str) -> bool:
    if actor.user_type == "TA":
        return customer_id in store.customers
    if actor.user_type == "RA":
        customer = store.customers.get(customer_id)
        return customer is not None and actor.customer_id in (customer_id, customer.parent_id)
    return customer_id == actor.customer_id


def visible_customer(store: Store, actor: User, customer_id: str) -> Customer:
    if not can_see_customer(store, actor, customer_id):
        raise not_found("customer", 1234)
    return store.customers[customer_id]


def can_see_user(store: Store, actor: User, target: User) -> bool:
    if actor.user_type == "AP":
        return actor.user_id == target.user_id
    return can_see_customer(store, actor, target.customer_id)


def visible_user(store: Store, actor: User, user_id: str) -> User:
    target = store.users.get(user_id)
    if target is None or not can_see_user(store, actor, target):
        raise not_found("user")
    return target
