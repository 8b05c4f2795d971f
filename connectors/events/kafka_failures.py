"""Why a Kafka connection failed, in one line an operator can act on.

Pure: an exception and what was tried in, a sentence out. aiokafka's clients log the
cause and raise only "Unable to bootstrap"; `kafka_security.probe()` connects itself,
so the cause (a certificate, a password, a port speaking another protocol) reaches here.
"""

from __future__ import annotations

import socket
import ssl
from typing import Literal

from aiokafka import errors

Stage = Literal["connect", "session"]  # the TCP connection; TLS + ApiVersions + SASL


class KafkaUnreachableError(ConnectionError):
    """No bootstrap server took a TCP connection: try again later (or fix the address)."""


class KafkaSettingsError(ConnectionError):
    """A broker answered but refused this client's TLS or SASL settings: fix the settings;
    trying again does not help."""


class TokenUnavailableError(RuntimeError):
    """No OAuth token could be had: fix the token file or command."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _unreachable(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unreachable: the host name does not resolve ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "unreachable: connection refused (nothing listens there)"
    if isinstance(exc, TimeoutError):
        return f"unreachable: no TCP connection within {timeout_s:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return f"unreachable: {exc.strerror}"
    return f"unreachable: {_first_line(exc)}"


def _tls(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or _first_line(exc)
        return (
            f"TLS certificate verification failed ({why}): "
            "check ssl_cafile (and ssl_check_hostname)"
        )
    reason = exc.reason or _first_line(exc)
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return f"TLS handshake failed ({reason}): the port does not speak TLS?"
    if "CERTIFICATE_REQUIRED" in reason or "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
        return (
            f"TLS handshake failed ({reason}): the broker wants a client certificate "
            "it trusts (ssl_certfile, ssl_keyfile)"
        )
    return f"TLS handshake failed ({reason})"


def _session(exc: BaseException, protocol: str, mechanism: str | None, timeout_s: float) -> str:
    tls = protocol in ("SSL", "SASL_SSL")
    sasl = protocol.startswith("SASL_")
    if isinstance(exc, ssl.SSLError):
        return _tls(exc)
    if isinstance(exc, TimeoutError):
        if tls:
            return (
                f"no TLS handshake and Kafka answer within {timeout_s:g} s: "
                f"a plaintext port? (security_protocol={protocol})"
            )
        return f"no Kafka answer within {timeout_s:g} s: a TLS port? (security_protocol={protocol})"
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        return f"the broker does not offer SASL {mechanism}: {_first_line(exc)}"
    name = type(exc).__name__
    if isinstance(exc, errors.SaslAuthenticationFailed | errors.AuthenticationFailedError) or (
        "authentic" in name.lower() or "authentication" in str(exc).lower()
    ):
        return f"SASL {mechanism} authentication failed: check sasl_username and sasl_password"
    if sasl and isinstance(exc, KeyError | ValueError) and mechanism and "SCRAM" in mechanism:
        # aiokafka's SCRAM reads the server's final message without looking for the
        # error it carries on a wrong password ("e=..."): a missing "v" is that error.
        return f"SASL {mechanism} authentication failed: check sasl_username and sasl_password"
    if isinstance(exc, TokenUnavailableError):
        return f"no OAUTHBEARER token: {_first_line(exc)}"
    if isinstance(exc, errors.KafkaConnectionError | ConnectionError | EOFError):
        if sasl:
            return (
                f"the broker closed the connection during SASL {mechanism}: a mechanism it "
                f"does not offer, or credentials it refused ({_first_line(exc)})"
            )
        if tls:
            return (
                "the connection was closed after TLS: a client certificate missing or "
                f"refused, or the listener expects another protocol ({_first_line(exc)})"
            )
        return (
            "the broker closed the connection: does the port expect TLS or SASL? "
            f"(security_protocol={protocol})"
        )
    return f"{name}: {_first_line(exc)}"


def describe(
    exc: BaseException,
    where: str,
    *,
    protocol: str = "PLAINTEXT",
    mechanism: str | None = None,
    timeout_s: float = 10.0,
    stage: Stage = "session",
) -> str:
    """`Kafka at host:port: <what failed and what to check>`, one line."""
    if stage == "connect":
        reason = _unreachable(exc, timeout_s)
    else:
        reason = _session(exc, protocol, mechanism, timeout_s)
    return f"Kafka at {where}: {reason}"
