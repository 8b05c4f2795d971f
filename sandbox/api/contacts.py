"""Contacts: add, edit, get, list, delete. A contact belongs to the user who made it.

Every role keeps contacts of its own; another account's contact does not exist for the
caller (404). The e-mail is unique among one owner's contacts (1721, case-insensitive).
The store's per-owner index answers that check, and scopes lists, without scanning the
contacts of other accounts. The owner lookups of groups live here too because adding a
contact with `group_ids` needs them and the groups module builds on this one.
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import ApiError, not_found
from sandbox.http import Ctx, Op
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import Contact, Group, Store, fmt, new_id
from sandbox.validation import Check


def owned_contacts(store: Store, owner_id: str) -> list[Contact]:
    return [store.contacts[cid] for cid in store.contacts_by_owner.get(owner_id, {}).values()]


def owned_groups(store: Store, owner_id: str) -> list[Group]:
    return [store.groups[gid] for gid in store.groups_by_owner.get(owner_id, {}).values()]


def find_contact(store: Store, owner_id: str, contact_id: Any) -> Contact | None:
    contact = store.contacts.get(contact_id) if isinstance(contact_id, str) else None
    return contact if contact is not None and contact.owner_id == owner_id else None


def find_group(store: Store, owner_id: str, group_id: Any) -> Group | None:
    group = store.groups.get(group_id) if isinstance(group_id, str) else None
    return group if group is not None and group.owner_id == owner_id else None


def visible_contact(ctx: Ctx) -> Contact:
    contact = find_contact(ctx.store, ctx.actor.user_id, ctx.path_params["contact_id"])
    if contact is None:
        raise not_found("contact")
    return contact


def render(c: Contact) -> dict[str, Any]:
    return {
        "contact_id": c.contact_id,
        "name": c.name,
        "email": c.email,
        "company": c.company,
        "designation": c.designation,
        "shared": c.shared,
        "created_at": fmt(c.created_at),
        "updated_at": fmt(c.updated_at),
    }


def _ref(c: Contact) -> dict[str, Any]:
    return {"contact_id": c.contact_id, "name": c.name}


def _fields(check: Check, *, creating: bool) -> dict[str, Any]:
    def req(code: int) -> int | None:
        return code if creating else None

    values = {
        "name": check.string(
            "name", 1714, required=req(1711), min_len=(3, 1712), max_len=(50, 1713)
        ),
        "email": check.email(
            "email", required=req(1724), type_code=1723, invalid=1722, max_code=1725
        ),
        "company": check.string("company", 1731, min_len=(5, 1733), max_len=(100, 1732)),
        "designation": check.string("designation", 1741, min_len=(5, 1743), max_len=(100, 1742)),
        "shared": check.boolean("shared", 1715),
    }
    return {k: v for k, v in values.items() if v is not None}


def _groups(check: Check, store: Store, owner_id: str) -> list[Group]:
    """The groups named by `group_ids`: each must be one of the caller's (1818)."""
    group_ids = check.array("group_ids", 1701)
    if group_ids is None:
        return []
    if not group_ids:
        check.fail(1702, "group_ids")
    found: dict[str, Group] = {}
    for group_id in group_ids:
        group = find_group(store, owner_id, group_id)
        if group is None:
            check.fail(1818, "group_ids")
            return []
        found[group.group_id] = group
    return list(found.values())


def add_contact(ctx: Ctx) -> dict[str, Any]:
    store, owner_id = ctx.store, ctx.actor.user_id
    check = Check(ctx.body)
    values = _fields(check, creating=True)
    groups = _groups(check, store, owner_id)
    check.done()
    owned = store.contacts_by_owner.setdefault(owner_id, {})
    key = values["email"].lower()
    if key in owned:
        raise ApiError(1721, "email")
    now = store.now()
    contact = Contact(
        contact_id=new_id(), owner_id=owner_id, created_at=now, updated_at=now, **values
    )
    store.contacts[contact.contact_id] = contact
    owned[key] = contact.contact_id
    for group in groups:
        group.contacts[contact.contact_id] = now
        group.updated_at = now
    return {
        "result": 1,
        "msg": f"{contact.name} has been added to the contact list.",
        "contact": _ref(contact),
    }


def edit_contact(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    contact = visible_contact(ctx)
    check = Check(ctx.body)
    values = _fields(check, creating=False)
    check.done()
    email = values.get("email")
    if email and email.lower() != contact.email.lower():
        owned = store.contacts_by_owner[contact.owner_id]
        if email.lower() in owned:
            raise ApiError(1721, "email")
        del owned[contact.email.lower()]
        owned[email.lower()] = contact.contact_id
    for key, value in values.items():
        setattr(contact, key, value)
    contact.updated_at = store.now()
    return {
        "result": 1,
        "msg": f"Information for {contact.name} has been updated.",
        "contact": _ref(contact),
    }


def get_contact(ctx: Ctx) -> dict[str, Any]:
    return {"result": 1, "contact": render(visible_contact(ctx))}


LIST_SPEC = ListSpec(
    search={
        "name": Searchable(lambda c: c.name),
        "email": Searchable(lambda c: c.email, "exact"),
        "company": Searchable(lambda c: c.company),
        "designation": Searchable(lambda c: c.designation),
    },
    order={
        "name": lambda c: c.name,
        "email": lambda c: c.email,
        "company": lambda c: c.company,
        "designation": lambda c: c.designation,
        "created_at": lambda c: c.created_at,
        "updated_at": lambda c: c.updated_at,
    },
    default_order="created_at",
)


def list_contacts(ctx: Ctx) -> dict[str, Any]:
    store, owner_id = ctx.store, ctx.actor.user_id
    email = ctx.query.get("search_string") if ctx.query.get("search_by") == "email" else None
    if email:  # the natural-key lookup of a sync is an index hit, not a scan
        found = store.contacts_by_owner.get(owner_id, {}).get(email.lower())
        items = [store.contacts[found]] if found else []
    else:
        items = owned_contacts(store, owner_id)
    rows, echo = paginate(items, ctx.query, LIST_SPEC, render)
    return {"result": 1, "search": echo, "contacts": rows}


def delete_contact(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    contact = visible_contact(ctx)
    del store.contacts[contact.contact_id]
    del store.contacts_by_owner[contact.owner_id][contact.email.lower()]
    now = store.now()
    for group in owned_groups(store, contact.owner_id):
        if group.contacts.pop(contact.contact_id, None) is not None:
            group.updated_at = now
    return {
        "result": 1,
        "msg": f"{contact.name} has been deleted from the contact list.",
        "contact": _ref(contact),
    }


ROUTES: list[Op] = [
    Op("POST", "/contacts", add_contact),
    Op("GET", "/contacts", list_contacts),
    Op("GET", "/contacts/{contact_id}", get_contact),
    Op("PATCH", "/contacts/{contact_id}", edit_contact),
    Op("DELETE", "/contacts/{contact_id}", delete_contact),
]
