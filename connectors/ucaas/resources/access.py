"""Provisioning Access and Video Session Access: login, passwords, sessions, branding.

None of these calls sends credentials (the routes are keyed by e-mail, reset key, PIN or
id); all send `X-Api-Id`, which these routes require.
"""

from __future__ import annotations

from pydantic import SecretStr

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.access import (
    Branding,
    InviteRequest,
    JoinRequest,
    LoginResult,
    PasswordNotice,
    PasswordReset,
    ResetKeyOwner,
    SessionJoin,
)
from connectors.ucaas.models.base import Result


def _secret(value: str | SecretStr) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


class AccessAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def login(self, email: str, password: str | SecretStr) -> LoginResult:
        """POST /login: a token for OAuth2-style calls (no credentials needed)."""
        return await self._core.call(
            LoginResult,
            "POST",
            "/login",
            json={"email": email, "password": _secret(password).get_secret_value()},
            authenticated=False,
        )

    async def forgot_password(self, email: str) -> PasswordNotice:
        """POST /password: the API mails the user a reset key (valid for a limited time)."""
        return await self._core.call(
            PasswordNotice,
            "POST",
            "/password",
            key="data",
            json={"email": email},
            authenticated=False,
        )

    async def validate_reset_key(self, reset_key: str) -> ResetKeyOwner:
        """POST /password/{key} with no body: whose key it is; 4201 if unknown or expired."""
        return await self._core.call(
            ResetKeyOwner,
            "POST",
            "/password/{reset_key}",
            key="data",
            path={"reset_key": reset_key},
            authenticated=False,
        )

    async def reset_password(
        self,
        reset_key: str,
        email: str,
        password: str | SecretStr,
        password_retyped: str | SecretStr,
    ) -> PasswordNotice:
        """PATCH /password/{key}: set a new password. The key is spent on success."""
        body = PasswordReset(
            email=email, password=_secret(password), password_retyped=_secret(password_retyped)
        )
        return await self._core.call(
            PasswordNotice,
            "PATCH",
            "/password/{reset_key}",
            key="data",
            path={"reset_key": reset_key},
            json=body.payload(),
            authenticated=False,
        )

    async def join_session(self, pin: str, name: str, user_ref: str) -> SessionJoin:
        """POST /sessions/join: the moderator PIN joins as moderator, the participant PIN
        as participant. The answer's token opens the video session only."""
        body = JoinRequest(pin=pin, name=name, user_ref=user_ref)
        return await self._core.call(
            SessionJoin, "POST", "/sessions/join", json=body.payload(), authenticated=False
        )

    async def invite(
        self,
        invitees: list[str],
        *,
        pin: str | None = None,
        room_id: str | None = None,
        meeting_id: str | None = None,
    ) -> Result:
        """POST /sessions/invite: mail the participant PIN and a join link to each invitee."""
        body = InviteRequest(invitees=invitees, pin=pin, room_id=room_id, meeting_id=meeting_id)
        return await self._core.call(
            Result, "POST", "/sessions/invite", json=body.payload(), authenticated=False
        )

    async def get_branding(
        self,
        domain: str | None = None,
        customer_id: str | None = None,
        meeting_id: str | None = None,
    ) -> Branding:
        """GET /branding: the domain's branding, overridden by the customer's, then by the
        meeting's. At least one argument is needed (the API answers 2001 else)."""
        params = {"domain": domain, "customer_id": customer_id, "meeting_id": meeting_id}
        return await self._core.call(
            Branding, "GET", "/branding", params=params, authenticated=False
        )
