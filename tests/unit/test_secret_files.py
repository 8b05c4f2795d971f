"""Every setting from a file (`<VARIABLE>_FILE`), the way Kubernetes and Docker mount
secrets: the file's content is the value, masked like any secret, and a missing file is
one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.settings import ConfigFileError, Settings


def secret(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content + "\n", encoding="utf-8")  # as `kubectl create secret` writes
    return str(path)


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_secrets_come_from_their_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    logins = {"CRM-1": {"username": "ca@x.test", "password": "tenant-pw-9"}}
    files = {
        "UCAAS_SYNC_UCAAS_ADMIN_PASSWORD_FILE": secret(tmp_path, "admin", "hunter2-admin"),
        "UCAAS_SYNC_SECRET_KEY_FILE": secret(tmp_path, "key", "k" * 43 + "="),
        "UCAAS_SYNC_ADMIN_TOKEN_FILE": secret(tmp_path, "token", "admin-token-7"),
        "UCAAS_SYNC_TENANT_LOGINS_FILE": secret(tmp_path, "logins", json.dumps(logins)),
        "DATABASE_URL_FILE": secret(tmp_path, "db", "postgresql://sync:db-pw-3@db/sync"),
    }
    for variable, path in files.items():
        monkeypatch.setenv(variable, path)
    found = settings()
    assert found.ucaas_admin_password.get_secret_value() == "hunter2-admin"
    assert found.secret_key is not None
    assert found.secret_key.get_secret_value() == "k" * 43 + "="
    assert found.admin.token is not None
    assert found.admin.token.get_secret_value() == "admin-token-7"
    assert found.tenant_logins["CRM-1"].password.get_secret_value() == "tenant-pw-9"
    assert found.database_url == "postgresql+asyncpg://sync:db-pw-3@db/sync"
    shown = json.dumps(found.effective())
    for leaked in ("hunter2-admin", "admin-token-7", "tenant-pw-9", "db-pw-3"):
        assert leaked not in shown


def test_the_variable_itself_wins_over_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UCAAS_SYNC_UCAAS_ADMIN_PASSWORD", "from-env")
    path = secret(tmp_path, "admin", "from-file")
    monkeypatch.setenv("UCAAS_SYNC_UCAAS_ADMIN_PASSWORD_FILE", path)
    assert settings().ucaas_admin_password.get_secret_value() == "from-env"


def test_any_setting_of_a_section_may_come_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UCAAS_SYNC_DISPATCH_WORKERS_FILE", secret(tmp_path, "w", "5"))
    assert settings().dispatch.workers == 5


def test_a_missing_file_is_one_line_naming_the_variable_not_a_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UCAAS_SYNC_ADMIN_TOKEN_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigFileError) as raised:
        settings()
    message = str(raised.value)
    assert (
        message == f"UCAAS_SYNC_ADMIN_TOKEN_FILE={tmp_path / 'nowhere'}: No such file or directory"
    )
    assert "\n" not in message


def test_the_database_url_and_the_previous_keys_come_from_their_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql://sync:db-pw-4@db.internal/sync?sslmode=verify-full&sslrootcert=/ca.pem"
    monkeypatch.setenv("DATABASE_URL_FILE", secret(tmp_path, "db", url))
    old = ("a" * 43 + "=", "b" * 43 + "=")
    monkeypatch.setenv(
        "UCAAS_SYNC_SECRET_KEYS_PREVIOUS_FILE", secret(tmp_path, "old", ",".join(old))
    )
    found = settings()
    assert found.database_url == url.replace("postgresql://", "postgresql+asyncpg://")
    assert tuple(k.get_secret_value() for k in found.secret_keys_previous) == old
    shown = json.dumps(found.effective())
    assert "db-pw-4" not in shown
    assert old[0] not in shown
    assert old[1] not in shown
    # a mounted JSON list works as well as the comma-separated form
    monkeypatch.setenv(
        "UCAAS_SYNC_SECRET_KEYS_PREVIOUS_FILE", secret(tmp_path, "j", json.dumps(old))
    )
    assert tuple(k.get_secret_value() for k in settings().secret_keys_previous) == old
