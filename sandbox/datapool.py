"""Master data from real sources: IANA time zones (zoneinfo), ISO 3166 countries, plans.

Ids are opaque but stable across restarts and machines: a time zone's id is derived from its
IANA name, a country's id is its ISO 3166 numeric code, a plan's id is its name.
"""

from __future__ import annotations

import functools
import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pycountry

from sandbox.state import API_TIME

# Zones that name no place; zoneinfo lists them, the API would not.
_SKIP = {"Factory", "localtime", "posixrules"}


def timezone_id(name: str) -> str:
    return hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:24]


@dataclass(frozen=True)
class Zone:
    timezone_id: str
    zone_name: str


@functools.cache
def zones() -> dict[str, Zone]:
    names = sorted(n for n in zoneinfo.available_timezones() if n not in _SKIP)
    return {timezone_id(n): Zone(timezone_id(n), n) for n in names}


def _state(
    tz: zoneinfo.ZoneInfo, at: datetime
) -> tuple[timedelta | None, timedelta | None, str | None]:
    local = at.astimezone(tz)
    return local.utcoffset(), local.dst(), local.tzname()


def _last_transition(tz: zoneinfo.ZoneInfo, now: datetime) -> datetime | None:
    """When the offset in force at `now` began (searched back up to two years)."""
    current = _state(tz, now)
    step = timedelta(days=7)
    probe = now
    for _ in range(105):
        earlier = probe - step
        if _state(tz, earlier) != current:
            lo, hi = earlier, probe  # the change lies in (lo, hi]
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if _state(tz, mid) == current:
                    hi = mid
                else:
                    lo = mid
            return hi.replace(second=0, microsecond=0)
        probe = earlier
    return None


@functools.lru_cache(maxsize=4)
def timezone_rows(hour: str) -> list[dict[str, Any]]:
    """Every zone's offset, abbreviation and DST flag as of `hour` (cached per hour)."""
    now = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    rows = []
    for zone in zones().values():
        rows.append(describe_zone(zone, now))
    return rows


def describe_zone(zone: Zone, now: datetime) -> dict[str, Any]:
    tz = zoneinfo.ZoneInfo(zone.zone_name)
    offset, dst, abbr = _state(tz, now)
    start = _last_transition(tz, now)
    return {
        "timezone_id": zone.timezone_id,
        "zone_name": zone.zone_name,
        "zone_abbr": abbr,
        "time_start": start.strftime(API_TIME) if start else None,
        "gmt_offset": int(offset.total_seconds() // 60) if offset is not None else 0,
        "is_dst": bool(dst),
    }


def timezone_object(timezone_id_: str | None, now: datetime) -> dict[str, Any] | None:
    zone = zones().get(timezone_id_ or "")
    return describe_zone(zone, now) if zone else None


@functools.cache
def countries() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for country in sorted(pycountry.countries, key=lambda c: c.name):
        calling = phonenumbers.country_code_for_region(country.alpha_2)
        out[country.numeric] = {
            "country_id": country.numeric,
            "country_name": country.name,
            "iso2_code": country.alpha_2,
            "iso3_code": country.alpha_3,
            "isd_code": f"+{calling}" if calling else None,
        }
    return out


def _plan(
    plan_id: str, app: str, name: str, participants: int, duration: int, price: float
) -> dict[str, Any]:
    def money(value: float) -> dict[str, float]:
        return {"USD": round(value, 2)}

    return {
        "plan_id": plan_id,
        "app": app,
        "plan_name": name,
        "currency": ["USD"],
        "status": "A",
        "settings": {
            "recording": participants > 100,
            "audio_only": True,
            "audio_video": True,
            "participants": participants,  # the room size
            "duration": duration,  # the longest meeting, in minutes
            "stream_qlty": "HD" if participants > 100 else "SD",
            "record_qlty": "HD" if participants > 100 else "SD",
        },
        "user_license": {
            "price": money(price),
            "price_qtr": money(price * 3 * 0.95),
            "price_hfyr": money(price * 6 * 0.9),
            "price_year": money(price * 12 * 0.85),
        },
        "connect": {"price": money(0.004)},
        "records": {"data_unit": 1, "price": money(0.01)},
        "download": {"data_unit": 1, "price": money(0.002)},
        "storage": {"data_unit": 1, "price": money(0.0005)},
    }


PLANS: dict[str, dict[str, Any]] = {
    p["plan_id"]: p
    for p in (
        _plan("vc-basic", "vc", "Meeting Basic", 100, 240, 8.0),
        _plan("vc-pro", "vc", "Meeting Pro", 300, 720, 15.0),
        _plan("wb-basic", "wb", "Webinar Basic", 500, 240, 30.0),
        _plan("wb-pro", "wb", "Webinar Pro", 1000, 720, 60.0),
    )
}
