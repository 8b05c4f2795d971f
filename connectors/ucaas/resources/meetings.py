"""Meeting Management API: meetings here; permanent rooms and lobbies in the mixins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import App, Page
from connectors.ucaas.models.meetings import (
    Meeting,
    MeetingChanges,
    MeetingQuery,
    MeetingRef,
    NewMeeting,
    to_utc,
)
from connectors.ucaas.resources.lobby import LobbyMixin
from connectors.ucaas.resources.rooms import PermanentRoomsMixin, app_header

MEETING = "/meetings/{meeting_id}"


class MeetingsAPI(PermanentRoomsMixin, LobbyMixin):
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def schedule(self, meeting: NewMeeting, app: App) -> Meeting:
        """Not idempotent: after an ambiguous failure, `find` the meeting before retrying."""
        return await self._core.call(
            Meeting,
            "POST",
            "/meetings",
            key="meeting",
            json=meeting.payload(),
            headers=app_header(app),
        )

    async def edit(self, meeting_id: str, changes: MeetingChanges, app: App) -> Meeting:
        """ValidationError 1604 once the meeting has started."""
        return await self._core.call(
            Meeting,
            "PATCH",
            MEETING,
            key="meeting",
            path={"meeting_id": meeting_id},
            json=changes.payload(),
            headers=app_header(app),
        )

    async def get(self, meeting_id: str, app: App) -> Meeting:
        return await self._core.call(
            Meeting,
            "GET",
            MEETING,
            key="meeting",
            path={"meeting_id": meeting_id},
            headers=app_header(app),
        )

    async def list(self, query: MeetingQuery | None, app: App) -> Page[Meeting]:
        return await self._core.page(
            "/meetings", "meetings", Meeting, query, headers=app_header(app)
        )

    def iterate(self, query: MeetingQuery | None, app: App) -> AsyncIterator[Meeting]:
        return self._core.iterate("/meetings", "meetings", Meeting, query, headers=app_header(app))

    async def cancel(self, meeting_id: str, app: App) -> MeetingRef:
        """NotFoundError when already cancelled (treat as done); ValidationError 1604 when
        the meeting is over."""
        return await self._core.call(
            MeetingRef,
            "DELETE",
            MEETING,
            key="event",
            path={"meeting_id": meeting_id},
            headers=app_header(app),
        )

    async def find(
        self, user_id: str, room_name: str, start_time: datetime, app: App
    ) -> Meeting | None:
        """The organiser's upcoming meeting with this name and start: the natural key the
        sync looks up after a schedule call whose outcome it could not see."""
        wanted = to_utc(start_time)
        name = room_name.strip()
        query = MeetingQuery(search_by="user_id", search_string=user_id, stage="upcoming")
        async for meeting in self.iterate(query, app):
            if meeting.start_time == wanted and (meeting.room_name or "").strip() == name:
                return meeting
        return None
