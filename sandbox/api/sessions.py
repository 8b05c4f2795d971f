"""Video Session Access: join a session by PIN, invite others by e-mail, read branding.

None of these routes takes credentials: a PIN, a room or a meeting id is the key. They
still require `X-Api-Id` (the endpoint enforces it for public ops).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox import domain
from sandbox.errors import ApiError, not_found
from sandbox.http import Ctx, Op
from sandbox.state import Cdr, Session, Store, new_id
from sandbox.validation import Check, is_email

PIN_LENGTH = (6, 10)


@dataclass(frozen=True)
class Target:
    """What a PIN opens: a permanent room, or a scheduled meeting (in its room)."""

    kind: str  # room | meeting
    object_id: str
    room_id: str
    meeting_id: str | None
    host_id: str
    app: str
    role: str
    ppin: str
    duration: int  # minutes a session may last


def _pin(check: Check, *, required: int | None) -> str | None:
    return check.string(
        "pin", 2107, required=required, min_len=(PIN_LENGTH[0], 2107), max_len=(PIN_LENGTH[1], 2107)
    )


def _room_target(store: Store, room_id: str, role: str) -> Target | None:
    room = store.rooms.get(room_id)
    if room is None or not room.active:
        return None
    return Target(
        kind="room",
        object_id=room.room_id,
        room_id=room.room_id,
        meeting_id=None,
        host_id=room.user_id,
        app=room.app,
        role=role,
        ppin=room.ppin,
        duration=room.duration,
    )


def _meeting_target(store: Store, meeting_id: str, role: str) -> Target | None:
    meeting = store.meetings.get(meeting_id)
    if meeting is None or meeting.cancelled_at is not None:
        return None
    return Target(
        kind="meeting",
        object_id=meeting.meeting_id,
        room_id=meeting.room_id,
        meeting_id=meeting.meeting_id,
        host_id=meeting.user_id,
        app=meeting.app,
        role=role,
        ppin=meeting.ppin,
        duration=meeting.duration,
    )


def _pin_target(store: Store, pin: str) -> Target:
    """2108 when the PIN opens no active room and no meeting that is still on."""
    kind, object_id, role = store.pins.get(pin, ("", "", ""))
    target = None
    if kind == "room":
        target = _room_target(store, object_id, role)
    elif kind == "meeting":
        target = _meeting_target(store, object_id, role)
    if target is None or target.host_id not in store.users:
        raise ApiError(2108, "pin")
    return target


def _session_for(store: Store, target: Target, now: datetime) -> Session:
    """The open session of the room or meeting, or a new one.

    Nothing in the API ends a session, so one that has run past the room's (or meeting's)
    longest duration is closed at that limit here, and the join opens the next session.
    """
    index = store.open_sessions
    key = (target.room_id, target.meeting_id)
    session = store.sessions.get(index.get(key, ""))
    limit = timedelta(minutes=target.duration)
    if session is not None and session.disconnect_dt is None:
        if now < session.connect_dt + limit:
            return session
        session.disconnect_dt = session.connect_dt + limit
    session = Session(
        session_id=new_id(),
        meeting_id=target.meeting_id,
        room_id=target.room_id,
        user_id=target.host_id,
        customer_id=store.users[target.host_id].customer_id,
        app=target.app,
        trans_date=now,
        connect_dt=now,
    )
    store.sessions[session.session_id] = session
    index[key] = session.session_id
    return session


def join_session(ctx: Ctx) -> dict[str, Any]:
    check = Check(ctx.body)
    pin = _pin(check, required=2101)
    name = check.string("name", 2111, required=2111, max_len=(100, 2111))
    user_ref = check.string("user_ref", 2112, required=2112, max_len=(100, 2112))
    check.done()
    assert pin is not None and name is not None and user_ref is not None
    store = ctx.store
    target = _pin_target(store, pin)
    host = store.users[target.host_id]
    now = store.now()
    session = _session_for(store, target, now)
    store.cdrs.append(
        Cdr(
            cdr_id=new_id(),
            session_id=session.session_id,
            meeting_id=session.meeting_id,
            room_id=session.room_id,
            customer_id=session.customer_id,
            name=name,
            user_ref=user_ref,
            role=target.role,
            connect_dt=now,
        )
    )
    return {
        "result": 1,
        # A video-session token: it opens the session, never the provisioning API.
        "token": secrets.token_urlsafe(32),
        "user": {
            "meeting_id": session.meeting_id,
            "customer_id": session.customer_id,
            "room_id": session.room_id,
            "role": target.role,
            "user_id": host.user_id,
            "first_name": host.first_name,
            "middle_name": host.middle_name,
            "last_name": host.last_name,
            "email": host.email,
            "profile_pic": None,
            "session_id": session.session_id,
        },
    }


def _invite_target(store: Store, check: Check) -> Target | None:
    """The room or meeting named by `pin`, else `meeting_id`, else `room_id`."""
    pin = _pin(check, required=None)
    meeting_id = check.string("meeting_id", 2101)
    room_id = check.string("room_id", 2101)
    if pin is not None:
        try:
            return _pin_target(store, pin)
        except ApiError:
            check.fail(2108, "pin")
            return None
    if meeting_id is not None:
        target = _meeting_target(store, meeting_id, "participant")
        if target is None:  # a cancelled meeting no longer exists
            raise not_found("meeting")
        return target
    if room_id is not None:
        if room_id not in store.rooms:
            raise not_found("room")
        target = _room_target(store, room_id, "participant")
        if target is None:
            check.fail(1000, "room_id")
        return target
    if not any(e.field in ("pin", "meeting_id", "room_id") for e in check.errors):
        check.fail(2101, "pin")
    return None


def invite(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    check = Check(ctx.body)
    target = _invite_target(store, check)
    invitees = check.array("invitees", 2208, required=2207)
    if invitees is not None and not invitees:
        check.fail(2209, "invitees")
    for n, address in enumerate(invitees or []):
        if not is_email(address):
            check.fail(2210, f"invitees.{n}")
    check.done()
    assert target is not None and invitees is not None
    url = domain.direct_url(ctx.public_url, target.kind, target.object_id)
    # One mail per address, however often it is listed.
    unique = list(dict.fromkeys(address.lower() for address in invitees))
    for address in unique:
        store.mail(
            "invitation",
            address,
            room_id=target.room_id,
            meeting_id=target.meeting_id,
            ppin=target.ppin,
            url=url,
        )
    return {"result": 1, "desc": "Invitation email has been sent.", "invited": len(unique)}


def _default_branding(app: str, domain_name: str | None, public_url: str) -> dict[str, Any]:
    label = "Meetings" if app == "vc" else "Webinars"
    url = f"https://{domain_name}" if domain_name else public_url
    return {
        "enabled": True,
        "name": f"Sandbox {label}",
        "url": url,
        "logo": f"{url}/assets/logo.png",
        "logo_inner": f"{url}/assets/logo-inner.png",
        "logo_icon": f"{url}/assets/logo-icon.png",
        "favicon": f"{url}/favicon.ico",
        "desc": f"Sandbox video {label.lower()}",
        "exit_url": url,
        "copyright": "Sandbox",
        "login_page": {"heading": f"Join a {label[:-1].lower()}", "content": ""},
        "fields": [
            {
                "label": "Name",
                "type": "text",
                "length": 50,
                "required": True,
                "id": False,
                "order": 1,
                "messages": {"required": "Enter your name."},
            },
            {
                "label": "Email",
                "type": "email",
                "length": 100,
                "required": False,
                "id": True,
                "order": 2,
                "messages": {"required": "Enter your email.", "email": "Enter a valid email."},
            },
        ],
        "email": {
            "from_email": "no-reply@sandbox.test",
            "from_name": f"Sandbox {label}",
            "replyto_email": "no-reply@sandbox.test",
            "template": "default",
        },
        "tos": {"enabled": False, "terms_url": None, "privacy_url": None},
        "credits": {"enabled": False, "name": None, "logo_url": None, "target_url": None},
        "options": {"live_streaming": False, "screenshare": True, "whiteboard": app == "vc"},
        "api": {"referrer_check": False, "referrer_domain": None, "user_ref_check": False},
    }


def _overlay(base: dict[str, Any], changes: dict[str, Any]) -> None:
    """Merge one level deep: a customer may change `tos.enabled` and keep the other keys."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key].update(copy.deepcopy(value))
        else:
            base[key] = copy.deepcopy(value)


def _customer_overlay(objects: dict[str, dict[str, Any]], branding: dict[str, Any]) -> None:
    # Customer branding is either per app ({"vc": {...}, "wb": {...}}) or one set for both.
    per_app = any(app in branding for app in objects)
    for app, obj in objects.items():
        changes = branding.get(app) if per_app else branding
        if isinstance(changes, dict):
            _overlay(obj, changes)


def _meeting_overlay(obj: dict[str, Any], branding: dict[str, Any]) -> None:
    login = branding.get("login") or {}
    if login.get("headline") is not None:
        obj["login_page"]["heading"] = login["headline"]
    if login.get("desc") is not None:
        obj["login_page"]["content"] = login["desc"]
    # The banner and video options have no key of their own in the documented object.
    obj["login"] = copy.deepcopy(login)
    obj["session"] = copy.deepcopy(branding.get("session") or {})


def get_branding(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    domain_name = ctx.query.get("domain") or None
    customer_id = ctx.query.get("customer_id") or None
    meeting_id = ctx.query.get("meeting_id") or None
    if not (domain_name or customer_id or meeting_id):
        raise ApiError(2001, "domain")
    meeting = None
    if meeting_id is not None:
        meeting = store.meetings.get(meeting_id)
        if meeting is None or meeting.cancelled_at is not None:
            raise not_found("meeting")
    if customer_id is not None and customer_id not in store.customers:
        raise not_found("customer", 1234)
    # The sandbox serves both applications from one domain, so both objects are answered.
    objects = {app: _default_branding(app, domain_name, ctx.public_url) for app in ("vc", "wb")}
    customer = store.customers.get(customer_id or (meeting.customer_id if meeting else ""))
    if customer is not None and customer.branding:
        _customer_overlay(objects, customer.branding)
    if meeting is not None and meeting.branding:
        _meeting_overlay(objects[meeting.app], meeting.branding)
    return {"result": 1, **objects}


ROUTES: list[Op] = [
    Op("POST", "/sessions/join", join_session, public=True),
    Op("POST", "/sessions/invite", invite, public=True),
    Op("GET", "/branding", get_branding, public=True),
]
