"""TLS for tests: a private PostgreSQL server of one's own that accepts TLS connections only.

The server is initdb'd in a temporary directory owned by the `postgres` OS user and run
as that user (PostgreSQL refuses to run as root, and the tests run as root), on a free
port of 127.0.0.1; its certificate (tests/support/certificates.py) names `localhost`.
Tests skip, saying why, only where the PostgreSQL binaries (or the `postgres` user to run
them) are absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certificates import Authority

BINARIES = Path(os.environ.get("UCAAS_SYNC_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))

BINARIES = Path(os.environ.get("UCAAS_SYNC_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def server_problem() -> str | None:
    """Why a private PostgreSQL server cannot be started here, or None."""
    if not (BINARIES / "initdb").is_file():
        return f"no PostgreSQL binaries at {BINARIES} (set UCAAS_SYNC_TEST_PG_BIN)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` OS user to run a private PostgreSQL server as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "a private PostgreSQL server needs root (runuser) or the postgres user"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*argv: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return list(argv)


@dataclass(frozen=True)
class TlsServer:
    port: int
    authority: Authority  # signed the server's certificate (for `localhost`)
    folder: Path  # the certificates, readable by the tests

    def url(self, host: str = "localhost", database: str = "postgres", **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        where = f"postgresql://postgres@{host}:{self.port}/{database}"
        return where + (f"?{params}" if params else "")


@contextmanager
def tls_postgres() -> Iterator[TlsServer]:
    """A private PostgreSQL server with ssl=on and only `hostssl` in its pg_hba.conf
    (trust: the test is about the channel, not the password; the database `certified`
    wants a client certificate too), stopped and deleted after."""
    problem = server_problem()
    if problem:
        pytest.skip(problem)
    root = Path(tempfile.mkdtemp(prefix="ucaas-pg-tls-"))
    certs = root / "certs"
    data = root / "data"
    certs.mkdir()
    authority = Authority.make(certs, "test-ca")
    server = authority.issue(certs, "server", dns_names=["localhost"])
    port = _free_port()
    postgres = pwd.getpwnam("postgres")
    os.chown(root, postgres.pw_uid, postgres.pw_gid)
    started = False
    try:
        subprocess.run(
            _as_postgres(
                str(BINARIES / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"
            ),
            check=True,
            capture_output=True,
        )
        # the server's files, in its data directory: owned by postgres, 0600 (it refuses
        # a key others can read)
        copies = {"server.crt": server.cert, "server.key": server.key}
        for name, source in {**copies, authority.cert_file.name: authority.cert_file}.items():
            target = data / name
            shutil.copyfile(source, target)
            os.chown(target, postgres.pw_uid, postgres.pw_gid)
            target.chmod(0o600)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{root}'\nssl = on\n"
                "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                f"ssl_ca_file = '{authority.cert_file.name}'\n"
                "fsync = off\nshared_buffers = 16MB\nmax_connections = 40\n"
            )
        # database `certified`: a client certificate signed by the CA is required
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl certified all 127.0.0.1/32 trust clientcert=verify-ca\n"
            "hostssl all all 127.0.0.1/32 trust\n"
        )
        subprocess.run(
            _as_postgres(
                str(BINARIES / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start"
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )
        started = True
        subprocess.run(
            _as_postgres(str(BINARIES / "createdb"), "-h", str(root), "-p", str(port), "certified"),
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield TlsServer(port, authority, certs)
    finally:
        if started:
            subprocess.run(
                _as_postgres(str(BINARIES / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
                check=False,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)
