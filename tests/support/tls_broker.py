"""A Kafka-protocol broker behind TLS, for the tests of the TLS settings: certificates made
with tests/support/certificates.py (a CA, the broker's certificate for 127.0.0.1 and
localhost, a client CA and a client certificate, and a CA nobody uses), stunnel
terminating TLS in front of Tansu brokers that advertise stunnel's ports (a client that
bootstraps over TLS is sent back to TLS).

Two listeners: `tls` (server certificate only) and `mtls` (a client certificate signed by
the client CA is required), each in front of a Tansu of its own (a broker advertises one
address); `plain` is the first Tansu itself, for a TLS client on a plaintext port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from service.devtools.local_broker import tansu_binary
from service.devtools.processes import free_port, stop
from service.settings import KafkaSettings
from tests.support.certificates import Authority, Issued

# `make test` installs stunnel4 (Makefile system-deps) and sets this: there a missing
# stunnel fails the TLS tests instead of skipping them.
REQUIRE = "UCAAS_SYNC_REQUIRE_SYSTEM_DEPS"


def stunnel_binary() -> str | None:
    return shutil.which("stunnel4") or shutil.which("stunnel")


# -- certificates --------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificates:
    ca: Path  # signs the broker's certificate
    server: Issued
    client_ca: Path  # signs the client certificates the mTLS listener accepts
    client: Issued
    stranger_ca: Path  # a CA that signed nothing here: "wrong CA"

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        folder.mkdir(parents=True, exist_ok=True)
        ca, clients, stranger = (
            Authority.make(folder, label, common_name=f"ucaas-sync test {label}")
            for label in ("ca", "client-ca", "stranger-ca")
        )
        return cls(
            ca.cert_file,
            ca.issue(folder, "broker", dns_names=["localhost"], ip_addresses=["127.0.0.1"]),
            clients.cert_file,
            clients.issue(folder, "ucaas-sync-client"),
            stranger.cert_file,
        )


# -- the processes -------------------------------------------------------------------------
def _listening(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Started with its output in `log` (the child keeps its own descriptor)."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def tansu(port: int, advertised: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A Tansu on 127.0.0.1:`port` (memory storage) advertising 127.0.0.1:`advertised`."""
    process = _spawn(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{advertised}",
            "--storage-engine",
            "memory://tansu/",
            *extra,
        ],
        log,
    )
    _listening(port, process, "Tansu", 20.0)
    return process


def _stunnel_config(
    certs: Certificates, routes: dict[str, tuple[int, int, bool]], log: Path
) -> str:
    lines = ["foreground = yes", "pid =", f"output = {log}", "debug = info", ""]
    for name, (accept, connect, mutual) in routes.items():
        lines += [
            f"[{name}]",
            f"accept = 127.0.0.1:{accept}",
            f"connect = 127.0.0.1:{connect}",
            f"cert = {certs.server.cert}",
            f"key = {certs.server.key}",
        ]
        if mutual:
            lines += [f"CAfile = {certs.client_ca}", "verifyChain = yes", "requireCert = yes"]
        lines.append("")
    return "\n".join(lines)


@dataclass
class TlsBroker:
    certs: Certificates
    tls: str  # TLS, the server's certificate only
    mtls: str  # TLS with a client certificate required
    plain: str  # the Tansu behind `tls`, plaintext
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def start(cls, folder: Path) -> TlsBroker:
        binary = stunnel_binary()
        if binary is None:
            raise FileNotFoundError("stunnel not found (Debian's stunnel4 package)")
        certs = Certificates.make(folder / "certs")
        plain, tls = free_port(), free_port()
        plain_m, mtls = free_port(), free_port()
        broker = cls(certs, f"127.0.0.1:{tls}", f"127.0.0.1:{mtls}", f"127.0.0.1:{plain}", folder)
        try:
            broker.processes.append(tansu(plain, tls, folder / "tansu-tls.log"))
            broker.processes.append(tansu(plain_m, mtls, folder / "tansu-mtls.log"))
            config = folder / "stunnel.conf"
            config.write_text(
                _stunnel_config(
                    certs,
                    {"tls": (tls, plain, False), "mtls": (mtls, plain_m, True)},
                    folder / "stunnel.log",
                )
            )
            stunnel = _spawn([binary, str(config)], folder / "stunnel-stdout.log")
            broker.processes.append(stunnel)
            _listening(tls, stunnel, "stunnel", 10.0)
            _listening(mtls, stunnel, "stunnel", 10.0)
        except BaseException:
            broker.stop()
            raise
        return broker

    def settings(self, **given: Any) -> KafkaSettings:
        """TLS settings trusting our CA; `given` changes them."""
        chosen: dict[str, Any] = {"security_protocol": "SSL", "ssl_cafile": self.certs.ca}
        return KafkaSettings(_env_file=None, **{**chosen, **given})  # type: ignore[call-arg]

    def env(self, **given: str) -> dict[str, str]:
        """The same as an operator's environment variables."""
        return {
            "UCAAS_SYNC_KAFKA_SECURITY_PROTOCOL": "SSL",
            "UCAAS_SYNC_KAFKA_SSL_CAFILE": str(self.certs.ca),
            **given,
        }

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted(self.folder.glob("*.log"))
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)


def unavailable(reason: str) -> None:
    """Skip, unless the run requires the system's tools (`make test`): then fail."""
    if os.environ.get(REQUIRE):
        pytest.fail(reason)
    pytest.skip(reason)
