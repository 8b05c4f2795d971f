"""Meetings: schedule, edit, get, list (by stage, PIN or owner), cancel.

`X-App-Type` selects the application: a meeting of the other app is answered like one
outside the caller's scope (404). A cancelled meeting stays in the state, because reports
and sessions may refer to it, but it no longer exists for the API and its PINs are freed.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sandbox import datapool, domain
from sandbox.auth import can_see_customer, visible_user
from sandbox.errors import ApiError, not_found
from sandbox.http import Ctx, Op
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import Meeting, Store, User, fmt, new_id
from sandbox.validation import Check, is_email

STAGES = ("upcoming", "current", "past")
ROOM_FLAGS = (("wait_for_moderator", 1693), ("knock", 1694), ("auto_recording", 1672))
INVITEE_LISTS = (("contact_ids", 1697), ("group_ids", 1698), ("emails", 1696))
# The edit example spells invitees as objects: {"contacts": [{"contact_id": ...}], ...}.
INVITEE_OBJECTS = (
    ("contacts", "contact_id", "contact_ids", 1697),
    ("groups", "group_id", "group_ids", 1698),
)


# -- scope ------------------------------------------------------------------------------
def can_see_meeting(store: Store, actor: User, meeting: Meeting) -> bool:
    if actor.user_type == "AP":
        return meeting.user_id == actor.user_id
    return can_see_customer(store, actor, meeting.customer_id)


def visible_meeting(ctx: Ctx) -> Meeting:
    """The path's meeting for the header's app; 404 when cancelled, unknown or not visible."""
    app = ctx.app_type()
    meeting = ctx.store.meetings.get(ctx.path_params["meeting_id"])
    if (
        meeting is None
        or meeting.cancelled_at is not None
        or meeting.app != app
        or not can_see_meeting(ctx.store, ctx.actor, meeting)
    ):
        raise not_found("meeting")
    return meeting


# -- rendering --------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def _zone(timezone_id: str, hour: str) -> dict[str, Any] | None:
    # Describing a zone searches for its last transition: worth caching per hour in lists.
    at = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return datapool.timezone_object(timezone_id, at)


def timezone_of(timezone_id: str, now: datetime) -> dict[str, Any] | None:
    zone = _zone(timezone_id, now.strftime("%Y-%m-%d %H"))
    return dict(zone) if zone else None


def meeting_ref(m: Meeting) -> dict[str, Any]:
    return {
        "meeting_id": m.meeting_id,
        "room_id": m.room_id,
        "user_id": m.user_id,
        "room_name": m.room_name,
        "app_type": m.app,
    }


def render(m: Meeting, public_url: str, now: datetime) -> dict[str, Any]:
    return {
        **meeting_ref(m),
        "desc": m.desc,
        "start_time": fmt(m.start_time),
        "timezone_id": m.timezone_id,
        "timezone": timezone_of(m.timezone_id, now),
        "mpin": m.mpin,
        "ppin": m.ppin,
        "direct_url": domain.direct_url(public_url, "meeting", m.meeting_id),
        "moderators": m.moderators,
        "participants": m.participants,
        "duration": m.duration,
        "wait_for_moderator": m.wait_for_moderator,
        "knock": m.knock,
        "auto_recording": m.auto_recording,
        "invitees": {key: list(m.invitees.get(key, [])) for key, _ in INVITEE_LISTS},
        "stage": domain.stage(m, now),
        "has_lobby": m.lobby is not None,
        "created_at": fmt(m.created_at),
        "updated_at": fmt(m.updated_at),
    }


# -- validation -------------------------------------------------------------------------
def room_fields(check: Check, room_size: int, *, creating: bool) -> dict[str, Any]:
    """Fields a permanent room and a meeting share; `room_size` is the plan's participants."""

    def req(code: int) -> int | None:
        return code if creating else None

    values: dict[str, Any] = {
        "room_name": check.string(
            "room_name", 1671, required=req(1611), min_len=(3, 1612), max_len=(50, 1613)
        ),
        # An empty description is refused on edit too: it is required when scheduling.
        "desc": check.string(
            "desc", 1621, required=1621 if creating or "desc" in check.body else None
        ),
        "moderators": check.integer(
            "moderators", 1644, required=req(1641), minimum=(1, 1642), maximum=(room_size, 1643)
        ),
        "participants": check.integer(
            "participants", 1654, required=req(1651), minimum=(0, 1652), maximum=(room_size, 1653)
        ),
    }
    for name, code in ROOM_FLAGS:
        values[name] = check.boolean(name, code)
    return values


def _invitees(check: Check) -> dict[str, list[str]] | None:
    sub = check.obj("invitees", 1695)
    if sub is None:
        return None
    out: dict[str, list[str]] = {}
    for key, code in INVITEE_LISTS:
        items = sub.array(key, code)
        if items is None:
            continue
        if not all(isinstance(i, str) for i in items):
            sub.fail(code, key)
        elif key == "emails" and not all(is_email(i) for i in items):
            sub.fail(2210, key)
        else:
            out[key] = list(items)
    for key, id_key, target, code in INVITEE_OBJECTS:
        objects = sub.array(key, code)
        if objects is None:
            continue
        ids = [o.get(id_key) for o in objects if isinstance(o, dict)]
        if len(ids) != len(objects) or not all(isinstance(i, str) for i in ids):
            sub.fail(code, key)
            continue
        known = out.setdefault(target, [])
        known.extend(i for i in dict.fromkeys(map(str, ids)) if i not in known)
    return out


def meeting_fields(
    check: Check, settings: dict[str, Any], now: datetime, *, creating: bool
) -> dict[str, Any]:
    values = room_fields(check, settings["participants"], creating=creating)
    start = check.api_datetime("start_time", required=1603 if creating else None, invalid=1602)
    if start is not None and start <= now:
        check.fail(1601, "start_time")
        start = None
    values["start_time"] = start
    values["duration"] = check.integer(
        "duration",
        1634,
        required=1631 if creating else None,
        minimum=(10, 1632),
        maximum=(settings["duration"], 1633),
    )
    zone = check.string("timezone_id", 1684, required=1681 if creating else None)
    if zone is not None and zone not in datapool.zones():
        check.fail(1684, "timezone_id")
    values["timezone_id"] = zone
    values["send_mail"] = check.boolean("send_mail", 1692)
    values["invitees"] = _invitees(check)
    return values


def _body(ctx: Ctx) -> dict[str, Any]:
    body = dict(ctx.body)
    # The reference's example has the key "start_time " with a trailing space.
    if "start_time" not in body and "start_time " in body:
        body["start_time"] = body.pop("start_time ")
    return body


def _invite(store: Store, m: Meeting, public_url: str) -> None:
    """Record the invitation mails the real API would send (contacts and groups resolved)."""
    emails = list(m.invitees.get("emails", []))
    contact_ids = list(m.invitees.get("contact_ids", []))
    for group_id in m.invitees.get("group_ids", []):
        group = store.groups.get(group_id)
        contact_ids.extend(group.contacts if group else ())
    emails.extend(store.contacts[c].email for c in contact_ids if c in store.contacts)
    url = domain.direct_url(public_url, "meeting", m.meeting_id)
    for email in dict.fromkeys(e.lower() for e in emails):
        store.mail("invitation", email, meeting_id=m.meeting_id, url=url, ppin=m.ppin)


# -- handlers ---------------------------------------------------------------------------
def schedule(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    app = ctx.app_type()
    body = _body(ctx)
    owner = ctx.actor
    if body.get("user_id") is not None:
        owner = visible_user(store, ctx.actor, str(body["user_id"]))
    settings = domain.plan_settings(domain.licence_subscription(store, owner, app))
    now = store.now()
    check = Check(body)
    values = meeting_fields(check, settings, now, creating=True)
    check.done()
    meeting_id = new_id()
    mpin = store.new_pin()
    store.pins[mpin] = ("meeting", meeting_id, "moderator")
    ppin = store.new_pin()
    store.pins[ppin] = ("meeting", meeting_id, "participant")
    meeting = Meeting(
        meeting_id=meeting_id,
        room_id=new_id(),
        user_id=owner.user_id,
        customer_id=owner.customer_id,
        app=app,
        room_name=values["room_name"],
        desc=values["desc"],
        start_time=values["start_time"],
        timezone_id=values["timezone_id"],
        duration=values["duration"],
        moderators=values["moderators"],
        participants=values["participants"],
        mpin=mpin,
        ppin=ppin,
        wait_for_moderator=bool(values["wait_for_moderator"]),
        knock=bool(values["knock"]),
        auto_recording=bool(values["auto_recording"]),
        send_mail=bool(values["send_mail"]),
        invitees=values["invitees"] or {},
        created_at=now,
        updated_at=now,
    )
    store.meetings[meeting_id] = meeting
    if meeting.send_mail:
        _invite(store, meeting, ctx.public_url)
    return {
        "result": 1,
        "msg": "The meeting has been scheduled.",
        "meeting": render(meeting, ctx.public_url, now),
    }


def _ensure_upcoming(meeting: Meeting, now: datetime) -> None:
    if domain.stage(meeting, now) != "upcoming":
        raise ApiError(1604, "start_time")


def edit(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    meeting = visible_meeting(ctx)
    now = store.now()
    _ensure_upcoming(meeting, now)
    owner = store.users[meeting.user_id]
    settings = domain.plan_settings(domain.licence_subscription(store, owner, meeting.app))
    check = Check(_body(ctx))
    values = meeting_fields(check, settings, now, creating=False)
    check.done()
    for key, value in values.items():
        if value is not None:
            setattr(meeting, key, value)
    meeting.updated_at = now
    if values["send_mail"]:
        _invite(store, meeting, ctx.public_url)
    return {
        "result": 1,
        "msg": "Meeting has been updated",
        "meeting": render(meeting, ctx.public_url, now),
    }


def get_meeting(ctx: Ctx) -> dict[str, Any]:
    meeting = visible_meeting(ctx)
    return {"result": 1, "meeting": render(meeting, ctx.public_url, ctx.store.now())}


LIST_SPEC = ListSpec(
    search={
        "mpin": Searchable(lambda m: m.mpin, "exact"),
        "ppin": Searchable(lambda m: m.ppin, "exact"),
        "user_id": Searchable(lambda m: m.user_id, "exact"),
    },
    order={
        "start_time": lambda m: m.start_time,
        "room_name": lambda m: m.room_name,
        "duration": lambda m: m.duration,
        "created_at": lambda m: m.created_at,
        "updated_at": lambda m: m.updated_at,
    },
    default_order="start_time",
)


def list_meetings(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    actor = ctx.actor
    app = ctx.app_type()
    wanted_stage = ctx.query.get("stage") or None
    if wanted_stage is not None and wanted_stage not in STAGES:
        raise ApiError(2605, "stage", msg="The stage must be upcoming, current or past.")
    search_by, needle = ctx.query.get("search_by"), ctx.query.get("search_string")
    if search_by in ("mpin", "ppin") and needle:  # a PIN is an index hit, not a scan
        kind, object_id, _ = store.pins.get(needle, ("", "", ""))
        found = store.meetings.get(object_id) if kind == "meeting" else None
        items = [found] if found else []
    else:
        items = list(store.meetings.values())
    now = store.now()
    selected = [
        m
        for m in items
        if m.app == app
        and m.cancelled_at is None
        and can_see_meeting(store, actor, m)
        and (wanted_stage is None or domain.stage(m, now) == wanted_stage)
    ]
    rows, echo = paginate(selected, ctx.query, LIST_SPEC, lambda m: render(m, ctx.public_url, now))
    echo["stage"] = wanted_stage
    return {"result": 1, "search": echo, "meetings": rows}


def cancel(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    meeting = visible_meeting(ctx)
    now = store.now()
    # A running meeting may be called off (its PINs stop working); a past one is history.
    if domain.stage(meeting, now) == "past":
        raise ApiError(1604, "start_time")
    meeting.cancelled_at = now
    meeting.updated_at = now
    for pin in (meeting.mpin, meeting.ppin):
        if store.pins.get(pin, ("", "", ""))[1] == meeting.meeting_id:
            del store.pins[pin]
    return {
        "result": 1,
        "msg": "The meeting has been cancelled.",
        "event": {key: value for key, value in meeting_ref(meeting).items() if key != "app_type"},
    }


ROUTES: list[Op] = [
    Op("POST", "/meetings", schedule),
    Op("GET", "/meetings", list_meetings),
    Op("GET", "/meetings/{meeting_id}", get_meeting),
    Op("PATCH", "/meetings/{meeting_id}", edit),
    Op("DELETE", "/meetings/{meeting_id}", cancel),
]
