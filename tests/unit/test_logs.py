"""Structured logs: JSON lines with the task's context, and no secret in any form."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from service.observability import logs
from service.observability.log_context import log_context
from service.settings import Settings

TENANT_PASSWORD = "tenant-pw-7f3a9"
ADMIN_PASSWORD = "admin-pw-c41d2"


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in quiet.items():
        logging.getLogger(name).setLevel(was)
    structlog.reset_defaults()


def configured(format_: str = "json", level: str = "INFO") -> Captured:
    stream = io.StringIO()
    logs.configure(format_, level, stream=stream)  # type: ignore[arg-type]
    return Captured(stream)


@pytest.fixture
def out(restore_logging: None) -> Captured:
    return configured()


def test_stdlib_and_structlog_calls_are_json_lines(out: Captured) -> None:
    logging.getLogger("ucaas_sync.dispatcher").warning("command %s parked: %s", 7, "why")
    structlog.get_logger("ucaas_sync.admin").info("approved", count=3)
    first, second = out.lines()
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert first["event"] == "command 7 parked: why"
    assert (first["level"], first["logger"]) == ("warning", "ucaas_sync.dispatcher")
    assert first["timestamp"].endswith("Z")
    assert (second["event"], second["level"], second["count"]) == ("approved", "info", 3)
    assert second["logger"] == "ucaas_sync.admin"


def test_context_variables_appear_and_go_away(out: Captured) -> None:
    log = logging.getLogger("ucaas_sync.test")
    with log_context(event_id="ev-1", command_id=42, entity="user:CRM-1:E1", kind="k"):
        log.info("inside")
        with log_context(feed_id="f1"):
            log.info("nested")
    log.info("outside")
    inside, nested, outside = out.lines()
    assert inside | {"event_id": "ev-1", "command_id": 42, "entity": "user:CRM-1:E1"} == inside
    assert inside["kind"] == "k"
    assert nested["feed_id"] == "f1"
    assert nested["command_id"] == 42
    assert not {"event_id", "command_id", "entity", "kind", "feed_id"} & set(outside)


async def test_each_task_logs_its_own_context(out: Captured) -> None:
    log = logging.getLogger("ucaas_sync.test")

    async def command(command_id: int) -> None:
        with log_context(command_id=command_id):
            for step in range(3):
                await asyncio.sleep(0)  # the tasks interleave
                log.info("step %d of %d", step, command_id)

    await asyncio.gather(*(command(n) for n in range(5)))
    lines = out.lines()
    assert len(lines) == 15
    assert all(line["event"].endswith(f"of {line['command_id']}") for line in lines)


def test_level_and_quiet_loggers(out: Captured) -> None:
    logging.getLogger("ucaas_sync.test").debug("too fine")
    logging.getLogger("httpx").info("HTTP Request: GET http://x")
    logging.getLogger("aiokafka").info("heartbeat")
    logging.getLogger("httpx").warning("kept")
    assert [line["event"] for line in out.lines()] == ["kept"]


def test_secret_keys_are_masked_at_any_depth(out: Captured) -> None:
    structlog.get_logger("t").info(
        "keys",
        password="p1-secret",
        api_key="k1-secret",
        Authorization="Basic abc",
        headers={"Cookie": "sid=c1-secret", "X-Api-Id": "sandbox-app"},
        logins=[{"username": "u", "client_secret": "s1-secret"}],
        access_token=None,
    )
    logging.getLogger("t").info("extra", extra={"secret_key": "x1-secret", "count": 2})
    keys, extra = out.lines()
    assert "-secret" not in out.text
    assert keys["password"] == keys["api_key"] == keys["Authorization"] == logs.MASK
    assert keys["headers"] == {"Cookie": logs.MASK, "X-Api-Id": "sandbox-app"}
    assert keys["logins"] == [{"username": "u", "client_secret": logs.MASK}]
    assert keys["access_token"] is None  # nothing to hide
    assert (extra["secret_key"], extra["count"]) == (logs.MASK, 2)


def test_secret_str_values_stay_masked(out: Captured) -> None:
    secret = SecretStr("s2-secret")
    structlog.get_logger("t").info("value", given=secret, inside={"deep": [secret]})
    logging.getLogger("t").info("as an argument: %s", secret)
    assert "s2-secret" not in out.text
    value, _ = out.lines()
    assert value["given"] == logs.MASK
    assert value["inside"] == {"deep": [logs.MASK]}


def test_url_passwords_are_masked(out: Captured) -> None:
    url = "postgresql+asyncpg://sync:u3-secret@db.internal:5432/sync"
    logging.getLogger("t").error("cannot connect to %s", url)
    structlog.get_logger("t").info("target", url="https://bot:u4-secret@feeds.example/a.ics")
    assert "-secret" not in out.text
    message, value = out.lines()
    assert (
        message["event"] == "cannot connect to postgresql+asyncpg://sync:***@db.internal:5432/sync"
    )
    assert value["url"] == "https://bot:***@feeds.example/a.ics"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.b5-secret", "Authorization: Bearer ***"),
        ("retrying with Basic YWRtaW46c2FuZGJveC1hZG1pbg==", "retrying with Basic ***"),
        ("header Token 0b5e9c2d7a114f6e8d3c", "header Token ***"),
        (
            "login {'email': 'a@x', 'password': 'b6-secret'}",
            "login {'email': 'a@x', 'password': ***}",
        ),
        ("GET /x?api_key=b7-secret&page=2", "GET /x?api_key=***&page=2"),
    ],
)
def test_credentials_inside_messages_are_masked(out: Captured, message: str, shown: str) -> None:
    logging.getLogger("t").info(message)
    [line] = out.lines()
    assert line["event"] == shown


def test_prose_about_tokens_is_left_alone(out: Captured) -> None:
    logging.getLogger("t").info("token expired, logging in again with basic auth")
    [line] = out.lines()
    assert line["event"] == "token expired, logging in again with basic auth"


def test_tracebacks_carry_no_locals_and_are_masked(out: Captured) -> None:
    def connect() -> None:
        password = "l8-secret"  # a local: a traceback with locals would print it
        raise ConnectionError(f"refused by postgresql://sync:{password}@db/sync")

    try:
        connect()
    except ConnectionError:
        logging.getLogger("t").exception("start failed")
    [line] = out.lines()
    assert "l8-secret" not in out.text
    assert "ConnectionError: refused by postgresql://sync:***@db/sync" in line["exception"]
    assert line["level"] == "error"


def test_tenant_passwords_from_settings_are_never_printed(out: Captured) -> None:
    settings = Settings(
        tenant_logins={"CRM-1": {"username": "ops@crm-1.example", "password": TENANT_PASSWORD}},
        ucaas_admin_password=SecretStr(ADMIN_PASSWORD),
        database_url=f"postgresql://sync:{ADMIN_PASSWORD}@db/sync",
    )
    log = logging.getLogger("ucaas_sync")
    log.info("settings %s", settings)
    log.info("settings %r", settings)
    log.info("logins %s", settings.tenant_logins)
    log.info("dump %s", settings.model_dump())
    log.info("database %s", settings.database_url)
    structlog.get_logger("ucaas_sync").info(
        "configured",
        dump=settings.model_dump(),
        effective=settings.effective(),
        login=settings.tenant_logins["CRM-1"],
        plain={"password": settings.tenant_logins["CRM-1"].password.get_secret_value()},
    )
    assert len(out.lines()) == 6
    assert TENANT_PASSWORD not in out.text
    assert ADMIN_PASSWORD not in out.text
    assert "ops@crm-1.example" in out.text  # the login's name is not a secret


def test_console_format_for_people(restore_logging: None) -> None:
    out = configured("console", "DEBUG")
    with log_context(command_id=9):
        logging.getLogger("ucaas_sync.demo").debug("created %s", "Acme", extra={"token": "t9x"})
    text = out.text
    assert "created Acme" in text
    assert "command_id=9" in text
    assert "ucaas_sync.demo" in text
    assert "t9x" not in text
    assert not text.lstrip().startswith("{")


def test_configure_again_replaces_its_own_handler_only(restore_logging: None) -> None:
    other = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(other)
    configured()
    second = configured()
    logging.getLogger("t").warning("once")
    assert [line["event"] for line in second.lines()] == ["once"]
    assert other in logging.getLogger().handlers
