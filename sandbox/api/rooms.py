"""Permanent rooms: get (own or a user's), update, and PIN reset (`X-Action: reset-pins`).

A room is made when the user first gets the app's licence (see users.py) and deactivated
when the licence is revoked. An inactive room can still be read, not changed (code 1000).
"""

from __future__ import annotations

from typing import Any

from sandbox import domain
from sandbox.api.meetings import room_fields
from sandbox.auth import can_see_user, visible_user
from sandbox.errors import ApiError, not_found
from sandbox.http import Ctx, Op, header_variants
from sandbox.state import Room
from sandbox.validation import Check


def render(room: Room, public_url: str) -> dict[str, Any]:
    return {
        "room_id": room.room_id,
        "user_id": room.user_id,
        "room_name": room.room_name,
        "app_type": room.app,
        "desc": room.desc,
        "mpin": room.mpin,
        "ppin": room.ppin,
        "direct_url": domain.direct_url(public_url, "room", room.room_id),
        "moderators": room.moderators,
        "participants": room.participants,
        "duration": room.duration,
        "wait_for_moderator": room.wait_for_moderator,
        "knock": room.knock,
        "auto_recording": room.auto_recording,
        "active": room.active,
    }


def _answer(ctx: Ctx, room: Room, msg: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"result": 1}
    if msg:
        out["msg"] = msg
    out["permanent_room"] = render(room, ctx.public_url)
    return out


def _room_of(ctx: Ctx, user_id: str) -> Room:
    room = domain.user_room(ctx.store, user_id, ctx.app_type())
    if room is None:
        raise not_found("permanent room")
    return room


def own_room(ctx: Ctx) -> dict[str, Any]:
    return _answer(ctx, _room_of(ctx, ctx.actor.user_id))


def user_room(ctx: Ctx) -> dict[str, Any]:
    user = visible_user(ctx.store, ctx.actor, ctx.path_params["user_id"])
    return _answer(ctx, _room_of(ctx, user.user_id))


def _changeable_room(ctx: Ctx) -> Room:
    store = ctx.store
    app = ctx.app_type()
    room = store.rooms.get(ctx.path_params["room_id"])
    owner = store.users.get(room.user_id) if room else None
    if (
        room is None
        or owner is None
        or room.app != app
        or not can_see_user(store, ctx.actor, owner)
    ):
        raise not_found("permanent room")
    if not room.active:
        raise ApiError(1000, "room_id")
    return room


def update_room(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    room = _changeable_room(ctx)
    owner = store.users[room.user_id]
    settings = domain.plan_settings(domain.licence_subscription(store, owner, room.app))
    check = Check(ctx.body)
    values = room_fields(check, settings["participants"], creating=False)
    check.done()
    for key, value in values.items():
        if value is not None:
            setattr(room, key, value)
    return _answer(ctx, room, "Permanent Room information has been updated")


def reset_pins(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    room = _changeable_room(ctx)
    check = Check(ctx.body)
    mpin = check.boolean("reset_mpin", 1901)
    ppin = check.boolean("reset_ppin", 1902)
    check.done()
    if not (mpin or ppin):
        raise ApiError(1903, "reset_mpin")
    # The old PIN stops working at once: session join looks PINs up in store.pins.
    if mpin:
        store.pins.pop(room.mpin, None)
        room.mpin = store.new_pin()
        store.pins[room.mpin] = ("room", room.room_id, "moderator")
    if ppin:
        store.pins.pop(room.ppin, None)
        room.ppin = store.new_pin()
        store.pins[room.ppin] = ("room", room.room_id, "participant")
    return _answer(ctx, room, "Access PIN has been updated.")


ROUTES: list[Op] = [
    Op("GET", "/meetings/permanent", own_room),
    Op("GET", "/meetings/permanent/{user_id}", user_room),
    *header_variants(
        "PATCH",
        "/meetings/permanent/{room_id}",
        ("x-action",),
        {"reset-pins": reset_pins},
        otherwise=update_room,
    ),
]
