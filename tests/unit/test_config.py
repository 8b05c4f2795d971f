"""Configuration from the environment: aliases, drivers, secrets masked."""

from __future__ import annotations

import pytest

from service.config import Settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.is_sqlite
    assert settings.ucaas_base_url == "http://127.0.0.1:8900/ucaas/v1"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@db/sync", "postgresql+asyncpg://u@db/sync"),
        ("postgres://u@db/sync", "postgresql+asyncpg://u@db/sync"),
        ("postgresql+psycopg://u@db/sync", "postgresql+asyncpg://u@db/sync"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql+asyncpg://u@db/sync", "postgresql+asyncpg://u@db/sync"),
    ],
)
def test_database_url_from_either_variable(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert Settings(_env_file=None).database_url == used  # type: ignore[call-arg]
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("UCAAS_SYNC_DATABASE_URL", given)
    assert Settings(_env_file=None).database_url == used  # type: ignore[call-arg]


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAAS_SYNC_UCAAS_ADMIN_PASSWORD", "hunter2-admin")
    monkeypatch.setenv(
        "UCAAS_SYNC_TENANT_LOGINS",
        '{"CRM-1": {"username": "ca@x.test", "password": "tenant-pw-9"}}',
    )
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert "hunter2-admin" not in text
    assert "tenant-pw-9" not in text
    assert settings.tenant_logins["CRM-1"].password.get_secret_value() == "tenant-pw-9"


def test_dispatcher_settings_from_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAAS_SYNC_DISPATCH_WORKERS", "3")
    monkeypatch.setenv("UCAAS_SYNC_DISPATCH_LEASE_S", "7.5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.dispatch.workers, settings.dispatch.lease_s) == (3, 7.5)
