"""Datapool API: time zones, countries, billing plans. Each answers its whole list."""

from __future__ import annotations

from typing import TypeVar

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import ApiModel, App
from connectors.ucaas.models.datapool import Country, Plan, TimeZone

M = TypeVar("M", bound=ApiModel)


class DatapoolAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def _all(self, route: str, key: str, model: type[M], app: str | None = None) -> list[M]:
        path = {"app": app} if app is not None else None
        # Not paginated: one request with no query answers every row.
        page = await self._core.page(route, key, model, None, path=path)
        return page.items

    async def timezones(self) -> list[TimeZone]:
        """Every zone with its offset and DST flag as of now (both change with the date)."""
        return await self._all("/timezones", "timezones", TimeZone)

    async def countries(self) -> list[Country]:
        return await self._all("/countries", "countries", Country)

    async def plans(self, app: App | None = None) -> list[Plan]:
        """Every billing plan, or those of one app. Tenant and reseller admins only."""
        if app is None:
            return await self._all("/plans", "plans", Plan)
        return await self._all("/plans/{app}", "plans", Plan, app)
