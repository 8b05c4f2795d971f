"""Reports: video sessions and their CDR (one record per join)."""

from __future__ import annotations

from pydantic import Field

from connectors.ucaas.models.base import ApiModel, ListQuery


class SessionRecord(ApiModel):
    session_id: str
    meeting_id: str | None = None
    room_id: str | None = None
    user_id: str | None = Field(None, description="the host: owner of the room or meeting")
    user_name: str | None = None
    trans_date: str | None = None
    connect_dt: str | None = None
    disconnect_dt: str | None = Field(None, description="None while the session is open")
    duration: int | None = Field(None, description="video minutes used")
    app_type: str | None = Field(None, description="vc meeting, wb webinar")


class SessionQuery(ListQuery):
    """search_by: room_id, session_id, user_id, meeting_id (exact match).

    The date bounds (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, UTC) filter on the session's
    connect time; the API also takes them as `search_by`, this client sends them as
    parameters of their own so that they combine with a search.
    """

    from_session_date: str | None = None
    to_session_date: str | None = None


class CdrRecord(ApiModel):
    cdr_id: str | None = None
    session_id: str
    meeting_id: str | None = None
    room_id: str | None = None
    customer_id: str | None = None
    name: str | None = None
    user_ref: str | None = None
    role: str | None = Field(None, description="moderator or participant")
    app_type: str | None = None
    connect_dt: str | None = None
    disconnect_dt: str | None = None
    duration: int | None = None


class CdrQuery(ListQuery):
    """Use one filter: when several are set, the API applies only the first of room_id,
    meeting_id, session_id (in that order). `search_by` is not taken by this route."""

    room_id: str | None = None
    meeting_id: str | None = None
    session_id: str | None = None
