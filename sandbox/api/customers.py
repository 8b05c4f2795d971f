"""Customers: get, list, add, edit (TA sees all; RA its own customers)."""

from __future__ import annotations

from typing import Any

from sandbox import datapool
from sandbox.auth import ADMIN_ROLES, can_see_customer, require_role, visible_customer
from sandbox.errors import ApiError
from sandbox.http import Ctx, Op
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import Customer, User, fmt, hash_password, new_id
from sandbox.validation import Check

TYPE_NAMES = {"T": "Tenant/Entity", "P": "Customer", "R": "Reseller", "A": "Affiliate"}
STATUS_NAMES = {"A": "Active", "S": "Suspended", "C": "Closed", "U": "Unverified"}
ADDRESS_KEYS = ("address_1", "address_2", "address_3", "city", "state", "zipcode", "country_id")


def render_address(address: dict[str, Any]) -> dict[str, Any]:
    country = datapool.countries().get(address.get("country_id") or "")
    out = {key: address.get(key) for key in ADDRESS_KEYS}
    out["country"] = country["country_name"] if country else None
    return out


def render(c: Customer) -> dict[str, Any]:
    return {
        "customer_id": c.customer_id,
        "customer_name": c.customer_name,
        "customer_legal_name": c.customer_legal_name,
        "customer_code": c.customer_code,
        "customer_type": c.customer_type,
        "customer_type_ex": TYPE_NAMES[c.customer_type],
        "individual": c.individual,
        "contact_name": c.contact_name,
        "contact_email": c.contact_email,
        "status": c.status,
        "status_ex": STATUS_NAMES[c.status],
        "parent_id": c.parent_id,
        "timezone_id": c.timezone_id,
        "office_address": render_address(c.office_address),
        "billing_address": render_address(c.billing_address),
        "track": {
            "added": fmt(c.added),
            "modified": fmt(c.modified),
            "activated": fmt(c.activated),
            "suspended": fmt(c.suspended),
            "closed": fmt(c.closed),
        },
    }


def _address(check: Check, name: str, *, billing: bool) -> dict[str, Any] | None:
    sub = check.obj(name, 1341 if not billing else 1371, required=None if billing else 1341)
    if sub is None:
        return None
    codes = (
        {
            "address_1": (1371, None),
            "address_2": (1372, None),
            "address_3": (1373, None),
            "city": (1380, None),
            "state": (1381, None),
        }
        if billing
        else {
            "address_1": (1343, 1342),
            "address_2": (1344, None),
            "address_3": (1345, None),
            "city": (1354, 1353),
            "state": (1356, None),
        }
    )
    out: dict[str, Any] = {}
    for key, (type_code, required) in codes.items():
        out[key] = sub.string(key, type_code, required=required, max_len=(200, type_code))
    out["zipcode"] = sub.string("zipcode", 1356, max_len=(20, 1356))
    country_id = sub.string("country_id", 1355)
    if country_id is None:
        # `country` with an ISO 3166 code is accepted too: it is what callers usually hold.
        country_id = _country_by_code(sub.body.get("country"))
        if country_id is None and not billing:
            sub.fail(1355, "country_id")
    elif country_id not in datapool.countries():
        sub.fail(1357, "country_id")
    out["country_id"] = country_id
    return out


def _country_by_code(code: Any) -> str | None:
    if not isinstance(code, str):
        return None
    for country in datapool.countries().values():
        if code.upper() in (country["iso2_code"], country["iso3_code"]):
            return str(country["country_id"])
    return None


def _fields(ctx: Ctx, *, creating: bool) -> dict[str, Any]:
    check = Check(ctx.body)
    req = (lambda code: code) if creating else (lambda code: None)
    values: dict[str, Any] = {
        "customer_name": check.string(
            "customer_name", 1302, required=req(1301), max_len=(100, 1303)
        ),
        "customer_legal_name": check.string(
            "customer_legal_name", 1306, required=req(1305), max_len=(100, 1306)
        ),
        "customer_code": check.string("customer_code", 1309, max_len=(50, 1310)),
        "individual": check.boolean("individual", 1312),
        "contact_email": check.email(
            "contact_email", required=req(1331), type_code=1334, invalid=1335, max_code=1332
        ),
        "timezone_id": check.string("timezone_id", 1684),
    }
    contact = check.string("contact_name", 1322, max_len=(100, 1322))
    if contact is None and check.has("contact_first_name"):
        first = check.string("contact_first_name", 1322)
        last = check.string("contact_last_name", 1322)
        contact = " ".join(p for p in (first, last) if p) or None
    if (
        contact is None
        and creating
        and not any(e.field in ("contact_name", "contact_first_name") for e in check.errors)
    ):
        check.fail(1321, "contact_name")
    values["contact_name"] = contact
    if values["timezone_id"] and values["timezone_id"] not in datapool.zones():
        check.fail(1684, "timezone_id")
    if creating or check.has("office_address"):
        values["office_address"] = _address(check, "office_address", billing=False)
    if check.has("billing_address"):
        values["billing_address"] = _address(check, "billing_address", billing=True)
    if creating:
        values["customer_type"] = (
            check.string("customer_type", 1307, choices=(("P", "R"), 1308)) or "P"
        )
    else:
        values["status"] = check.string("status", 1391, choices=(tuple(STATUS_NAMES), 1391))
    check.done()
    return {k: v for k, v in values.items() if v is not None}


def _check_unique(ctx: Ctx, values: dict[str, Any], current: Customer | None = None) -> None:
    store = ctx.store
    email = values.get("contact_email")
    if (
        email
        and email.lower() in store.contact_emails
        and (current is None or current.contact_email.lower() != email.lower())
    ):
        raise ApiError(1333, "contact_email")
    code = values.get("customer_code")
    if (
        code
        and code in store.customer_by_code
        and (current is None or current.customer_code != code)
    ):
        raise ApiError(1311, "customer_code")


def get_customer(ctx: Ctx) -> dict[str, Any]:
    require_role(ctx.actor, *ADMIN_ROLES)
    customer = visible_customer(ctx.store, ctx.actor, ctx.path_params["customer_id"])
    return {"result": 1, "customer": render(customer)}


LIST_SPEC = ListSpec(
    search={
        "customer_name": Searchable(lambda c: c.customer_name),
        "customer_legal_name": Searchable(lambda c: c.customer_legal_name),
        "customer_code": Searchable(lambda c: c.customer_code, "exact"),
        "individual": Searchable(lambda c: c.individual, "bool"),
        "status": Searchable(lambda c: c.status, "exact"),
        "customer_type": Searchable(lambda c: c.customer_type, "exact"),
        "contact_email": Searchable(lambda c: c.contact_email, "exact"),
    },
    order={
        "customer_name": lambda c: c.customer_name,
        "customer_legal_name": lambda c: c.customer_legal_name,
        "customer_code": lambda c: c.customer_code,
        "status": lambda c: c.status,
        "added": lambda c: c.added,
        "created_at": lambda c: c.added,
    },
    dates={"from_join_dt": (lambda c: c.added, "from"), "to_join_dt": (lambda c: c.added, "to")},
    default_order="added",
)


def list_customers(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *ADMIN_ROLES)
    store = ctx.store
    code = ctx.query.get("search_string") if ctx.query.get("search_by") == "customer_code" else None
    if code:  # a natural-key lookup is an index hit, not a scan
        found = store.customer_by_code.get(code)
        items: list[Customer] = [store.customers[found]] if found else []
    else:
        items = list(store.customers.values())
    visible = [
        c
        for c in items
        if c.customer_id != actor.customer_id and can_see_customer(store, actor, c.customer_id)
    ]
    rows, echo = paginate(visible, ctx.query, LIST_SPEC, render)
    return {"result": 1, "search": echo, "customers": rows}


def add_customer(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *ADMIN_ROLES)
    values = _fields(ctx, creating=True)
    if actor.user_type == "RA" and values["customer_type"] != "P":
        raise ApiError(1308, "customer_type")
    _check_unique(ctx, values)
    store = ctx.store
    now = store.now()
    values.setdefault("billing_address", dict(values["office_address"]))
    customer = store.add_customer(
        Customer(
            customer_id=new_id(),
            parent_id=actor.customer_id,
            added=now,
            modified=now,
            activated=now,
            **values,
        )
    )
    # The customer's portal login: a customer admin (or reseller admin) account.
    username = f"admin-{customer.customer_id[:12]}@portal.sandbox.test"
    password = new_id()[:16]
    store.add_user(
        User(
            user_id=new_id(),
            customer_id=customer.customer_id,
            user_type="RA" if customer.customer_type == "R" else "CA",
            first_name=customer.contact_name[:50],
            email=username,
            password_hash=hash_password(password),
            created_at=now,
            updated_at=now,
            activated_at=now,
        )
    )
    return {
        "result": 1,
        "msg": f"{customer.customer_name} has been added.",
        "customer": {"customer_id": customer.customer_id, "customer_name": customer.customer_name},
        "portal_access": {
            "url": f"{ctx.public_url}/portal",
            "username": username,
            "password": password,
        },
    }


def edit_customer(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    require_role(actor, *ADMIN_ROLES)
    store = ctx.store
    customer = visible_customer(store, actor, ctx.path_params["customer_id"])
    values = _fields(ctx, creating=False)
    _check_unique(ctx, values, customer)
    now = store.now()
    if "contact_email" in values:
        store.contact_emails.discard(customer.contact_email.lower())
        store.contact_emails.add(values["contact_email"].lower())
    if "customer_code" in values:
        store.customer_by_code.pop(customer.customer_code or "", None)
        store.customer_by_code[values["customer_code"]] = customer.customer_id
    status = values.get("status")
    if status and status != customer.status:
        if status == "A":
            customer.activated = now
        elif status == "S":
            customer.suspended = now
        elif status == "C":
            customer.closed = now
    for key, value in values.items():
        setattr(customer, key, value)
    customer.modified = now
    return {
        "result": 1,
        "msg": f"{customer.customer_name} has been updated.",
        "customer": {"customer_id": customer.customer_id, "customer_name": customer.customer_name},
    }


ROUTES = [
    Op("GET", "/customers/{customer_id}", get_customer),
    Op("GET", "/customers", list_customers),
    Op("POST", "/customers", add_customer),
    Op("PATCH", "/customers/{customer_id}", edit_customer),
]
