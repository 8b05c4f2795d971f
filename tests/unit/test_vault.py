"""The vault's keys: seal under the current key, open under any configured one, tell a
value of an earlier version (a plain feed URL) from a sealed one, seal again on rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.outbox.vault import (
    BadSecretKeyError,
    CredentialVault,
    MissingSecretKeyError,
    is_sealed,
    new_key,
    vault_for,
)
from service.settings import Settings

URL = "https://calendar.example.com/private-0123456789abcdef/basic.ics?token=s3cr3t"


def key() -> SecretStr:
    return SecretStr(new_key())


def test_sealed_under_the_current_key_opened_under_any() -> None:
    old, new = key(), key()
    before = CredentialVault(old)
    token = before.seal_text(URL)
    assert is_sealed(token)
    assert URL not in token
    during = CredentialVault(new, [old])
    assert during.open_text(token) == URL
    assert not during.is_current(token)
    assert during.is_current(during.seal_text(URL))
    after = CredentialVault(new)
    with pytest.raises(MissingSecretKeyError, match="UCAAS_SYNC_SECRET_KEYS_PREVIOUS"):
        after.open_text(token)
    assert not after.opens(token)


def test_reseal_moves_a_value_to_the_current_key() -> None:
    old, new = key(), key()
    token = CredentialVault(old).seal(SecretStr("pw-1"))
    moved = CredentialVault(new, [old]).reseal(token)
    assert CredentialVault(new).open(moved).get_secret_value() == "pw-1"


def test_a_plain_value_of_an_earlier_version_is_read_as_it_is_and_sealed_on_reseal() -> None:
    vault = CredentialVault(key())
    assert not is_sealed(URL)
    assert not is_sealed("webcal://example.com/gAAAAA")
    assert vault.opens(URL)
    assert vault.open_text(URL) == URL
    assert not vault.is_current(URL)
    sealed = vault.reseal(URL)
    assert is_sealed(sealed)
    assert vault.open_text(sealed) == URL


def test_a_bad_key_is_one_line_naming_the_variable_not_the_value() -> None:
    with pytest.raises(BadSecretKeyError) as raised:
        CredentialVault(key(), [key(), SecretStr("not-a-key-at-all")])
    message = str(raised.value)
    assert message.startswith("UCAAS_SYNC_SECRET_KEYS_PREVIOUS (key 2): not a Fernet key")
    assert "not-a-key-at-all" not in message
    assert "\n" not in message
    assert "***" in repr(CredentialVault(key()))


def test_previous_keys_from_the_environment_comma_separated_or_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = new_key(), new_key()
    monkeypatch.setenv("UCAAS_SYNC_SECRET_KEYS_PREVIOUS", f"{a}, {b}")
    found = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [k.get_secret_value() for k in found.secret_keys_previous] == [a, b]
    shown = json.dumps(found.effective())
    assert a not in shown
    assert b not in shown
    assert found.effective()["secret_keys_previous"] == ["**********"] * 2
    monkeypatch.setenv("UCAAS_SYNC_SECRET_KEYS_PREVIOUS", json.dumps([b]))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [k.get_secret_value() for k in settings.secret_keys_previous] == [b]


def test_postgres_needs_a_key() -> None:
    with pytest.raises(MissingSecretKeyError, match="UCAAS_SYNC_SECRET_KEY"):
        vault_for(Settings(database_url="postgresql://u@h/d", secret_key=None))


def test_sqlite_keeps_reading_its_own_key_once_one_is_configured(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    made = vault_for(Settings(database_url=url, secret_key=None))  # the file's key, made
    token = made.seal_text(URL)
    configured = vault_for(Settings(database_url=url, secret_key=key()))
    assert configured.open_text(token) == URL
    assert not configured.is_current(token)  # `keys rotate` moves it to the configured key
