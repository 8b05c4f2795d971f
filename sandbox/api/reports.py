"""Reports: the sessions list and the CDR (one record per join), scoped by role.

TA, RA and CA see the sessions of the customers they see; an AP user sees the sessions it
hosted (of its own rooms and meetings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox.auth import can_see_customer
from sandbox.http import Ctx, Op
from sandbox.listing import ListSpec, Searchable, paginate
from sandbox.state import Cdr, Session, Store, User, fmt

SESSION_DATES = ("from_session_date", "to_session_date")
# The reference's precedence when several are given: only the first one present applies.
CDR_FILTERS = ("room_id", "meeting_id", "session_id")


def duration_minutes(start: datetime, end: datetime | None, now: datetime) -> int:
    """Whole minutes elapsed; an open session runs until now."""
    return max(0, int(((end or now) - start).total_seconds()) // 60)


def _sees(store: Store, actor: User, host_id: str | None, customer_id: str) -> bool:
    if actor.user_type == "AP":
        return host_id == actor.user_id
    return can_see_customer(store, actor, customer_id)


def _render_session(store: Store, s: Session) -> dict[str, Any]:
    host = store.users.get(s.user_id)
    return {
        "session_id": s.session_id,
        "meeting_id": s.meeting_id,
        "room_id": s.room_id,
        "user_id": s.user_id,
        "user_name": host.full_name if host else None,
        "customer_id": s.customer_id,
        "trans_date": fmt(s.trans_date),
        "connect_dt": fmt(s.connect_dt),
        "disconnect_dt": fmt(s.disconnect_dt),
        "duration": duration_minutes(s.connect_dt, s.disconnect_dt, store.now()),
        "app_type": s.app,
    }


SESSION_SPEC = ListSpec(
    search={
        "room_id": Searchable(lambda s: s.room_id, "exact"),
        "session_id": Searchable(lambda s: s.session_id, "exact"),
        "user_id": Searchable(lambda s: s.user_id, "exact"),
        "meeting_id": Searchable(lambda s: s.meeting_id, "exact"),
    },
    order={
        "room_id": lambda s: s.room_id,
        "session_id": lambda s: s.session_id,
        "user_id": lambda s: s.user_id,
        "meeting_id": lambda s: s.meeting_id,
        "from_session_date": lambda s: s.connect_dt,
        "to_session_date": lambda s: s.connect_dt,
        "connect_dt": lambda s: s.connect_dt,
        "trans_date": lambda s: s.trans_date,
    },
    dates={
        "from_session_date": (lambda s: s.connect_dt, "from"),
        "to_session_date": (lambda s: s.connect_dt, "to"),
    },
    default_order="connect_dt",
)


def list_sessions(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    store = ctx.store
    query = dict(ctx.query)
    search_by = query.get("search_by")
    # The reference lists the date bounds among the search_by fields; they are date filters.
    if search_by in SESSION_DATES and query.get("search_string"):
        query[search_by] = query.pop("search_string")
        query.pop("search_by")
    if search_by == "session_id" and query.get("search_string"):
        found = store.sessions.get(query["search_string"])
        items = [found] if found else []
    else:
        items = list(store.sessions.values())
    visible = [s for s in items if _sees(store, actor, s.user_id, s.customer_id)]
    rows, echo = paginate(visible, query, SESSION_SPEC, lambda s: _render_session(store, s))
    if search_by in SESSION_DATES:
        echo["search_by"] = search_by
        echo["search_string"] = ctx.query.get("search_string")
    return {"result": 1, "search": echo, "sessions": rows}


def _render_cdr(store: Store, c: Cdr) -> dict[str, Any]:
    session = store.sessions.get(c.session_id)
    # A join has no leave of its own: it ends when its session ends.
    end = c.disconnect_dt or (session.disconnect_dt if session else None)
    return {
        "cdr_id": c.cdr_id,
        "session_id": c.session_id,
        "meeting_id": c.meeting_id,
        "room_id": c.room_id,
        "customer_id": c.customer_id,
        "name": c.name,
        "user_ref": c.user_ref,
        "role": c.role,
        "app_type": session.app if session else None,
        "connect_dt": fmt(c.connect_dt),
        "disconnect_dt": fmt(end),
        "duration": duration_minutes(c.connect_dt, end, store.now()),
    }


def _host_of(store: Store, c: Cdr) -> str | None:
    session = store.sessions.get(c.session_id)
    return session.user_id if session else None


CDR_SPEC = ListSpec(
    search={},
    order={
        "connect_dt": lambda c: c.connect_dt,
        "name": lambda c: c.name,
        "role": lambda c: c.role,
        "user_ref": lambda c: c.user_ref,
    },
    default_order="connect_dt",
)


def list_cdr(ctx: Ctx) -> dict[str, Any]:
    actor = ctx.actor
    store = ctx.store
    applied = next(((f, ctx.query[f]) for f in CDR_FILTERS if ctx.query.get(f)), None)
    items = store.cdrs
    if applied is not None:
        name, value = applied
        items = [c for c in items if getattr(c, name) == value]
    visible = [c for c in items if _sees(store, actor, _host_of(store, c), c.customer_id)]
    rows, echo = paginate(visible, ctx.query, CDR_SPEC, lambda c: _render_cdr(store, c))
    search = {
        "page": echo["page"],
        "page_length": echo["page_length"],
        "filters": dict([applied]) if applied else {},
        "order_by": echo["order_by"],
        "order_qualify": echo["order_qualify"],
        "total": echo["total"],
        "pages": echo["pages"],
    }
    return {"result": 1, "search": search, "cdr": rows}


ROUTES: list[Op] = [
    Op("GET", "/sessions", list_sessions),
    Op("GET", "/cdr", list_cdr),
]
