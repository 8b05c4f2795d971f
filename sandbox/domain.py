"""Rules more than one route group needs: subscriptions in force, seats, rooms, stages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandbox import datapool
from sandbox.errors import ApiError
from sandbox.state import Meeting, Room, Store, Subscription, User, new_id

NO_SUBSCRIPTION = {"vc": 1615, "wb": 1616}
NO_LICENCE = {"vc": 1617, "wb": 1618}


def subscription_active(sub: Subscription, now: datetime) -> bool:
    """In force today: active status, started (a future-dated purchase waits), not expired."""
    today = now.strftime("%Y-%m-%d")
    return sub.status == "A" and sub.subsxn_date <= today <= sub.expiry_date


def active_subscription(store: Store, customer_id: str, app: str) -> Subscription | None:
    now = store.now()
    for sub in store.customer_subscriptions(customer_id):
        if sub.app == app and subscription_active(sub, now):
            return sub
    return None


def licence_subscription(store: Store, user: User, app: str) -> Subscription:
    """The subscription behind the user's licence for `app`; 1615-1618 when there is none."""
    licence = user.apps.get(app) or {}
    if not licence.get("access"):
        raise ApiError(NO_LICENCE[app], "user_id")
    sub = store.subscriptions.get(licence.get("subscription_id") or "")
    if sub is None or not subscription_active(sub, store.now()):
        sub = active_subscription(store, user.customer_id, app)
    if sub is None:
        raise ApiError(NO_SUBSCRIPTION[app], "user_id")
    return sub


def plan_settings(sub: Subscription) -> dict[str, Any]:
    settings: dict[str, Any] = datapool.PLANS[sub.plan_id]["settings"]
    return settings


def user_room(store: Store, user_id: str, app: str) -> Room | None:
    room_id = store.room_by_user.get((user_id, app))
    return store.rooms.get(room_id) if room_id else None


def ensure_room(store: Store, user: User, app: str, sub: Subscription) -> Room:
    """The user's permanent room for `app`: made on the first licence, reactivated after."""
    room = user_room(store, user.user_id, app)
    if room is None:
        settings = plan_settings(sub)
        room = Room(
            room_id=new_id(),
            user_id=user.user_id,
            app=app,
            room_name=f"{user.full_name}'s room"[:50],
            mpin=store.new_pin(),
            ppin=store.new_pin(),
            moderators=1,
            participants=min(10, settings["participants"]),
            duration=min(60, settings["duration"]),
        )
        store.add_room(room)
    room.active = True
    return room


def direct_url(public_url: str, kind: str, object_id: str) -> str:
    return f"{public_url}/join/{kind}/{object_id}"


def stage(meeting: Meeting, now: datetime) -> str:
    end = meeting.start_time + timedelta(minutes=meeting.duration)
    if now < meeting.start_time:
        return "upcoming"
    if now < end:
        return "current"
    return "past"
