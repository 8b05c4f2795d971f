"""The sandbox's in-memory state: entities, indexes, and the JSON file that keeps them.

Lookups that a simple route needs (by id, by e-mail, by customer code, by PIN) are dict
lookups, so a request costs the same with ten objects or a million. Only list routes scan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

APPS = ("vc", "wb")
API_TIME = "%Y-%m-%d %H:%M:%S"


def new_id() -> str:
    """A 24-hex identifier shaped like the API's object ids."""
    return secrets.token_hex(12)


def fmt(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime(API_TIME) if ts else None


def hash_password(password: str, salt: str | None = None) -> str:
    # A fast salted hash: the sandbox checks Basic credentials on every call.
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()
    return f"{salt}${digest}"


def check_password(password: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(hash_password(password, salt), stored)


@dataclass(slots=True)
class Customer:
    customer_id: str
    parent_id: str | None
    customer_type: str  # T tenant, R reseller, P customer, A affiliate
    customer_name: str
    customer_legal_name: str
    contact_name: str
    contact_email: str
    office_address: dict[str, Any]
    billing_address: dict[str, Any]
    customer_code: str | None = None
    individual: bool = False
    status: str = "A"  # A active, S suspended, C closed, U unverified
    timezone_id: str | None = None
    added: datetime | None = None
    modified: datetime | None = None
    activated: datetime | None = None
    suspended: datetime | None = None
    closed: datetime | None = None
    branding: dict[str, Any] | None = None


@dataclass(slots=True)
class User:
    """Every login is a user: tenant admin (TA), reseller admin (RA), customer admin (CA)
    or application user (AP)."""

    user_id: str
    customer_id: str
    user_type: str
    first_name: str
    email: str
    password_hash: str
    middle_name: str | None = None
    last_name: str | None = None
    status: str = "A"  # A active, S suspended
    department: str | None = None
    designation: str | None = None
    # app -> {"access": bool, "status": "A"|"R", "wef": str, "subscription_id": str|None}
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    timezone_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    activated_at: datetime | None = None
    suspended_at: datetime | None = None
    last_login_time: datetime | None = None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.middle_name, self.last_name) if p)


@dataclass(slots=True)
class Subscription:
    subscription_id: str
    customer_id: str
    plan_id: str
    app: str
    qty: int
    subsxn_date: str  # YYYY-MM-DD
    expiry_date: str
    room_type: str | None = None
    title: str | None = None
    unit_price: float | None = None
    allow_meeting_overlap: bool = False
    payment_cycle: str | None = None
    payment_mode: str = "F"
    po: str | None = None
    prepaid: bool = False
    currency: str = "USD"
    status: str = "A"  # A active, X expired, S suspended
    seats_used: int = 0
    created_at: datetime | None = None


@dataclass(slots=True)
class Room:
    """A user's permanent room for one app, made when the licence is first assigned."""

    room_id: str
    user_id: str
    app: str
    room_name: str
    mpin: str
    ppin: str
    desc: str = ""
    moderators: int = 1
    participants: int = 10
    duration: int = 60
    wait_for_moderator: bool = False
    knock: bool = False
    auto_recording: bool = False
    active: bool = True


@dataclass(slots=True)
class Meeting:
    meeting_id: str
    room_id: str
    user_id: str
    customer_id: str
    app: str
    room_name: str
    desc: str
    start_time: datetime
    timezone_id: str
    duration: int
    moderators: int
    participants: int
    mpin: str
    ppin: str
    wait_for_moderator: bool = False
    knock: bool = False
    auto_recording: bool = False
    send_mail: bool = False
    invitees: dict[str, list[str]] = field(default_factory=dict)
    lobby: dict[str, Any] | None = None
    branding: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    cancelled_at: datetime | None = None


@dataclass(slots=True)
class Contact:
    contact_id: str
    owner_id: str
    name: str
    email: str
    company: str | None = None
    designation: str | None = None
    shared: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class Group:
    group_id: str
    owner_id: str
    group_name: str
    contacts: dict[str, datetime] = field(default_factory=dict)  # contact_id -> added_at
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class Session:
    session_id: str
    meeting_id: str | None
    room_id: str
    user_id: str  # the host: owner of the room or meeting
    customer_id: str
    app: str
    trans_date: datetime
    connect_dt: datetime
    disconnect_dt: datetime | None = None


@dataclass(slots=True)
class Cdr:
    cdr_id: str
    session_id: str
    meeting_id: str | None
    room_id: str
    customer_id: str
    name: str
    user_ref: str
    role: str
    connect_dt: datetime
    disconnect_dt: datetime | None = None


@dataclass(slots=True)
class Mail:
    """What the real API would e-mail: welcome, access, invitation, password reset."""

    kind: str
    to: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Token:
    user_id: str
    expires_at: datetime


@dataclass(slots=True)
class ResetKey:
    user_id: str
    email: str
    expires_at: datetime


ENTITY_TABLES: dict[str, type] = {
    "customers": Customer,
    "users": User,
    "subscriptions": Subscription,
    "rooms": Room,
    "meetings": Meeting,
    "contacts": Contact,
    "groups": Group,
    "sessions": Session,
}


@dataclass
class Store:
    api_id: str
    tenant_id: str
    customers: dict[str, Customer] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)
    meetings: dict[str, Meeting] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    cdrs: list[Cdr] = field(default_factory=list)
    mails: list[Mail] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)
    reset_keys: dict[str, ResetKey] = field(default_factory=dict)
    # indexes, rebuilt from the tables on load
    user_by_email: dict[str, str] = field(default_factory=dict)
    customer_by_code: dict[str, str] = field(default_factory=dict)
    contact_emails: set[str] = field(default_factory=set)
    pins: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # pin->(kind,id,role)
    room_by_user: dict[tuple[str, str], str] = field(default_factory=dict)  # (user,app)->room
    subs_by_customer: dict[str, list[str]] = field(default_factory=dict)
    # (room_id, meeting_id) -> the session open in it: a join must not scan them all
    open_sessions: dict[tuple[str, str | None], str] = field(default_factory=dict)
    # per owner (a user id): lower-cased e-mail -> contact id, lower-cased name -> group id
    contacts_by_owner: dict[str, dict[str, str]] = field(default_factory=dict)
    groups_by_owner: dict[str, dict[str, str]] = field(default_factory=dict)
    clock_offset: timedelta = timedelta()
    dirty: bool = False

    # -- time ---------------------------------------------------------------
    def now(self) -> datetime:
        """Sandbox time: wall clock plus the offset a test set with POST /_sandbox/clock."""
        return datetime.now(UTC).replace(microsecond=0) + self.clock_offset

    # -- helpers shared by route groups --------------------------------------
    def new_pin(self) -> str:
        while True:
            pin = f"{secrets.randbelow(10**8):08d}"
            if pin not in self.pins:
                return pin

    def add_user(self, user: User) -> User:
        self.users[user.user_id] = user
        self.user_by_email[user.email.lower()] = user.user_id
        self.dirty = True
        return user

    def add_customer(self, customer: Customer) -> Customer:
        self.customers[customer.customer_id] = customer
        if customer.customer_code:
            self.customer_by_code[customer.customer_code] = customer.customer_id
        self.contact_emails.add(customer.contact_email.lower())
        self.dirty = True
        return customer

    def add_room(self, room: Room) -> Room:
        self.rooms[room.room_id] = room
        self.room_by_user[(room.user_id, room.app)] = room.room_id
        self.pins[room.mpin] = ("room", room.room_id, "moderator")
        self.pins[room.ppin] = ("room", room.room_id, "participant")
        return room

    def add_subscription(self, sub: Subscription) -> Subscription:
        self.subscriptions[sub.subscription_id] = sub
        self.subs_by_customer.setdefault(sub.customer_id, []).append(sub.subscription_id)
        return sub

    def customer_subscriptions(self, customer_id: str) -> list[Subscription]:
        return [self.subscriptions[s] for s in self.subs_by_customer.get(customer_id, [])]

    def mail(self, kind: str, to: str, **data: Any) -> None:
        self.mails.append(Mail(kind=kind, to=to, at=self.now(), data=data))

    def rebuild_indexes(self) -> None:
        self.user_by_email = {u.email.lower(): u.user_id for u in self.users.values()}
        self.customer_by_code = {
            c.customer_code: c.customer_id for c in self.customers.values() if c.customer_code
        }
        self.contact_emails = {c.contact_email.lower() for c in self.customers.values()}
        self.pins = {}
        self.room_by_user = {}
        for room in list(self.rooms.values()):
            self.add_room(room)
        self.subs_by_customer = {}
        for sub in list(self.subscriptions.values()):
            self.add_subscription(sub)
        self.open_sessions = {
            (x.room_id, x.meeting_id): x.session_id
            for x in self.sessions.values()
            if x.disconnect_dt is None
        }
        self.contacts_by_owner = {}
        for contact in self.contacts.values():
            owned = self.contacts_by_owner.setdefault(contact.owner_id, {})
            owned[contact.email.lower()] = contact.contact_id
        self.groups_by_owner = {}
        for group in self.groups.values():
            named = self.groups_by_owner.setdefault(group.owner_id, {})
            named[group.group_name.lower()] = group.group_id
        for meeting in self.meetings.values():
            if meeting.cancelled_at is None:
                self.pins[meeting.mpin] = ("meeting", meeting.meeting_id, "moderator")
                self.pins[meeting.ppin] = ("meeting", meeting.meeting_id, "participant")

    # -- persistence ---------------------------------------------------------
    def to_json(self, *, secrets_too: bool) -> dict[str, Any]:
        """Everything as JSON. Without `secrets_too`, password hashes and tokens are left out."""
        out: dict[str, Any] = {"api_id": self.api_id, "tenant_id": self.tenant_id}
        for name in ENTITY_TABLES:
            rows = [_encode(obj) for obj in getattr(self, name).values()]
            if not secrets_too and name == "users":
                for row in rows:
                    row.pop("password_hash", None)
            out[name] = rows
        out["cdrs"] = [_encode(c) for c in self.cdrs]
        out["mails"] = [_encode(m) for m in self.mails]
        if secrets_too:
            out["reset_keys"] = {k: _encode(v) for k, v in self.reset_keys.items()}
        out["clock_offset_s"] = self.clock_offset.total_seconds()
        out["now"] = self.now().isoformat()
        out["today"] = self.now().date().isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Store:
        store = cls(api_id=data["api_id"], tenant_id=data["tenant_id"])
        for name, entity in ENTITY_TABLES.items():
            table = getattr(store, name)
            id_field = dataclasses.fields(entity)[0].name
            for row in data.get(name, []):
                obj: Any = _decode(entity, row)
                table[getattr(obj, id_field)] = obj
        store.cdrs = [_decode(Cdr, row) for row in data.get("cdrs", [])]
        store.mails = [_decode(Mail, row) for row in data.get("mails", [])]
        store.reset_keys = {k: _decode(ResetKey, v) for k, v in data.get("reset_keys", {}).items()}
        store.clock_offset = timedelta(seconds=data.get("clock_offset_s", 0))
        store.rebuild_indexes()
        return store

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(orjson.dumps(self.to_json(secrets_too=True)))
        os.replace(tmp, path)
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> Store:
        return cls.from_json(orjson.loads(path.read_bytes()))


def _encode(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, dict) and value and isinstance(next(iter(value.values())), datetime):
            value = {k: v.isoformat() for k, v in value.items()}
        out[f.name] = value
    return out


def _is_datetime(tp: Any) -> bool:
    if tp is datetime:
        return True
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return datetime in typing.get_args(tp)
    return False


_HINTS: dict[type, dict[str, Any]] = {}
_T = typing.TypeVar("_T")


def _decode(cls: type[_T], row: dict[str, Any]) -> _T:
    hints = _HINTS.get(cls) or _HINTS.setdefault(cls, typing.get_type_hints(cls))
    kwargs: dict[str, Any] = {}
    for name, value in row.items():
        if name not in hints:
            continue
        tp = hints[name]
        if isinstance(value, str) and _is_datetime(tp):
            value = datetime.fromisoformat(value)
        elif name == "contacts" and cls is Group:
            value = {k: datetime.fromisoformat(v) for k, v in value.items()}
        kwargs[name] = value
    return cls(**kwargs)
