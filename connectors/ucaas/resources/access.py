"""Provisioning Access and Video Session Access: login, passwords, sessions, branding."""

from __future__ import annotations

from pydantic import SecretStr

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.access import LoginResult


class AccessAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def login(self, email: str, password: str | SecretStr) -> LoginResult:
        """POST /login: a token for OAuth2-style calls (no credentials needed)."""
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        return await self._core.call(
            LoginResult,
            "POST",
            "/login",
            json={"email": email, "password": secret.get_secret_value()},
            authenticated=False,
        )
