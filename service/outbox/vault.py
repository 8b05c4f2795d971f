"""Secrets at rest: per-tenant UCaaS logins (from configuration, or captured from
create_customer's answer) and calendar feed URLs (a private calendar's address is its
password).

They are sealed with Fernet (AES-128-CBC + HMAC) under a key from the environment
(`UCAAS_SYNC_SECRET_KEY`). Earlier keys (`UCAAS_SYNC_SECRET_KEYS_PREVIOUS`) still open what
they sealed, so a key is changed without downtime: the new key seals from then on, and
`ucaas-sync keys rotate` (rotation.py) seals the stored values again under it, after which
the earlier keys can go. For the embedded SQLite default a key is made once and kept
beside the database (mode 0600) so `make demo` needs no set-up; PostgreSQL deployments
must supply the key. Nothing here logs or returns a secret in clear.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from service.settings import DATA_DIR, ConfigFileError, Settings

# A Fernet token: version byte 0x80, 8-byte time, 16-byte IV, at least one 16-byte
# block of ciphertext, 32-byte HMAC; url-safe base64. A URL (it has a ':') never is one.
_VERSION = 0x80
_SHORTEST = 1 + 8 + 16 + 16 + 32
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
LOCAL_KEY_FILE = "secret.key"


class MissingSecretKeyError(RuntimeError):
    """Configure UCAAS_SYNC_SECRET_KEY (a Fernet key), and put the key a stored value was
    sealed with in UCAAS_SYNC_SECRET_KEYS_PREVIOUS until `keys rotate` has run."""


class BadSecretKeyError(ConfigFileError):
    """A configured key is not a Fernet key: fix the variable (`ucaas-sync keys new`)."""


def _fernet(key: SecretStr, name: str) -> Fernet:
    try:
        return Fernet(key.get_secret_value().strip().encode())
    except (ValueError, binascii.Error):
        # the variable's name, never the value
        raise BadSecretKeyError(
            f"{name}: not a Fernet key (32 url-safe base64-encoded bytes; "
            "`ucaas-sync keys new` makes one)"
        ) from None


def is_sealed(value: str) -> bool:
    """Whether a stored value is a Fernet token (else it was stored before sealing)."""
    if not _BASE64URL.fullmatch(value):  # the decoder would skip what is not base64
        return False
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (ValueError, binascii.Error):
        return False
    return len(raw) >= _SHORTEST and raw[0] == _VERSION


class CredentialVault:
    """Seals under the current key; opens under the current key or any earlier one."""

    def __init__(self, key: SecretStr, previous: Sequence[SecretStr] = ()) -> None:
        self._current = _fernet(key, "UCAAS_SYNC_SECRET_KEY")
        earlier = [
            _fernet(k, f"UCAAS_SYNC_SECRET_KEYS_PREVIOUS (key {n})")
            for n, k in enumerate(previous, start=1)
        ]
        self._any = MultiFernet([self._current, *earlier])
        self.keys = 1 + len(earlier)

    def __repr__(self) -> str:
        return f"CredentialVault(keys={self.keys}, ***)"

    def seal(self, password: SecretStr) -> str:
        return self._current.encrypt(password.get_secret_value().encode()).decode()

    def open(self, token: str) -> SecretStr:
        try:
            return SecretStr(self._any.decrypt(token.encode()).decode())
        except InvalidToken:
            raise MissingSecretKeyError(
                "a stored secret opens with none of the configured keys: put the key it was "
                "sealed with in UCAAS_SYNC_SECRET_KEYS_PREVIOUS (UCAAS_SYNC_SECRET_KEY changed?)"
            ) from None

    def seal_text(self, text: str) -> str:
        return self.seal(SecretStr(text))

    def open_text(self, stored: str) -> str:
        """A stored value opened; one stored before sealing (a plain feed URL from an
        earlier version) as it is."""
        return self.open(stored).get_secret_value() if is_sealed(stored) else stored

    def opens(self, stored: str) -> bool:
        """Whether some configured key opens it (a plain value: yes)."""
        return not is_sealed(stored) or _decrypts(self._any, stored)

    def is_current(self, stored: str) -> bool:
        """Whether it is sealed under the current key (nothing for `keys rotate` to do)."""
        return is_sealed(stored) and _decrypts(self._current, stored)

    def reseal(self, stored: str) -> str:
        """Sealed under the current key: a token of an earlier key re-encrypted, a plain
        value sealed."""
        if not is_sealed(stored):
            return self.seal_text(stored)
        try:
            return self._any.rotate(stored.encode()).decode()
        except InvalidToken:
            raise MissingSecretKeyError(
                "a stored secret opens with none of the configured keys"
            ) from None


def vault_for(settings: Settings) -> CredentialVault:
    """The configured keys; for SQLite without one, the key kept beside the database
    (made on first use). A SQLite deployment that sets a key keeps opening what the
    file's key sealed (it counts as an earlier key) until `keys rotate` has run."""
    previous = list(settings.secret_keys_previous)
    if not settings.is_sqlite:
        if settings.secret_key is None:
            raise MissingSecretKeyError(
                "set UCAAS_SYNC_SECRET_KEY (a Fernet key) to use PostgreSQL"
            )
        return CredentialVault(settings.secret_key, previous)
    database = make_url(settings.database_url).database or ""
    folder = Path(database).parent if database and database != ":memory:" else DATA_DIR
    if settings.secret_key is None:
        return CredentialVault(local_key(folder / LOCAL_KEY_FILE), previous)
    if (folder / LOCAL_KEY_FILE).exists():
        previous.append(local_key(folder / LOCAL_KEY_FILE))
    return CredentialVault(settings.secret_key, previous)


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


def _decrypts(keys: Fernet | MultiFernet, stored: str) -> bool:
    try:
        keys.decrypt(stored.encode())
    except InvalidToken:
        return False
    return True
