"""Fresh planner statistics for the service's tables while they grow fast (PostgreSQL).

PostgreSQL plans with the statistics ANALYZE gathers, and autovacuum analyses a table at
most once a minute (autovacuum_naptime) and only once a tenth of it changed. A table that
grows from nothing to 35,000 rows in a 40-second burst (an initial load; bench/e2e.py) is
planned all along as the handful of rows it held at first. Seen with auto_explain and
pg_stat_statements at 50 ms API latency: each id-mapping lookup by key took a sequential
scan with a hash join, or the wrong index with the key's last column as a filter (2.5-17
ms and up to 7,000 blocks each, where the primary key answers in 0.1 ms); the intake's
entity-state read and the result relay's update did the same; PostgreSQL's CPU, not
UCaaS, set the pace.

Every `every_s` the keeper reads how much each of the service's tables changed since its
last analysis (pg_stat_user_tables, what autovacuum reads) and analyses those that changed
by more than they held then, and by `floor` rows at least: a doubling, so a table is
analysed a few dozen times in its life (about 10 ms at 40,000 rows), and a table that
grows slowly is left to autovacuum. An ANALYZE also makes every connection plan its
cached statements again. Forcing plans by connection settings, as the claims do
(claims.PLANNED), was tried for the main connections: lookups then took the wrong index.

Several processes each run a keeper; one that finds a table being analysed waits for that
ANALYZE, and then finds it fresh. Only the tables the database user owns are analysed
(ANALYZE skips others with a warning in the server's log); when it owns none, the keeper
says so once and stops: autovacuum still does the work, later.
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from service.outbox import tables as _tables  # noqa: F401 - the service's tables in SQLModel's metadata

log = logging.getLogger("ucaas_sync.statistics")

EVERY_S = 2.0
FLOOR = 500

# Tables whose changes since their last analysis outgrow what they held then.
_STALE = sa.text(
    """
    SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables)
      AND s.n_mod_since_analyze > :floor + greatest(c.reltuples, 0)
    ORDER BY s.relname
    """
)


# Of the service's tables (its migrations make them), those this user may analyse.
_OWNED = sa.text(
    """
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
      AND c.relname = ANY(:tables)
      AND (pg_has_role(c.relowner, 'MEMBER')
           OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))
    ORDER BY c.relname
    """
)


async def analysable(engine: AsyncEngine) -> list[str]:
    """The service's tables (SQLModel's metadata) that this database user may analyse."""
    async with engine.connect() as conn:
        found = await conn.execute(_OWNED, {"tables": sorted(SQLModel.metadata.tables)})
        return [str(name) for (name,) in found]


async def analyse_stale(engine: AsyncEngine, tables: list[str], floor: int = FLOOR) -> list[str]:
    """Analyse the tables among `tables` that changed by more than they held at their last
    analysis (and `floor` rows); the ones analysed."""
    async with engine.connect() as conn:
        found = await conn.execute(_STALE, {"tables": tables, "floor": floor})
        stale = [str(name) for (name,) in found]
        for name in stale:
            await conn.execute(sa.text(f"ANALYZE {conn.dialect.identifier_preparer.quote(name)}"))
        await conn.commit()
    return stale


async def keep_fresh(engine: AsyncEngine, every_s: float = EVERY_S) -> None:
    """Run until cancelled, on PostgreSQL (SQLite plans from its indexes alone)."""
    tables: list[str] | None = None
    while True:
        await asyncio.sleep(every_s)
        try:
            if tables is None:
                tables = await analysable(engine)
                if not tables:
                    log.warning(
                        "planner statistics left to autovacuum: only a table's owner may "
                        "analyse it, and this database user owns none of the service's tables"
                    )
                    return
            analysed = await analyse_stale(engine, tables)
        except Exception:
            log.exception("planner statistics: analysis failed; trying again")
            continue
        if analysed:
            log.debug("analysed %s", ", ".join(analysed))
