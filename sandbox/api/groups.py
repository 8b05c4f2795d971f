"""Contact groups: add, edit, get, list, delete, and membership changes on PATCH.

A group belongs to the user who made it; another account's group answers 404 with the
reference's code 1818. Names are unique per owner, case-insensitively (1805 on add, 1810
on edit). `PATCH /contact-groups/{group_id}` renames the group, or, with the header
`X-License: add-contact|delete-contact` (the reference's header; `X-Action` is accepted
too), changes its members. Adding a member twice keeps the first `added_at`; removing
one that is not a member is a no-op, so a repeated call is harmless.
"""

from __future__ import annotations

from typing import Any

from sandbox.api.contacts import find_contact, find_group, owned_groups
from sandbox.errors import ApiError, not_found
from sandbox.http import Ctx, Op, header_variants
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import Group, Store, fmt, new_id
from sandbox.validation import Check


def visible_group(ctx: Ctx) -> Group:
    group = find_group(ctx.store, ctx.actor.user_id, ctx.path_params["group_id"])
    if group is None:
        raise not_found("group", 1818)
    return group


def render(g: Group) -> dict[str, Any]:
    return {
        "group_id": g.group_id,
        "group_name": g.group_name,
        "created_at": fmt(g.created_at),
        "updated_at": fmt(g.updated_at),
    }


def render_detail(store: Store, g: Group) -> dict[str, Any]:
    members = [
        {"contact_id": cid, "name": store.contacts[cid].name, "added_at": fmt(at)}
        for cid, at in g.contacts.items()
        if cid in store.contacts
    ]
    return {**render(g), "contacts": members}


def _ref(g: Group) -> dict[str, Any]:
    return {"group_id": g.group_id, "group_name": g.group_name}


def _group_name(ctx: Ctx) -> str:
    check = Check(ctx.body)
    name = check.string("group_name", 1804, required=1801, min_len=(3, 1802), max_len=(100, 1803))
    check.done()
    assert name is not None
    return name


def _contact_ids(ctx: Ctx) -> list[str]:
    check = Check(ctx.body)
    ids = check.array("contact_ids", 1812, required=1811)
    if ids is not None and not ids:
        check.fail(1811, "contact_ids")
    elif ids and not all(isinstance(i, str) for i in ids):
        check.fail(1813, "contact_ids")
    check.done()
    return list(dict.fromkeys(ids or []))


def add_group(ctx: Ctx) -> dict[str, Any]:
    store, owner_id = ctx.store, ctx.actor.user_id
    name = _group_name(ctx)
    named = store.groups_by_owner.setdefault(owner_id, {})
    if name.lower() in named:
        raise ApiError(1805, "group_name")
    now = store.now()
    group = Group(
        group_id=new_id(), owner_id=owner_id, group_name=name, created_at=now, updated_at=now
    )
    store.groups[group.group_id] = group
    named[name.lower()] = group.group_id
    return {"result": 1, "msg": f"Group {name} has been added.", "group": _ref(group)}


def edit_group(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    group = visible_group(ctx)
    name = _group_name(ctx)
    if name.lower() != group.group_name.lower():
        named = store.groups_by_owner[group.owner_id]
        if name.lower() in named:
            raise ApiError(1810, "group_name")
        del named[group.group_name.lower()]
        named[name.lower()] = group.group_id
    group.group_name = name
    group.updated_at = store.now()
    # The reference's example answers under `contact`; `group` is what callers expect.
    body = render(group)
    return {"result": 1, "msg": f"Group {name} has been updated.", "group": body, "contact": body}


def get_group(ctx: Ctx) -> dict[str, Any]:
    return {"result": 1, "group": render_detail(ctx.store, visible_group(ctx))}


LIST_SPEC = ListSpec(
    search={"group_name": Searchable(lambda g: g.group_name)},
    order={
        "group_name": lambda g: g.group_name,
        "created_at": lambda g: g.created_at,
        "updated_at": lambda g: g.updated_at,
    },
    default_order="created_at",
)


def list_groups(ctx: Ctx) -> dict[str, Any]:
    items = owned_groups(ctx.store, ctx.actor.user_id)
    rows, echo = paginate(items, ctx.query, LIST_SPEC, render)
    return {"result": 1, "search": echo, "groups": rows}


def delete_group(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    group = visible_group(ctx)
    del store.groups[group.group_id]
    del store.groups_by_owner[group.owner_id][group.group_name.lower()]
    return {
        "result": 1,
        "msg": f"Group {group.group_name} has been deleted",
        "group": _ref(group),
    }


def add_members(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    group = visible_group(ctx)
    ids = _contact_ids(ctx)
    if any(find_contact(store, group.owner_id, cid) is None for cid in ids):
        raise ApiError(1813, "contact_ids")
    now = store.now()
    added = [cid for cid in ids if cid not in group.contacts]
    for cid in added:
        group.contacts[cid] = now
    if added:
        group.updated_at = now
    return {
        "result": 1,
        "msg": f"{len(added)} contacts are added to the group {group.group_name}.",
        "group": render_detail(store, group),
    }


def delete_members(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    group = visible_group(ctx)
    removed = [cid for cid in _contact_ids(ctx) if group.contacts.pop(cid, None) is not None]
    if removed:
        group.updated_at = store.now()
    return {
        "result": 1,
        "msg": f"{len(removed)} contacts are deleted from the group {group.group_name}.",
        "group": render_detail(store, group),
    }


ROUTES: list[Op] = [
    Op("POST", "/contact-groups", add_group),
    Op("GET", "/contact-groups", list_groups),
    Op("GET", "/contact-groups/{group_id}", get_group),
    # The reference names this header X-License; X-Action is accepted as well.
    *header_variants(
        "PATCH",
        "/contact-groups/{group_id}",
        ("x-license", "x-action"),
        {"add-contact": add_members, "delete-contact": delete_members},
        otherwise=edit_group,
    ),
    Op("DELETE", "/contact-groups/{group_id}", delete_group),
]
