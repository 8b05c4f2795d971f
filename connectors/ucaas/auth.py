"""The two ways to authenticate: HTTP Basic, and a `Token` from POST /login.

Tokens are cached, refreshed `refresh_margin_s` before the configured lifetime ends (the
reference says 15 minutes in one place and 20 in another, so the lifetime is a setting),
and dropped when the API answers 401 so that the next call logs in again.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import SecretStr

AuthMode = Literal["token", "basic"]
Login = Callable[[str, SecretStr], Awaitable[str]]


@dataclass(frozen=True)
class Credentials:
    """An account's e-mail and password. The password never shows in repr or str."""

    email: str
    password: SecretStr

    @classmethod
    def of(cls, email: str, password: str | SecretStr) -> Credentials:
        return cls(email, password if isinstance(password, SecretStr) else SecretStr(password))


class Auth(Protocol):
    async def header(self, login: Login) -> str: ...

    def invalidate(self, header: str) -> bool:
        """Forget `header` after a 401; True when a fresh login may help."""
        ...


@dataclass
class BasicAuth:
    credentials: Credentials
    _header: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        raw = f"{self.credentials.email}:{self.credentials.password.get_secret_value()}"
        self._header = "Basic " + base64.b64encode(raw.encode()).decode()

    async def header(self, login: Login) -> str:
        return self._header

    def invalidate(self, header: str) -> bool:
        return False


@dataclass
class TokenAuth:
    credentials: Credentials
    lifetime_s: float = 15 * 60
    refresh_margin_s: float = 60
    clock: Callable[[], float] = time.monotonic
    _token: str | None = field(default=None, init=False, repr=False)
    _expires: float = field(default=0.0, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    logins: int = field(default=0, init=False)

    def _fresh(self) -> bool:
        return self._token is not None and self.clock() < self._expires - self.refresh_margin_s

    async def header(self, login: Login) -> str:
        if not self._fresh():
            async with self._lock:  # one login for many callers that found the token stale
                if not self._fresh():
                    started = self.clock()
                    self._token = await login(self.credentials.email, self.credentials.password)
                    self._expires = started + self.lifetime_s
                    self.logins += 1
        token = self._token
        if token is None:  # pragma: no cover - login either set it or raised
            raise RuntimeError("login returned no token")
        return f"Token {token}"

    def invalidate(self, header: str) -> bool:
        if self._token is not None and header == f"Token {self._token}":
            self._token = None
        return True
