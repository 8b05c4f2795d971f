"""Configuration from the environment: aliases, drivers, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import settings_reference
from service.cli.main import app
from service.settings import CONFIG_FILE_VARIABLE, ConfigFileError, Settings


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


# -- the configuration file ------------------------------------------------------------------
FILE = """
ucaas_base_url = "https://ucaas.example.com/ucaas/v1"
database_url = "postgresql://sync:db-pw-77@db.internal/sync"
ucaas_admin_password = "file-admin-pw"

[dispatch]
workers = 3
batch = 9

[admin]
host = "192.0.2.10"
token = "file-token-55"

[tenant_logins.CRM-1]
username = "ca@x.test"
password = "tenant-pw-from-file"
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ucaas-sync.toml"
    path.write_text(FILE)
    for name in ("DATABASE_URL", "UCAAS_SYNC_DATABASE_URL", "UCAAS_SYNC_DISPATCH_BATCH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(path))
    return path


def test_a_toml_file_sets_fields_and_sections(config_file: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ucaas_base_url == "https://ucaas.example.com/ucaas/v1"
    assert settings.database_url == "postgresql+asyncpg://sync:db-pw-77@db.internal/sync"
    assert (settings.dispatch.workers, settings.dispatch.batch) == (3, 9)
    assert settings.dispatch.lease_s == 60.0  # a key the file leaves out keeps its default
    assert settings.admin.host == "192.0.2.10"
    assert settings.tenant_logins["CRM-1"].username == "ca@x.test"


def test_the_environment_beats_the_file_key_by_key(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UCAAS_SYNC_DISPATCH_BATCH", "11")
    monkeypatch.setenv("UCAAS_SYNC_UCAAS_BASE_URL", "https://other.example.com/ucaas/v1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.dispatch.workers, settings.dispatch.batch) == (3, 11)
    assert settings.ucaas_base_url == "https://other.example.com/ucaas/v1"


def test_a_missing_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigFileError, match=r"nope\.toml: no such file"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_effective_configuration_masks_every_secret(config_file: Path) -> None:
    shown = Settings(_env_file=None).effective()  # type: ignore[call-arg]
    text = json.dumps(shown)
    for secret in ("db-pw-77", "file-admin-pw", "file-token-55", "tenant-pw-from-file"):
        assert secret not in text
    assert shown["database_url"] == "postgresql+asyncpg://sync:***@db.internal/sync"
    assert shown["dispatch"]["workers"] == 3
    assert shown["admin"]["token"] == "**********"
    assert shown["config_file"] == str(config_file)


def test_config_command_prints_the_effective_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--config` sets the variable for the process (as a CLI run should); set here first,
    # so monkeypatch takes it away again afterwards: left behind, it gave every later
    # test in the run this file's settings (a wrong UCaaS password: 401s far from here)
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, "")
    monkeypatch.delenv(CONFIG_FILE_VARIABLE)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("UCAAS_SYNC_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    path = tmp_path / "c.toml"
    path.write_text(FILE)
    result = CliRunner().invoke(app, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["dispatch"]["batch"] == 9
    assert "tenant-pw-from-file" not in result.output
    missing = CliRunner().invoke(app, ["--config", str(tmp_path / "x.toml"), "config"])
    assert missing.exit_code == 2


def test_the_readme_carries_the_current_configuration_reference() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start, end = readme.index(settings_reference.START), readme.index(settings_reference.END)
    shown = readme[start : end + len(settings_reference.END)]
    assert shown == settings_reference.as_markdown(), (
        "README's configuration reference is stale: paste `ucaas-sync config --reference`"
    )
    for option in settings_reference.reference():
        assert option.description, f"{option.key} has no description"
    names = {v for option in settings_reference.reference() for v in option.variables}
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "UCAAS_SYNC_ADMIN_TOKEN"} <= names
