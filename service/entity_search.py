"""Finding an entity by what an operator knows of it: a person's e-mail or employee id, a
company's CRM id or name, a meeting's feed id, iCalendar UID or key.

Every query is bounded by an index save two substring searches over small tables (the
companies' states, the meetings' id mappings), and each stops at LIMIT rows. The person
indexes lead with the tenant, so the tenants are listed first by a loose index scan (one
seek each) and each tenant's part of the index is read at the key, instead of reading
every person. Matching is case-insensitive: e-mails are stored lower case, ids are tried as
typed, upper and lower case.

A prefix is read as a range of the index where the database orders text by code point
(SQLite; PostgreSQL under the C, POSIX or C.UTF-8 collation), with a LIKE beside it. Under
a language's collation a range would leave some matches out, and PostgreSQL serves a LIKE
from a plain index only under "C": there the LIKE alone is asked (exact, but read without
the index).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from service.outbox.sql import chunks
from service.outbox.tables import MAPPING, OUTBOX, STATES
from service.view_models import Match

LIMIT = 20
MAX_QUERY = 200
# a shorter substring matches nearly every meeting or company: only prefixes then
MIN_SUBSTRING = 3
USER, COMPANY = "user", "company"  # entity_state.kind
BYTEWISE = ("c", "posix", "c.utf8", "c.utf-8")


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _successor(prefix: str) -> str | None:
    """The least string above every string starting with `prefix`, in code point order;
    None above U+10FFFF. Surrogates are skipped: they cannot be encoded (a 500, not a
    match)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:
        last = 0xE000
    return None if last > 0x10FFFF else prefix[:-1] + chr(last)


def _variants(text: str) -> list[str]:
    """Ids as typed, upper and lower case (E0001, crm-1 for CRM-1)."""
    return list(dict.fromkeys((text, text.upper(), text.lower())))


async def _ordered_by_code_point(conn: AsyncConnection) -> bool:
    if conn.dialect.name == "sqlite":
        return True  # BINARY, the default: bytes of UTF-8, code point order
    collation = await conn.scalar(
        sa.text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
    )
    return str(collation).lower() in BYTEWISE


class _Finder:
    def __init__(self, conn: AsyncConnection, query: str, ranges: bool) -> None:
        self.conn = conn
        self.query = query
        self.lower = query.lower()
        self.ranges = ranges
        self.found: dict[str, Match] = {}

    @property
    def full(self) -> bool:
        return len(self.found) >= LIMIT

    def add(self, entity: str, kind: str, label: str) -> None:
        if not self.full:
            self.found.setdefault(entity, Match(entity=entity, kind=kind, label=label))

    def starts(self, column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
        like = column.like(f"{_escaped(prefix)}%", escape="\\")
        if not self.ranges:
            return like
        # in code point order the prefix's strings lie below the prefix's successor
        after = _successor(prefix)
        if after is None:
            return sa.and_(column >= prefix, like)
        return sa.and_(column >= prefix, column < after, like)

    def contains(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
        return sa.func.lower(column).like(f"%{_escaped(self.lower)}%", escape="\\")

    async def rows(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        return list((await self.conn.execute(query.limit(LIMIT))).all())

    # -- people --------------------------------------------------------------------------------
    async def people(self) -> None:
        tenants = [t for (t,) in await self.conn.execute(sa.select(_tenants().c.tenant)) if t]
        ids = _variants(self.query)
        person = sa.select(STATES.c.entity, STATES.c.tenant, STATES.c.state).order_by(
            STATES.c.entity
        )
        mapped = sa.select(MAPPING.c.tenant, MAPPING.c.external_id, MAPPING.c.natural_key)
        for some in chunks(tenants):
            users = sa.and_(STATES.c.kind == USER, STATES.c.tenant.in_(some))
            for where in (
                # the e-mail (ix_entity_state_natural), or its beginning: "ann.lee@"
                self.starts(STATES.c.natural_key, self.lower),
                # the employee id (the entity's key), the employee number (ix_entity_state_alt)
                STATES.c.entity.in_([f"user:{t}:{i}" for t in some for i in ids]),
                STATES.c.alt_key.in_(ids),
            ):
                for row in await self.rows(person.where(users, where)):
                    self.add(row.entity, "person", _person_label(row.tenant, row.entity, row.state))
            # a UCaaS user known by its mapping only (adopted, or its state gone)
            by_mapping = mapped.where(
                MAPPING.c.kind == USER,
                MAPPING.c.tenant.in_(some),
                self.starts(MAPPING.c.natural_key, self.lower),
            )
            for row in await self.rows(by_mapping.order_by(MAPPING.c.external_id)):
                entity_id = f"user:{row.tenant}:{row.external_id}"
                self.add(entity_id, "person", f"{row.natural_key} · tenant {row.tenant}")
            if self.full:
                return

    # -- companies -----------------------------------------------------------------------------
    async def companies(self) -> None:
        company = sa.select(STATES.c.entity, STATES.c.state).where(STATES.c.kind == COMPANY)
        by_id = sa.or_(
            *(self.starts(STATES.c.entity, f"customer:{v}") for v in _variants(self.query))
        )
        found = await self.rows(company.where(by_id).order_by(STATES.c.entity))
        if len(self.query) >= MIN_SUBSTRING and len(found) < LIMIT:
            name = STATES.c.state["profile"]["customer_name"].as_string()
            found += await self.rows(company.where(self.contains(name)).order_by(STATES.c.entity))
        for row in found:
            crm_id = row.entity.partition(":")[2]
            state = row.state if isinstance(row.state, dict) else {}
            name = (state.get("profile") or {}).get("customer_name")
            self.add(row.entity, "company", f"{name} · CRM {crm_id}" if name else f"CRM {crm_id}")
            if state.get("purchases"):
                self.add(f"subscriptions:{crm_id}", "purchases", f"the purchases of CRM {crm_id}")

    # -- meetings ------------------------------------------------------------------------------
    async def meetings(self) -> None:
        # a feed id or a whole key: a prefix of the commands' entity (ix_outbox_entity_all)
        prefixes = sa.or_(
            *(self.starts(OUTBOX.c.entity, f"meeting:{v}") for v in _variants(self.query))
        )
        keys = [
            row.entity
            for row in await self.rows(
                sa.select(OUTBOX.c.entity).where(prefixes).distinct().order_by(OUTBOX.c.entity)
            )
        ]
        if len(self.query) >= MIN_SUBSTRING and len(keys) < LIMIT:
            # a UID is inside the key (feed:UID@start): a substring, read from the meetings'
            # id mappings (one row a meeting) rather than the commands (several, kept long)
            inside = sa.select(MAPPING.c.external_id).where(
                MAPPING.c.kind == "meeting", self.contains(MAPPING.c.external_id)
            )
            keys += [
                f"meeting:{row.external_id}"
                for row in await self.rows(inside.order_by(MAPPING.c.external_id))
            ]
        for key in keys:
            self.add(key, "meeting", _meeting_label(key.partition(":")[2]))


def _tenants() -> sa.CTE:
    """Every tenant of entity_state, one index seek each (ix_entity_state_tenant): a loose
    index scan, which neither database does on its own for DISTINCT."""
    first = sa.select(sa.func.min(STATES.c.tenant).label("tenant")).cte("tenants", recursive=True)
    after = sa.select(sa.func.min(STATES.c.tenant)).where(STATES.c.tenant > first.c.tenant)
    return first.union_all(sa.select(after.scalar_subquery()).where(first.c.tenant.is_not(None)))


def _person_label(tenant: str, entity: str, state: Any) -> str:
    state = state if isinstance(state, dict) else {}
    profile = state.get("profile") or {}
    name = " ".join(str(profile[k]) for k in ("first_name", "last_name") if profile.get(k))
    email = profile.get("email")
    who = f"{name} <{email}>" if name and email else (name or email or entity)
    employee = entity.rsplit(":", 1)[-1]
    status = state.get("status")
    return f"{who} · tenant {tenant} · employee {employee}" + (f" · {status}" if status else "")


def _meeting_label(key: str) -> str:
    """`feed:UID@start` in words; a hashed key (a long UID) as it is."""
    feed, _, occurrence = key.partition(":")
    uid, at, start = occurrence.rpartition("@")
    if not at or not uid:
        return f"feed {feed} · {occurrence}"
    return f"feed {feed} · UID {uid} · {start}"


async def find(conn: AsyncConnection, query: str) -> list[Match]:
    """At most LIMIT entities matching `query`: people first, then companies, meetings."""
    text = query.strip()
    if not text or "\x00" in text or len(text) > MAX_QUERY:
        return []
    finder = _Finder(conn, text, await _ordered_by_code_point(conn))
    for search in (finder.people, finder.companies, finder.meetings):
        if not finder.full:
            await search()
    return list(finder.found.values())
