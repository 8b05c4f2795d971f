"""PostgreSQL over TLS, against a private server that accepts TLS connections only: the
migrations (psycopg) and the service's engine (asyncpg) both connect with
`sslmode=verify-full&sslrootcert=CA`, and a CA that did not sign the server's certificate
stops the command at start with one line, not a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.app.bootstrap import bootstrap
from service.outbox import db
from service.outbox.tls import DatabaseTlsError
from service.settings import Settings
from tests.support.certificates import Authority
from tests.support.service_processes import ucaas_sync
from tests.support.tls_postgres import TlsServer, tls_postgres


@pytest.fixture(scope="module")
def server() -> Iterator[TlsServer]:
    with tls_postgres() as found:
        yield found


@pytest.fixture(scope="module")
def wrong_ca(server: TlsServer) -> Path:
    return Authority.make(server.folder, "another-ca").cert_file


def service_url(url: str) -> str:
    return Settings(database_url=url).database_url  # the async driver, as the service has it


async def on_tls(url: str) -> bool:
    engine = db.make_engine(service_url(url), pool_size=1)
    try:
        await db.check_connection(engine)
        async with engine.connect() as conn:
            used = await conn.scalar(
                sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
        return bool(used)
    finally:
        await engine.dispose()


async def test_migrations_and_the_service_connect_with_verify_full(server: TlsServer) -> None:
    url = server.url(sslmode="verify-full", sslrootcert=str(server.authority.cert_file))
    db.upgrade(service_url(url))  # psycopg; the server has hostssl only: TLS or nothing
    assert db.current_revision(service_url(url)) is not None
    assert await on_tls(url)  # asyncpg, through the service's engine


async def test_verify_ca_checks_the_chain_not_the_host_name(server: TlsServer) -> None:
    ca = str(server.authority.cert_file)
    # the certificate names localhost, not 127.0.0.1
    assert await on_tls(server.url("127.0.0.1", sslmode="verify-ca", sslrootcert=ca))
    with pytest.raises(DatabaseTlsError, match=r"certificate verify failed: .*mismatch"):
        await on_tls(server.url("127.0.0.1", sslmode="verify-full", sslrootcert=ca))


async def test_require_encrypts_without_verifying(server: TlsServer) -> None:
    assert await on_tls(server.url(sslmode="require"))


async def test_a_client_certificate_is_sent(server: TlsServer) -> None:
    """sslcert/sslkey reach the server: a database that wants a client certificate is
    refused without one and open with one, and the server sees the certificate's name."""
    ca = str(server.authority.cert_file)
    client = server.authority.issue(server.folder, "client")  # CN=client
    with pytest.raises(Exception, match="certificate"):
        await on_tls(server.url(database="certified", sslmode="verify-full", sslrootcert=ca))
    url = server.url(
        database="certified",
        sslmode="verify-full",
        sslrootcert=ca,
        sslcert=str(client.cert),
        sslkey=str(client.key),
    )
    engine = db.make_engine(service_url(url), pool_size=1)
    try:
        async with engine.connect() as conn:
            seen = await conn.scalar(
                sa.text("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
    finally:
        await engine.dispose()
    assert seen == "/CN=client"
    db.upgrade(service_url(url))  # and psycopg sends it too


async def test_a_wrong_ca_stops_the_service_at_start(server: TlsServer, wrong_ca: Path) -> None:
    url = server.url(sslmode="verify-full", sslrootcert=str(wrong_ca))
    with pytest.raises(DatabaseTlsError) as raised:
        await bootstrap(Settings(database_url=url, secret_key=None))
    message = str(raised.value)
    assert "certificate verify failed" in message
    assert "\n" not in message


@pytest.mark.parametrize("command", [["db", "upgrade"], ["status"], ["dispatch"]])
def test_a_wrong_ca_is_one_line_from_the_command_line(
    server: TlsServer, wrong_ca: Path, command: list[str], tmp_path: Path
) -> None:
    url = server.url(sslmode="verify-full", sslrootcert=str(wrong_ca))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UCAAS_SYNC_", "DATABASE_URL"))}
    done = ucaas_sync({**env, "DATABASE_URL": url}, tmp_path, *command, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: database localhost:")
    assert "certificate verify failed" in lines[0]


def test_a_missing_ca_file_is_one_line(server: TlsServer, tmp_path: Path) -> None:
    url = server.url(sslmode="verify-full", sslrootcert=str(tmp_path / "nowhere.pem"))
    with pytest.raises(DatabaseTlsError, match=r"nowhere\.pem: No such file"):
        db.make_engine(service_url(url))
