"""PostgreSQL over TLS: libpq's URL parameters made into what asyncpg takes.

Migrations run on psycopg, which hands `sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
`sslpassword` and `sslcrl` to libpq as they are. The service runs on asyncpg, and
SQLAlchemy passes every query parameter to asyncpg's `connect()` as a keyword, where none
of these exists (a TypeError at the first connection): asyncpg takes one `ssl` argument.
So they are taken out of the URL and made into the `ssl.SSLContext` libpq would use, and
one DATABASE_URL means the same to both drivers:

| sslmode | encrypted | chain checked against sslrootcert | host name checked |
|---|---|---|---|
| disable | no | | |
| allow, prefer | if the server offers it (asyncpg's own handling) | no | no |
| require | yes | only when sslrootcert is given (libpq's rule) | no |
| verify-ca | yes | yes | no |
| verify-full | yes | yes | yes |

`sslrootcert=system` trusts the system's CAs; without sslrootcert the verifying modes
read libpq's default, `~/.postgresql/root.crt`. With allow or prefer asyncpg's own
fallback is kept, which reads certificate files only from libpq's environment variables
(PGSSLCERT, ...): a client certificate in the URL wants `require` or stronger.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.settings import ConfigFileError

LIBPQ_TLS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl")
MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq's own name for what SQLAlchemy's asyncpg documentation spells `?ssl=require`
ALIASES = {"ssl": "sslmode"}


class DatabaseTlsError(ConfigFileError):
    """TLS to the database does not work as DATABASE_URL asks: fix its sslmode, its CA
    file (sslrootcert) or its client certificate, or the server's certificate."""


@dataclass(frozen=True)
class TlsParams:
    """The TLS parameters of a PostgreSQL URL, libpq's names without the `ssl` prefix."""

    mode: str
    rootcert: str | None = None
    cert: str | None = None
    key: str | None = None
    password: str | None = None
    crl: str | None = None


def _one(value: str | tuple[str, ...] | None) -> str | None:
    if isinstance(value, tuple):  # a parameter given twice: libpq takes the last
        return value[-1] if value else None
    return value


def tls_params(query: Mapping[str, str | tuple[str, ...]]) -> TlsParams | None:
    """The TLS parameters of a URL's query; None when it names no sslmode (the drivers'
    default, prefer, then applies)."""
    given = {ALIASES.get(k, k): _one(v) for k, v in query.items()}
    # any other (sslnegotiation, sslsni, ...) would reach asyncpg's connect() as an
    # unknown keyword: said now, in one line, instead of at the first connection
    unknown = sorted(k for k in given if k.startswith("ssl") and k not in LIBPQ_TLS)
    if unknown:
        raise DatabaseTlsError(
            f"DATABASE_URL: {', '.join(unknown)}: not supported (the service reads "
            f"{', '.join(LIBPQ_TLS)})"
        )
    mode = given.get("sslmode")
    if mode is None:
        if any(given.get(k) for k in LIBPQ_TLS):
            mode = "prefer"  # libpq's default mode, whatever else is given
        else:
            return None
    if mode not in MODES:
        raise DatabaseTlsError(f"DATABASE_URL: sslmode={mode}: not one of {', '.join(MODES)}")
    return TlsParams(
        mode=mode,
        rootcert=given.get("sslrootcert"),
        cert=given.get("sslcert"),
        key=given.get("sslkey"),
        password=given.get("sslpassword"),
        crl=given.get("sslcrl"),
    )


def asyncpg_ssl(params: TlsParams) -> ssl.SSLContext | str | bool:
    """asyncpg's `ssl` argument for these parameters, as libpq would connect (the table
    above). Reads the certificate files named; one that cannot be used is one line."""
    if params.mode == "disable":
        return False
    if params.mode in ("allow", "prefer"):
        return params.mode  # asyncpg falls back to plain text itself, as libpq does
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = params.mode == "verify-full"
    root = params.rootcert
    if root is None and params.mode != "require":
        root = str(Path.home() / ".postgresql" / "root.crt")
    if root is None:
        context.verify_mode = ssl.CERT_NONE  # require: encrypted, anyone's certificate
    else:
        context.verify_mode = ssl.CERT_REQUIRED
        if root == "system":
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            with _reading("sslrootcert", root):
                context.load_verify_locations(cafile=root)
    if params.crl:
        with _reading("sslcrl", params.crl):
            context.load_verify_locations(cafile=params.crl)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if params.cert:
        password = params.password or ""
        with _reading("sslcert", params.cert):
            context.load_cert_chain(params.cert, keyfile=params.key, password=lambda: password)
    return context


@contextmanager
def _reading(name: str, path: str) -> Iterator[None]:
    """A certificate file that cannot be read or is no PEM: one line naming it."""
    try:
        yield
    except OSError as exc:  # FileNotFoundError, PermissionError, ssl.SSLError
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise DatabaseTlsError(f"DATABASE_URL {name}={path}: {reason}") from None


def tls_failure(exc: BaseException) -> str | None:
    """The one-line reason when a failed connection is TLS's doing (a certificate that
    does not verify, a server without TLS), else None: the error is then not about the
    URL's TLS settings, and stays as it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            return f"TLS error: {current.reason or current}"
        text = str(current)
        for line in text.splitlines():
            if "certificate verify failed" in line or "SSL" in line:
                return line.strip()
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None
