"""How every Kafka client of the project connects: TLS and SASL settings turned into
aiokafka's keyword arguments, once, for the consumers, the dead-letter producer, the lag
reader, the HR snapshot reader, topic creation, the demo, the benchmarks and the tests.

`KafkaConnection` is a bootstrap address and those arguments; `connection(settings, ...)`
makes one from anything shaped like the service's `KafkaSettings` (a Protocol, so this
adapter imports nothing of the service). `probe()` connects once, bounded in time, and
says in one line why a connection cannot be made (kafka_failures.py words it).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.helpers import create_ssl_context
from faststream.security import (
    BaseSecurity,
    SASLOAuthBearer,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import SecretStr

from connectors.events.kafka_failures import (
    KafkaSettingsError,
    KafkaUnreachableError,
    TokenUnavailableError,
    describe,
)

DEFAULT_TIMEOUT_S = 10.0


class KafkaSecuritySettings(Protocol):
    """What is read of the settings (the service's `KafkaSettings` has it all)."""

    @property
    def security_protocol(self) -> str: ...
    @property
    def ssl_cafile(self) -> Path | None: ...
    @property
    def ssl_certfile(self) -> Path | None: ...
    @property
    def ssl_keyfile(self) -> Path | None: ...
    @property
    def ssl_keyfile_password(self) -> SecretStr | None: ...
    @property
    def ssl_check_hostname(self) -> bool: ...
    @property
    def sasl_mechanism(self) -> str | None: ...
    @property
    def sasl_username(self) -> str | None: ...
    @property
    def sasl_password(self) -> SecretStr | None: ...
    @property
    def sasl_oauth_token_file(self) -> Path | None: ...
    @property
    def sasl_oauth_token_command(self) -> str | None: ...
    @property
    def connect_timeout_s(self) -> float: ...


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """The token in a file, read again for every token asked: a Kubernetes projected
    service-account token is replaced on disk before it expires."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
        except OSError as exc:
            raise TokenUnavailableError(f"token file {self.path}: {exc.strerror}") from None
        if not text.strip():
            raise TokenUnavailableError(f"token file {self.path} is empty")
        return text.strip()


class CommandTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """The token a command prints on stdout (a cloud CLI, a helper script), run for every
    token asked so that its own caching and renewal decide."""

    def __init__(self, command: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.argv = shlex.split(command)
        self.timeout_s = timeout_s

    async def token(self) -> str:
        name = self.argv[0] if self.argv else "(empty command)"
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except (OSError, IndexError) as exc:
            raise TokenUnavailableError(f"token command {name}: {exc}") from None
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise TokenUnavailableError(
                f"token command {name}: no token within {self.timeout_s:.0f} s"
            ) from None
        if process.returncode != 0:
            first = (err.decode("utf-8", "replace").strip().splitlines() or [""])[0][:200]
            raise TokenUnavailableError(
                f"token command {name} exited with {process.returncode}: {first}"
            )
        token = out.decode("utf-8", "replace").strip()
        if not token:
            raise TokenUnavailableError(f"token command {name} printed no token")
        return token


def ssl_context(settings: KafkaSecuritySettings) -> ssl.SSLContext:
    """The TLS context: the CA bundle named (else the system's), the client certificate
    for mutual TLS, host name checking as configured."""
    password = settings.ssl_keyfile_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.ssl_cafile,
        certfile=settings.ssl_certfile,
        keyfile=settings.ssl_keyfile,
        password=password.get_secret_value() if password is not None else None,
    )
    context.check_hostname = settings.ssl_check_hostname
    return context


def token_provider(settings: KafkaSecuritySettings) -> AbstractTokenProvider:
    if settings.sasl_oauth_token_file is not None:
        return FileTokenProvider(settings.sasl_oauth_token_file)
    if settings.sasl_oauth_token_command:
        return CommandTokenProvider(settings.sasl_oauth_token_command, settings.connect_timeout_s)
    raise ValueError("OAUTHBEARER needs sasl_oauth_token_file or sasl_oauth_token_command")


def client_options(settings: KafkaSecuritySettings) -> dict[str, Any]:
    """aiokafka's keyword arguments for the settings' TLS and SASL (for PLAINTEXT: just
    the protocol, so that any client can take `**options`)."""
    protocol = settings.security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        mechanism = settings.sasl_mechanism
        options["sasl_mechanism"] = mechanism
        if mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = token_provider(settings)
        else:
            password = settings.sasl_password
            options["sasl_plain_username"] = settings.sasl_username
            options["sasl_plain_password"] = (
                password.get_secret_value() if password is not None else None
            )
    return options


@dataclass(frozen=True)
class KafkaConnection:
    """Where a Kafka client connects and how: `AIOKafkaX(**conn.client_kwargs(), ...)`."""

    bootstrap: str
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def client_kwargs(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap, **self.options}

    @property
    def protocol(self) -> str:
        return str(self.options.get("security_protocol", "PLAINTEXT"))

    def worded(self) -> dict[str, Any]:
        """What kafka_failures.describe() needs to word a failure."""
        return {
            "protocol": self.protocol,
            "mechanism": self.options.get("sasl_mechanism"),
            "timeout_s": self.timeout_s,
        }

    def servers(self) -> list[tuple[str, int]]:
        """host:port,... as pairs, in order, parsed as aiokafka's clients parse them (an
        IPv6 host in brackets; no port: Kafka's 9092)."""
        entries = [e for e in self.bootstrap.split(",") if e.strip()]
        return [(host, port) for host, port, _ in collect_hosts(entries, randomize=False)]


def connection(
    settings: KafkaSecuritySettings, bootstrap: str, *, timeout_s: float | None = None
) -> KafkaConnection:
    return KafkaConnection(
        bootstrap,
        client_options(settings),
        settings.connect_timeout_s if timeout_s is None else timeout_s,
    )


def as_connection(given: KafkaConnection | str) -> KafkaConnection:
    """A bare host:port,... is a PLAINTEXT connection (tests, the local broker)."""
    return given if isinstance(given, KafkaConnection) else KafkaConnection(given)


def faststream_security(
    options: Mapping[str, Any],
) -> tuple[BaseSecurity | None, AbstractTokenProvider | None]:
    """The same options as faststream's `KafkaBroker(security=..., sasl_oauth_token_provider=...)`:
    faststream 0.7 takes TLS and SASL only as a security object (and its OAUTHBEARER object
    carries no token provider: that is a broker argument of its own)."""
    protocol = options.get("security_protocol", "PLAINTEXT")
    context = options.get("ssl_context")
    tls = protocol in ("SSL", "SASL_SSL")
    if protocol == "PLAINTEXT":
        return None, None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True), None
    mechanism = options.get("sasl_mechanism")
    username = options.get("sasl_plain_username") or ""
    password = options.get("sasl_plain_password") or ""
    if mechanism == "PLAIN":
        return SASLPlaintext(username, password, ssl_context=context, use_ssl=tls), None
    if mechanism == "SCRAM-SHA-256":
        return SASLScram256(username, password, ssl_context=context, use_ssl=tls), None
    if mechanism == "SCRAM-SHA-512":
        return SASLScram512(username, password, ssl_context=context, use_ssl=tls), None
    if mechanism == "OAUTHBEARER":
        provider = options.get("sasl_oauth_token_provider")
        return SASLOAuthBearer(ssl_context=context, use_ssl=tls), provider
    raise ValueError(f"SASL mechanism {mechanism!r} is not supported")


async def probe(given: KafkaConnection | str) -> None:
    """Connect to a bootstrap server as the clients will (TLS handshake, ApiVersions,
    SASL), each step bounded by the connection's timeout. KafkaUnreachableError when no
    server takes a TCP connection (try again later); KafkaSettingsError when one does
    but refuses this client's TLS or SASL (fix the settings)."""
    conn = as_connection(given)
    unreachable: list[str] = []
    for host, port in conn.servers():
        where = f"{host}:{port}"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), conn.timeout_s)
        except (OSError, TimeoutError) as exc:
            unreachable.append(describe(exc, where, stage="connect", **conn.worded()))
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        try:
            client = await asyncio.wait_for(
                create_conn(
                    host, port, request_timeout_ms=int(conn.timeout_s * 1000), **conn.options
                ),
                conn.timeout_s,
            )
        except Exception as exc:  # every failure here is worded, none is a traceback
            raise KafkaSettingsError(describe(exc, where, **conn.worded())) from exc
        client.close()
        return
    raise KafkaUnreachableError("; ".join(unreachable) or f"no server in {conn.bootstrap!r}")
