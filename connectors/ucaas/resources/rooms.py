"""Permanent rooms: get (own or a user's), update, reset PINs. Mixed into `MeetingsAPI`."""

from __future__ import annotations

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import App
from connectors.ucaas.models.meetings import PermanentRoom, PinReset, RoomChanges


def app_header(app: App) -> dict[str, str]:
    """Every meeting and room call names its application; the API's default is vc."""
    return {"X-App-Type": app}


class PermanentRoomsMixin:
    _core: ApiCore

    async def get_permanent_room(self, app: App, user_id: str | None = None) -> PermanentRoom:
        """The caller's own room for `app`, or the room of `user_id` (a user it sees)."""
        if user_id is None:
            return await self._core.call(
                PermanentRoom,
                "GET",
                "/meetings/permanent",
                key="permanent_room",
                headers=app_header(app),
            )
        return await self._core.call(
            PermanentRoom,
            "GET",
            "/meetings/permanent/{user_id}",
            key="permanent_room",
            path={"user_id": user_id},
            headers=app_header(app),
        )

    async def update_permanent_room(
        self, room_id: str, changes: RoomChanges, app: App
    ) -> PermanentRoom:
        return await self._core.call(
            PermanentRoom,
            "PATCH",
            "/meetings/permanent/{room_id}",
            key="permanent_room",
            path={"room_id": room_id},
            json=changes.payload(),
            headers=app_header(app),
        )

    async def reset_pins(self, room_id: str, *, mpin: bool, ppin: bool, app: App) -> PermanentRoom:
        """New moderator and/or participant PIN; the old ones stop working at once."""
        return await self._core.call(
            PermanentRoom,
            "PATCH",
            "/meetings/permanent/{room_id}",
            key="permanent_room",
            path={"room_id": room_id},
            json=PinReset(reset_mpin=mpin, reset_ppin=ppin).payload(),
            headers={**app_header(app), "X-Action": "reset-pins"},
        )
