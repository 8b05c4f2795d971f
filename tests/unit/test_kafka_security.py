"""Kafka TLS and SASL: settings refused with what to set, settings turned into aiokafka's
and faststream's arguments for each mechanism, OAuth tokens read fresh, and every kind of
connection failure worded in one line."""

from __future__ import annotations

import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import errors
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLOAuthBearer, SASLPlaintext, SASLScram512
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from connectors.events.kafka_failures import TokenUnavailableError, describe
from connectors.events.kafka_security import (
    CommandTokenProvider,
    FileTokenProvider,
    KafkaConnection,
    client_options,
    faststream_security,
)
from service.cli.main import app
from service.settings import KafkaSettings, Settings


def kafka(**given: Any) -> KafkaSettings:
    return KafkaSettings(_env_file=None, **given)  # type: ignore[call-arg]


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"security_protocol": "SASL_SSL"}, "SASL_SSL needs sasl_mechanism"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"},
            "PLAIN needs sasl_username and sasl_password",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"},
            "SCRAM-SHA-256 needs sasl_username and sasl_password",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"},
            "OAUTHBEARER needs sasl_oauth_token_file or sasl_oauth_token_command",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_file": "/t",
                "sasl_oauth_token_command": "x",
            },
            "not both",
        ),
        ({"sasl_mechanism": "PLAIN"}, "needs security_protocol SASL_SSL or SASL_PLAINTEXT"),
        (
            {"security_protocol": "SSL", "ssl_certfile": "c.pem"},
            "both ssl_certfile and ssl_keyfile",
        ),
        ({"security_protocol": "SSL", "ssl_keyfile": "k.pem"}, "both ssl_certfile and ssl_keyfile"),
        ({"ssl_cafile": "ca.pem"}, "security_protocol is PLAINTEXT: use SSL or SASL_SSL"),
        (
            {"security_protocol": "SSL", "ssl_keyfile_password": "p"},
            "ssl_keyfile_password is set without ssl_keyfile",
        ),
    ],
)
def test_combinations_that_cannot_connect_are_refused(given: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        kafka(**given)


def test_settings_come_from_the_environment_and_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text("from-a-file\n")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SSL_CHECK_HOSTNAME", "false")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "from-a-file"
    assert settings.kafka.ssl_check_hostname is False
    shown = settings.effective()["kafka"]
    assert "from-a-file" not in str(shown)
    assert shown["sasl_password"] == "**********"


def test_config_command_masks_the_kafka_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SASL_USERNAME", "api-key")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SASL_PASSWORD", "very-secret-api-secret")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SSL_KEYFILE_PASSWORD", "key-secret")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SSL_CERTFILE", "c.pem")
    monkeypatch.setenv("UCAAS_SYNC_KAFKA_SSL_KEYFILE", "k.pem")
    done = CliRunner().invoke(app, ["config"])
    assert done.exit_code == 0, done.output
    assert "very-secret-api-secret" not in done.output
    assert "key-secret" not in done.output
    assert "api-key" in done.output


# -- options -------------------------------------------------------------------------------
def test_plaintext_is_just_the_protocol() -> None:
    assert client_options(kafka()) == {"security_protocol": "PLAINTEXT"}
    assert faststream_security(client_options(kafka())) == (None, None)


def test_tls_gets_a_context_with_the_ca_and_host_checking(tmp_path: Path) -> None:
    options = client_options(kafka(security_protocol="SSL"))
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    unchecked = client_options(kafka(security_protocol="SSL", ssl_check_hostname=False))
    assert not unchecked["ssl_context"].check_hostname
    security, provider = faststream_security(options)
    assert type(security) is BaseSecurity
    assert security.use_ssl
    assert security.ssl_context is context
    assert provider is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_password_mechanisms(mechanism: str, protocol: str) -> None:
    options = client_options(
        kafka(
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username="svc",
            sasl_password=SecretStr("pw"),
        )
    )
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "svc"
    assert options["sasl_plain_password"] == "pw"
    assert ("ssl_context" in options) == (protocol == "SASL_SSL")
    security, _ = faststream_security(options)
    assert security is not None
    assert security.use_ssl == (protocol == "SASL_SSL")
    if mechanism == "PLAIN":
        assert isinstance(security, SASLPlaintext)
    if mechanism == "SCRAM-SHA-512":
        assert isinstance(security, SASLScram512)
    # faststream turns it back into the same aiokafka arguments

    parsed = parse_security(security)
    assert parsed["sasl_mechanism"] == mechanism
    assert parsed["sasl_plain_password"] == "pw"
    assert parsed["security_protocol"] == protocol


async def test_oauthbearer_from_a_file_is_read_for_every_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    options = client_options(
        kafka(
            security_protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauth_token_file=token,
        )
    )
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, FileTokenProvider)
    assert await provider.token() == "first"
    token.write_text("rotated")  # as the kubelet replaces a projected token
    assert await provider.token() == "rotated"
    security, given = faststream_security(options)
    assert isinstance(security, SASLOAuthBearer)
    assert given is provider
    token.unlink()
    with pytest.raises(TokenUnavailableError, match="token file"):
        await provider.token()


async def test_oauthbearer_from_a_command(tmp_path: Path) -> None:
    script = tmp_path / "token.py"
    script.write_text("print('tok-from-command')\n")
    options = client_options(
        kafka(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="OAUTHBEARER",
            sasl_oauth_token_command=f"{sys.executable} {script}",
        )
    )
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, CommandTokenProvider)
    assert await provider.token() == "tok-from-command"
    failing = CommandTokenProvider(f"{sys.executable} -c 'import sys; sys.exit(\"no login\")'")
    with pytest.raises(TokenUnavailableError, match="exited with 1: no login"):
        await failing.token()
    with pytest.raises(TokenUnavailableError, match="token command"):
        await CommandTokenProvider("/nonexistent/helper").token()


def test_bootstrap_servers_are_split() -> None:
    conn = KafkaConnection("a:9093, b:9094,[::1]:9095,c")
    assert conn.servers() == [("a", 9093), ("b", 9094), ("::1", 9095), ("c", 9092)]
    assert conn.client_kwargs() == {"bootstrap_servers": "a:9093, b:9094,[::1]:9095,c"}


# -- failures in one line ------------------------------------------------------------------
def verify_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "unable to get local issuer certificate"
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    return exc


def ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


@pytest.mark.parametrize(
    ("exc", "context", "said"),
    [
        (
            verify_error(),
            {"protocol": "SSL"},
            "TLS certificate verification failed (unable to get local issuer certificate)",
        ),
        (
            ssl_error("WRONG_VERSION_NUMBER"),
            {"protocol": "SSL"},
            "TLS handshake failed (WRONG_VERSION_NUMBER): the port does not speak TLS?",
        ),
        (
            ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED"),
            {"protocol": "SSL"},
            "the broker wants a client certificate",
        ),
        (TimeoutError(), {"protocol": "SSL"}, "no TLS handshake and Kafka answer within 2 s"),
        (TimeoutError(), {"protocol": "PLAINTEXT"}, "no Kafka answer within 2 s: a TLS port?"),
        (
            errors.KafkaConnectionError("Connection at h:1 closed"),
            {"protocol": "PLAINTEXT"},
            "the broker closed the connection: does the port expect TLS or SASL?",
        ),
        (
            errors.KafkaConnectionError("Connection at h:1 closed"),
            {"protocol": "SASL_PLAINTEXT", "mechanism": "PLAIN"},
            "closed the connection during SASL PLAIN: a mechanism it does not offer",
        ),
        (
            errors.SaslAuthenticationFailed(),
            {"protocol": "SASL_SSL", "mechanism": "PLAIN"},
            "SASL PLAIN authentication failed: check sasl_username and sasl_password",
        ),
        (
            KeyError("v"),
            {"protocol": "SASL_PLAINTEXT", "mechanism": "SCRAM-SHA-256"},
            "SASL SCRAM-SHA-256 authentication failed",
        ),
        (
            errors.UnsupportedSaslMechanismError("Enabled mechanisms are: ['PLAIN']"),
            {"protocol": "SASL_SSL", "mechanism": "SCRAM-SHA-512"},
            "the broker does not offer SASL SCRAM-SHA-512",
        ),
        (
            TokenUnavailableError("token file /t: No such file or directory"),
            {"protocol": "SASL_SSL", "mechanism": "OAUTHBEARER"},
            "no OAUTHBEARER token: token file /t",
        ),
        (RuntimeError("odd\nsecond line"), {}, "RuntimeError: odd"),
    ],
)
def test_a_refused_session_is_worded(
    exc: BaseException, context: dict[str, Any], said: str
) -> None:
    line = describe(exc, "kafka.example:9093", timeout_s=2.0, **context)
    assert line.startswith("Kafka at kafka.example:9093: ")
    assert said in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "unreachable: connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "does not resolve"),
        (TimeoutError(), "unreachable: no TCP connection within 2 s"),
        (OSError(113, "No route to host"), "unreachable: No route to host"),
    ],
)
def test_an_unreachable_broker_is_worded(exc: BaseException, said: str) -> None:
    line = describe(exc, "h:9092", timeout_s=2.0, stage="connect")
    assert line == f"Kafka at h:9092: {line.split(': ', 1)[1]}"
    assert said in line
