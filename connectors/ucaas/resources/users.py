"""User Management API: add, edit, get, list, and licence assign/revoke.

Licences share `PATCH /users/{user_id}` with edit; the `X-License` header picks the action.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import App, Page
from connectors.ucaas.models.users import (
    LicenceAssigned,
    LicenceAssignment,
    LicenceRevocation,
    LicenceRevoked,
    NewUser,
    User,
    UserChanges,
    UserQuery,
    UserSaved,
)

USER_ROUTE = "/users/{user_id}"


class UsersAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def add(self, user: NewUser) -> UserSaved:
        return await self._core.call(UserSaved, "POST", "/users", json=user.payload())

    async def edit(self, user_id: str, changes: UserChanges) -> UserSaved:
        """Also suspends (`status="S"`) and reactivates (`"A"`): users are never deleted."""
        return await self._core.call(
            UserSaved, "PATCH", USER_ROUTE, path={"user_id": user_id}, json=changes.payload()
        )

    async def get(self, user_id: str) -> User:
        return await self._core.call(User, "GET", USER_ROUTE, key="user", path={"user_id": user_id})

    async def list(self, query: UserQuery | None = None) -> Page[User]:
        return await self._core.page("/users", "users", User, query)

    def iterate(self, query: UserQuery | None = None) -> AsyncIterator[User]:
        return self._core.iterate("/users", "users", User, query)

    async def find_by_email(self, email: str) -> User | None:
        """The natural-key lookup the sync uses before adding a user."""
        query = UserQuery(search_by="email", search_string=email)
        async for user in self.iterate(query):
            if (user.email or "").lower() == email.lower():
                return user
        return None

    async def assign_licence(
        self,
        user_id: str,
        *,
        app: App,
        subscription_id: str,
        send_access_mail: bool | None = None,
    ) -> LicenceAssigned:
        """Takes a seat of the subscription and makes the user's permanent room.

        Raises AlreadyAssignedError (1261), MissingPrerequisiteError when no seat is free
        (1262) or the subscription is not active (1615/1616)."""
        body = LicenceAssignment(
            app=app, subscription_id=subscription_id, send_access_mail=send_access_mail
        )
        return await self._core.call(
            LicenceAssigned,
            "PATCH",
            USER_ROUTE,
            path={"user_id": user_id},
            json=body.payload(),
            headers={"X-License": "assign"},
        )

    async def revoke_licence(self, user_id: str, app: App) -> LicenceRevoked:
        """Frees the seat and deactivates the room. NotAssignedError (1260) if none."""
        return await self._core.call(
            LicenceRevoked,
            "PATCH",
            USER_ROUTE,
            path={"user_id": user_id},
            json=LicenceRevocation(app=app).payload(),
            headers={"X-License": "revoke"},
        )
