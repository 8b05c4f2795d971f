"""Provisioning and session access: login, passwords, sessions, branding."""

from __future__ import annotations

from pydantic import Field

from connectors.ucaas.models.base import ApiModel, RequestModel, Secret


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


class PasswordNotice(ApiModel):
    """The `data` of forgot-password and reset-password answers."""

    email: str | None = None
    msg: str | None = None


class ResetKeyOwner(ApiModel):
    """The `data` of a valid reset key: whose password it resets."""

    email: str
    user_id: str
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None


class PasswordReset(RequestModel):
    email: str
    password: Secret
    password_retyped: Secret


class JoinRequest(RequestModel):
    pin: str = Field(description="the moderator PIN (mpin) or the participant PIN (ppin)")
    name: str
    user_ref: str


class SessionUser(ApiModel):
    """The joined session; `user_id` and the names are the host's (the room's owner)."""

    meeting_id: str | None = None
    customer_id: str | None = None
    room_id: str | None = None
    role: str | None = Field(None, description="moderator or participant")
    user_id: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    profile_pic: str | None = None
    session_id: str | None = None


class SessionJoin(ApiModel):
    token: Secret
    user: SessionUser


class InviteRequest(RequestModel):
    """One of `pin`, `room_id`, `meeting_id` names the session (the API answers 2101 else)."""

    invitees: list[str]
    pin: str | None = None
    room_id: str | None = None
    meeting_id: str | None = None


class LoginPage(ApiModel):
    heading: str | None = None
    content: str | None = None


class BrandingField(ApiModel):
    """A field of the join form."""

    label: str | None = None
    type: str | None = None
    length: int | None = None
    required: bool | None = None
    id: bool | None = None
    order: int | None = None
    messages: dict[str, str] | None = None


class BrandingEmail(ApiModel):
    from_email: str | None = None
    from_name: str | None = None
    replyto_email: str | None = None
    template: str | None = None


class TermsOfService(ApiModel):
    enabled: bool | None = None
    terms_url: str | None = None
    privacy_url: str | None = None


class Credits(ApiModel):
    enabled: bool | None = None
    name: str | None = None
    logo_url: str | None = None
    target_url: str | None = None


class BrandingOptions(ApiModel):
    live_streaming: bool | None = None
    screenshare: bool | None = None
    whiteboard: bool | None = None


class BrandingApiChecks(ApiModel):
    referrer_check: bool | None = None
    referrer_domain: str | None = None
    user_ref_check: bool | None = None


class MeetingLoginBranding(ApiModel):
    banner: str | None = None
    video_file: str | None = None
    video_embed: str | None = None
    headline: str | None = None
    desc: str | None = None
    target_url: str | None = None


class MeetingSessionBranding(ApiModel):
    banner_small: str | None = None
    banner_big: str | None = None
    target_url: str | None = None


class AppBranding(ApiModel):
    """The branding of one application; `login`/`session` only when a meeting set them."""

    enabled: bool | None = None
    name: str | None = None
    url: str | None = None
    logo: str | None = None
    logo_inner: str | None = None
    logo_icon: str | None = None
    favicon: str | None = None
    desc: str | None = None
    exit_url: str | None = None
    copyright: str | None = None
    login_page: LoginPage | None = None
    fields: list[BrandingField] | None = None
    email: BrandingEmail | None = None
    tos: TermsOfService | None = None
    credits: Credits | None = None
    options: BrandingOptions | None = None
    api: BrandingApiChecks | None = None
    login: MeetingLoginBranding | None = None
    session: MeetingSessionBranding | None = None


class Branding(ApiModel):
    """`vc` (meetings) and `wb` (webinars): either is absent when the domain lacks that app."""

    vc: AppBranding | None = None
    wb: AppBranding | None = None
