"""Reports API: sessions and CDR, scoped to what the caller's role sees."""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import Page
from connectors.ucaas.models.reports import CdrQuery, CdrRecord, SessionQuery, SessionRecord


class ReportsAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def sessions(self, query: SessionQuery | None = None) -> Page[SessionRecord]:
        return await self._core.page("/sessions", "sessions", SessionRecord, query)

    def iterate_sessions(self, query: SessionQuery | None = None) -> AsyncIterator[SessionRecord]:
        return self._core.iterate("/sessions", "sessions", SessionRecord, query)

    async def cdr(self, query: CdrQuery | None = None) -> Page[CdrRecord]:
        return await self._core.page("/cdr", "cdr", CdrRecord, query)

    def iterate_cdr(self, query: CdrQuery | None = None) -> AsyncIterator[CdrRecord]:
        return self._core.iterate("/cdr", "cdr", CdrRecord, query)
