"""Permanent rooms and scheduled meetings.

Times travel as UTC `YYYY-MM-DD HH:MM:SS`; here they are aware `datetime`s in UTC (a naive
one given to a request is taken as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from connectors.ucaas.models.base import ApiModel, ChangesModel, ListQuery, RequestModel

API_TIME = "%Y-%m-%d %H:%M:%S"
Stage = Literal["upcoming", "current", "past"]


def to_utc(value: datetime) -> datetime:
    """Aware, in UTC, to the second: the precision the API keeps."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=0)


def _blank_is_none(value: Any) -> Any:
    # The reference's examples answer "" for unknown time zone details.
    return None if value == "" else value


ApiTime = Annotated[
    datetime,
    AfterValidator(to_utc),
    PlainSerializer(lambda v: v.strftime(API_TIME), return_type=str, when_used="json"),
]
OptInt = Annotated[int | None, BeforeValidator(_blank_is_none)]
OptBool = Annotated[bool | None, BeforeValidator(_blank_is_none)]


# -- permanent rooms --------------------------------------------------------------------
class PermanentRoom(ApiModel):
    room_id: str
    user_id: str | None = None
    room_name: str | None = None
    app_type: str | None = None
    desc: str | None = None
    mpin: str | None = None
    ppin: str | None = None
    direct_url: str | None = None
    moderators: OptInt = None
    participants: OptInt = None
    duration: OptInt = None
    wait_for_moderator: OptBool = None
    knock: OptBool = None
    auto_recording: OptBool = None
    active: OptBool = None


class RoomChanges(RequestModel):
    """Every field optional: send only what changes."""

    room_name: str | None = None
    desc: str | None = None
    moderators: int | None = None
    participants: int | None = None
    wait_for_moderator: bool | None = None
    knock: bool | None = None
    auto_recording: bool | None = None


class PinReset(RequestModel):
    reset_mpin: bool
    reset_ppin: bool


# -- meetings ---------------------------------------------------------------------------
class Invitees(RequestModel):
    contact_ids: list[str] | None = None
    group_ids: list[str] | None = None
    emails: list[str] | None = None


class InviteeLists(ApiModel):
    contact_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)


class Timezone(ApiModel):
    timezone_id: str | None = None
    zone_name: str | None = None
    zone_abbr: str | None = None
    time_start: str | None = None
    gmt_offset: OptInt = None  # minutes east of UTC
    is_dst: OptBool = None


class MeetingRef(ApiModel):
    meeting_id: str
    room_id: str | None = None
    user_id: str | None = None
    room_name: str | None = None
    app_type: str | None = None


class Meeting(MeetingRef):
    desc: str | None = None
    start_time: ApiTime | None = None
    timezone_id: str | None = None
    timezone: Timezone | None = None
    mpin: str | None = None
    ppin: str | None = None
    direct_url: str | None = None
    moderators: OptInt = None
    participants: OptInt = None
    duration: OptInt = None
    wait_for_moderator: OptBool = None
    knock: OptBool = None
    auto_recording: OptBool = None
    invitees: InviteeLists | None = None
    stage: str | None = None


class NewMeeting(RequestModel):
    """`user_id`: the organiser, a user the caller sees (default: the caller)."""

    room_name: str
    desc: str
    start_time: ApiTime
    timezone_id: str
    duration: int
    moderators: int
    participants: int
    user_id: str | None = None
    wait_for_moderator: bool | None = None
    knock: bool | None = None
    auto_recording: bool | None = None
    send_mail: bool | None = None
    invitees: Invitees | None = None


class MeetingChanges(ChangesModel):
    """Every field optional: send only what changes. Only upcoming meetings change.
    `desc` cannot be emptied (it is required when scheduling); `invitees` replaces the
    lists it carries, so empty lists remove every invitee."""

    room_name: str | None = None
    desc: str | None = None
    start_time: ApiTime | None = None
    timezone_id: str | None = None
    duration: int | None = None
    moderators: int | None = None
    participants: int | None = None
    wait_for_moderator: bool | None = None
    knock: bool | None = None
    auto_recording: bool | None = None
    send_mail: bool | None = None
    invitees: Invitees | None = None


class MeetingQuery(ListQuery):
    """search_by: mpin, ppin or user_id (exact). order_by: start_time (default),
    room_name, duration, created_at."""

    stage: Stage | None = None
