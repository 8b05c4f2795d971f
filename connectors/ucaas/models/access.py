"""Provisioning and session access: login, passwords, sessions, branding."""

from __future__ import annotations

from connectors.ucaas.models.base import ApiModel, Secret


class AppAccess(ApiModel):
    access: bool | None = None
    status: str | None = None
    wef: str | None = None


class Company(ApiModel):
    company_id: str | None = None
    company_name: str | None = None
    company_legal_name: str | None = None


class TimeZoneInfo(ApiModel):
    timezone_id: str | None = None
    zone_name: str | None = None
    zone_abbr: str | None = None
    time_start: str | None = None
    gmt_offset: int | str | None = None
    is_dst: bool | str | None = None


class LoginUser(ApiModel):
    user_id: str
    user_type: str | None = None
    user_type_desc: str | None = None
    email: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    profile_pic: str | None = None
    company: Company | None = None
    apps: dict[str, AppAccess] | None = None
    timezone: TimeZoneInfo | None = None
    last_login_time: str | None = None
    profile_domain: str | None = None


class LoginResult(ApiModel):
    token: Secret
    user: LoginUser
