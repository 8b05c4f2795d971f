"""Datapool: time zones, countries and plans, the client against the sandbox over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.ucaas import Credentials, ForbiddenError, UCaaSClient
from connectors.ucaas.models.base import App
from connectors.ucaas.models.datapool import TimeZone
from tests.integration.ucaas.factories import new_customer, new_user, portal_auth
from tests.support.sandbox_server import SandboxAdmin


def _seconds_until(year: int, month: int, day: int) -> float:
    return (datetime(year, month, day, 12, tzinfo=UTC) - datetime.now(UTC)).total_seconds()


async def test_timezones_follow_the_sandbox_date(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    next_year = datetime.now(UTC).year + 1
    seen_ids = set()
    for month, offset, dst, abbr in ((1, 60, False, "CET"), (7, 120, True, "CEST")):
        sandbox.clock(_seconds_until(next_year, month, 15))
        zones = {z.zone_name: z for z in await api.datapool.timezones()}
        paris = zones["Europe/Paris"]
        assert (paris.gmt_offset, paris.is_dst, paris.zone_abbr) == (offset, dst, abbr)
        assert paris.time_start is not None
        # The offset in force began at the last change, before "now" and within the year.
        started = datetime.strptime(paris.time_start, "%Y-%m-%d %H:%M:%S")
        assert datetime(next_year - 1, 10, 1) < started < datetime(next_year, month, 15)
        assert zones["UTC"].gmt_offset == 0
        assert zones["UTC"].is_dst is False
        assert zones["Asia/Kolkata"].gmt_offset == 330
        # Southern summer is northern winter.
        assert zones["Australia/Sydney"].is_dst is (month == 1)
        seen_ids.add(paris.timezone_id)
    assert len(seen_ids) == 1  # the id is stable across dates
    assert re.fullmatch(r"[0-9a-f]{24}", seen_ids.pop())


async def test_timezones_today_match_zoneinfo(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    now = datetime.fromisoformat(sandbox.state()["now"])
    zones = {z.zone_name: z for z in await api.datapool.timezones()}
    assert len(zones) > 400
    local = now.astimezone(ZoneInfo("Europe/Paris"))
    utcoffset = local.utcoffset()
    assert utcoffset is not None
    paris = zones["Europe/Paris"]
    assert paris.gmt_offset in (60, 120)
    assert paris.gmt_offset == utcoffset.total_seconds() // 60
    assert paris.is_dst is bool(local.dst())
    assert paris.is_dst is (paris.gmt_offset == 120)


def test_timezone_model_accepts_the_reference_table_spelling() -> None:
    zone = TimeZone.model_validate({"timezone_id": "x", "gst_offset": -300, "is_dst": False})
    assert zone.gmt_offset == -300


async def test_countries(api: UCaaSClient) -> None:
    countries = await api.datapool.countries()
    assert len(countries) > 200
    by_iso2 = {c.iso2_code: c for c in countries}
    france = by_iso2["FR"]
    assert (france.country_id, france.iso3_code, france.isd_code) == ("250", "FRA", "+33")
    assert france.country_name == "France"
    assert by_iso2["US"].isd_code == "+1"
    assert len({c.country_id for c in countries}) == len(countries)


async def test_plans_all_and_by_app(api: UCaaSClient) -> None:
    plans = await api.datapool.plans()
    assert {p.plan_id for p in plans} == {"vc-basic", "vc-pro", "wb-basic", "wb-pro"}
    webinar = await api.datapool.plans("wb")
    assert {p.plan_id for p in webinar} == {"wb-basic", "wb-pro"}
    assert all(p.app == "wb" for p in webinar)
    basic = next(p for p in plans if p.plan_id == "vc-basic")
    assert basic.status == "A"
    assert basic.currency == ["USD"]
    assert basic.settings is not None
    assert (basic.settings.participants, basic.settings.duration) == (100, 240)
    assert basic.user_license is not None
    assert basic.user_license.price == {"USD": 8.0}
    assert basic.storage is not None
    assert basic.storage.data_unit == 1


def test_plans_of_an_unknown_app_is_1172(sandbox: SandboxAdmin) -> None:
    response = sandbox.api("GET", "/plans/xx")
    assert response.status_code == 400
    assert response.json()["code"] == 1172


async def test_who_may_read_what(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    reseller = portal_auth(new_customer(sandbox, customer_type="R"))
    customer_admin = portal_auth(new_customer(sandbox))
    user = new_user(sandbox, customer_admin)

    async with api.as_account(Credentials.of(*reseller)) as client:
        assert len(await client.datapool.plans("vc")) == 2

    for auth in (customer_admin, (user["email"], user["password"])):
        async with api.as_account(Credentials.of(*auth)) as client:
            # Master data every role needs to fill in forms.
            assert any(c.iso2_code == "FR" for c in await client.datapool.countries())
            assert any(z.zone_name == "Europe/Paris" for z in await client.datapool.timezones())
            apps: tuple[App | None, ...] = (None, "vc")
            for app in apps:
                with pytest.raises(ForbiddenError) as info:
                    await client.datapool.plans(app)
                assert (info.value.status, info.value.code) == (403, 4030)


def test_datapool_needs_credentials(sandbox: SandboxAdmin) -> None:
    response = sandbox.api("GET", "/countries", auth=("nobody@x.test", "wrong-password"))
    assert response.status_code == 401
    assert response.json()["code"] == 4010
