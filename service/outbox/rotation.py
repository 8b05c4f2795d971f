"""`ucaas-sync keys rotate`: every value the vault sealed (tenant logins, feed URLs) sealed
again under the current key, so the earlier keys can be removed from the configuration.

First every stored value is checked: if one opens with none of the configured keys,
nothing is changed (removing a key then would lose it; the operator is told to configure
the key it was sealed with). Then each table is walked by its primary key in batches, one
transaction per batch. A value already under the current key is left as it is, so a
second run rewrites nothing; a feed URL stored plain by an earlier version is sealed.
Each row is rewritten only if it still holds the value read (the service may seal it anew
meanwhile, under the current key): it runs beside a running service, whose in-flight feed
polls of a rewritten feed are done again (their claim sees the row changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.outbox.tables import FEEDS, LOGINS
from service.outbox.vault import CredentialVault


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed values, and the key its rows are walked by."""

    what: str  # as the report names them
    one: str  # as an error names one row
    table: sa.Table
    key: str
    value: str


SEALED = (
    SealedColumn("tenant logins", "the login of tenant", LOGINS, "tenant", "secret"),
    SealedColumn("feed URLs", "the URL of feed", FEEDS, "feed_id", "url"),
)


class UnopenableSecretsError(RuntimeError):
    """Some stored values open with none of the configured keys: put the key they were
    sealed with in UCAAS_SYNC_SECRET_KEYS_PREVIOUS and rotate again; nothing was changed."""


@dataclass
class RotationReport:
    resealed: dict[str, int] = field(default_factory=dict)  # rewritten under the current key
    current: dict[str, int] = field(default_factory=dict)  # already were

    @property
    def total(self) -> int:
        return sum(self.resealed.values())


def resealed(vault: CredentialVault, stored: str) -> str | None:
    """The value to store instead, None when it is already under the current key."""
    return None if vault.is_current(stored) else vault.reseal(stored)


async def unopenable(engine: AsyncEngine, vault: CredentialVault) -> list[str]:
    """The rows (`the URL of feed team-cal`) whose value no configured key opens."""
    found = []
    async with engine.connect() as conn:
        for column in SEALED:
            key, value = column.table.c[column.key], column.table.c[column.value]
            rows = await conn.stream(sa.select(key, value).order_by(key))
            async for row_key, stored in rows:
                if not vault.opens(stored):
                    found.append(f"{column.one} {row_key}")
    return found


async def rotate(
    engine: AsyncEngine, vault: CredentialVault, *, batch: int = 500
) -> RotationReport:
    missing = await unopenable(engine, vault)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise UnopenableSecretsError(
            f"{len(missing)} stored value(s) open with none of the configured keys ({shown}): "
            "put the key they were sealed with in UCAAS_SYNC_SECRET_KEYS_PREVIOUS and run "
            "`keys rotate` again; nothing was changed"
        )
    report = RotationReport()
    for column in SEALED:
        done, current = await _rotate_column(engine, vault, column, batch)
        report.resealed[column.what] = done
        report.current[column.what] = current
    return report


async def _rotate_column(
    engine: AsyncEngine, vault: CredentialVault, column: SealedColumn, batch: int
) -> tuple[int, int]:
    key, value = column.table.c[column.key], column.table.c[column.value]
    done = current = 0
    after: Any = None
    while True:
        query = sa.select(key, value).order_by(key).limit(batch)
        if after is not None:
            query = query.where(key > after)
        async with engine.begin() as conn:
            rows = (await conn.execute(query)).all()
            for row_key, stored in rows:
                new = resealed(vault, stored)
                if new is None:
                    current += 1
                    continue
                changed = await conn.execute(
                    column.table.update()
                    .where(key == row_key, value == stored)  # unless sealed anew meanwhile
                    .values({column.value: new})
                )
                done += changed.rowcount
        if len(rows) < batch:
            return done, current
        after = rows[-1][0]
