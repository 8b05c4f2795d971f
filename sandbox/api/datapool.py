"""Datapool: time zones and countries (every role), billing plans (TA and RA).

The reference documents no query parameters for these routes and pages none of them, so
each answers its whole list.
"""

from __future__ import annotations

from typing import Any

from sandbox import datapool
from sandbox.auth import ADMIN_ROLES, require_role
from sandbox.errors import ApiError
from sandbox.http import Ctx, Op
from sandbox.state import APPS


def timezones(ctx: Ctx) -> dict[str, Any]:
    # Offsets and DST flags depend on the date; rows are computed once per sandbox hour.
    hour = ctx.store.now().strftime("%Y-%m-%d %H")
    return {"result": 1, "timezones": datapool.timezone_rows(hour)}


def countries(ctx: Ctx) -> dict[str, Any]:
    return {"result": 1, "countries": list(datapool.countries().values())}


def plans(ctx: Ctx) -> dict[str, Any]:
    require_role(ctx.actor, *ADMIN_ROLES)
    app = ctx.path_params.get("app")
    if app is not None and app not in APPS:
        raise ApiError(1172, "app")
    rows = [p for p in datapool.PLANS.values() if app is None or p["app"] == app]
    return {"result": 1, "plans": rows}


ROUTES: list[Op] = [
    Op("GET", "/timezones", timezones),
    Op("GET", "/countries", countries),
    Op("GET", "/plans", plans),
    Op("GET", "/plans/{app}", plans),
]
