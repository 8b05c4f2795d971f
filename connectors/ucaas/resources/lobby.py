"""A meeting's lobby and branding. Mixed into `MeetingsAPI`.

`files` maps multipart part names to (file name, content); with files the request goes as
multipart/form-data, the JSON document in the part `data` (see models/lobby.py for how
items and fields refer to their parts).
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import App
from connectors.ucaas.models.lobby import Branding, BrandingIn, Lobby, LobbyAnswer, LobbyIn
from connectors.ucaas.models.meetings import MeetingRef
from connectors.ucaas.resources.rooms import app_header

Files = Mapping[str, tuple[str, bytes]]
LOBBY = "/meetings/{meeting_id}/lobby"


class LobbyMixin:
    _core: ApiCore

    async def get_lobby(self, meeting_id: str, app: App) -> Lobby | None:
        """The meeting's lobby, or None when it has none."""
        answer = await self._core.call(
            LobbyAnswer, "GET", LOBBY, path={"meeting_id": meeting_id}, headers=app_header(app)
        )
        return answer.lobby

    async def add_lobby(
        self, meeting_id: str, lobby: LobbyIn, app: App, files: Files | None = None
    ) -> Lobby:
        """AlreadyExistsError (2401) when the meeting has a lobby: use `update_lobby`."""
        return await self._send_lobby("POST", meeting_id, lobby, app, files)

    async def update_lobby(
        self, meeting_id: str, lobby: LobbyIn, app: App, files: Files | None = None
    ) -> Lobby:
        """Replaces the whole lobby. NotFoundError when the meeting has none."""
        return await self._send_lobby("PATCH", meeting_id, lobby, app, files)

    async def _send_lobby(
        self, method: str, meeting_id: str, lobby: LobbyIn, app: App, files: Files | None
    ) -> Lobby:
        return await self._core.call(
            Lobby,
            method,
            LOBBY,
            key="lobby",
            path={"meeting_id": meeting_id},
            json=lobby.payload(),
            files=files or None,
            headers=app_header(app),
        )

    async def delete_lobby(self, meeting_id: str, app: App) -> MeetingRef:
        """NotFoundError when the meeting has no lobby (treat as done)."""
        return await self._core.call(
            MeetingRef,
            "DELETE",
            LOBBY,
            key="meeting",
            path={"meeting_id": meeting_id},
            headers=app_header(app),
        )

    async def set_branding(
        self, meeting_id: str, branding: BrandingIn, app: App, files: Files | None = None
    ) -> Branding:
        """Overwrites the meeting's whole branding."""
        return await self._core.call(
            Branding,
            "POST",
            "/meetings/{meeting_id}/branding",
            key="branding",
            path={"meeting_id": meeting_id},
            json=branding.payload(),
            files=files or None,
            headers=app_header(app),
        )
