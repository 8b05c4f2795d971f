"""Datapool: time zones, countries and billing plans (master data other calls refer to)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from connectors.ucaas.models.base import ApiModel

# Prices come as {currency code: amount}, e.g. {"USD": 8.0}.
Prices = dict[str, float]


class TimeZone(ApiModel):
    timezone_id: str
    zone_name: str | None = None
    zone_abbr: str | None = None
    time_start: str | None = Field(None, description="UTC time the current offset began")
    # The reference's table says `gst_offset`, its example `gmt_offset`: accept both.
    gmt_offset: int | None = Field(
        None,
        validation_alias=AliasChoices("gmt_offset", "gst_offset"),
        description="minutes east of UTC",
    )
    is_dst: bool | None = None


class Country(ApiModel):
    country_id: str
    country_name: str | None = None
    iso2_code: str | None = None
    iso3_code: str | None = None
    isd_code: str | None = None


class PlanSettings(ApiModel):
    recording: bool | None = None
    audio_only: bool | None = None
    audio_video: bool | None = None
    participants: int | None = Field(None, description="room size")
    duration: int | None = Field(None, description="longest meeting, in minutes")
    stream_qlty: str | None = None
    record_qlty: str | None = None


class UnitPrice(ApiModel):
    """A usage price: `price` per `data_unit` (minutes or MB, by what is priced)."""

    data_unit: int | None = None
    price: Prices | None = None


class LicencePrices(ApiModel):
    price: Prices | None = None
    price_qtr: Prices | None = None
    price_hfyr: Prices | None = None
    price_year: Prices | None = None


class Plan(ApiModel):
    plan_id: str
    app: str | None = None
    plan_name: str | None = None
    currency: list[str] | None = None
    status: str | None = None
    settings: PlanSettings | None = None
    user_license: LicencePrices | None = None
    connect: UnitPrice | None = None
    records: UnitPrice | None = None
    download: UnitPrice | None = None
    storage: UnitPrice | None = None
