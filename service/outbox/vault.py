"""Per-tenant UCaaS logins: from configuration, or captured from create_customer's answer.

Passwords are encrypted at rest with Fernet (AES-128-CBC + HMAC) under a key from the
environment (`UCAAS_SYNC_SECRET_KEY`). For the embedded SQLite default a key is made once
and kept beside the database (mode 0600) so `make demo` needs no set-up; PostgreSQL
deployments must supply the key. Nothing here logs or returns a password in clear.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class MissingSecretKeyError(RuntimeError):
    """Configure UCAAS_SYNC_SECRET_KEY (a Fernet key) before storing tenant logins."""


class CredentialVault:
    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode())

    def __repr__(self) -> str:
        return "CredentialVault(key=***)"

    def seal(self, password: SecretStr) -> str:
        return self._fernet.encrypt(password.get_secret_value().encode()).decode()

    def open(self, token: str) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(token.encode()).decode())
        except InvalidToken:
            raise MissingSecretKeyError(
                "a stored tenant login cannot be decrypted: UCAAS_SYNC_SECRET_KEY changed?"
            ) from None


def local_key(path: Path) -> SecretStr:
    """The embedded deployment's key, made on first use and kept with owner-only access."""
    if path.exists():
        return SecretStr(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return SecretStr(key)


def new_key() -> str:
    return Fernet.generate_key().decode()
