"""libpq's TLS parameters in DATABASE_URL, made into asyncpg's `ssl` argument the way
libpq reads them (the private-server test in tests/integration/test_postgres_tls.py
proves the connections)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service.outbox import db
from service.outbox.tls import DatabaseTlsError, TlsParams, asyncpg_ssl, tls_params
from tests.support.certificates import Authority


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Authority.make(tmp_path_factory.mktemp("ca"), "unit-ca").cert_file


def test_a_url_without_sslmode_has_no_tls_parameters() -> None:
    assert tls_params({"application_name": "x"}) is None


def test_the_parameters_are_read_with_libpqs_names() -> None:
    found = tls_params(
        {"sslmode": "verify-full", "sslrootcert": "/ca.pem", "sslcert": "/c", "sslkey": "/k"}
    )
    assert found == TlsParams("verify-full", rootcert="/ca.pem", cert="/c", key="/k")
    assert tls_params({"ssl": "require"}) == TlsParams("require")  # asyncpg's spelling
    assert tls_params({"sslrootcert": "/ca.pem"}) == TlsParams("prefer", rootcert="/ca.pem")
    assert tls_params({"sslmode": ("disable", "require")}) == TlsParams("require")  # the last


def test_an_unknown_mode_or_parameter_is_one_line() -> None:
    with pytest.raises(DatabaseTlsError, match="sslmode=verify: not one of disable, allow"):
        tls_params({"sslmode": "verify"})
    with pytest.raises(DatabaseTlsError, match="sslsni: not supported"):
        tls_params({"sslmode": "require", "sslsni": "1"})


def test_verify_full_checks_chain_and_host(ca: Path) -> None:
    context = asyncpg_ssl(TlsParams("verify-full", rootcert=str(ca)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "unit-ca"),),)]


def test_verify_ca_checks_the_chain_only(ca: Path) -> None:
    context = asyncpg_ssl(TlsParams("verify-ca", rootcert=str(ca)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert not context.check_hostname


def test_require_encrypts_without_verifying_unless_given_a_ca(ca: Path) -> None:
    context = asyncpg_ssl(TlsParams("require"))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    # libpq's rule: with a root certificate, require verifies the chain (as verify-ca)
    with_ca = asyncpg_ssl(TlsParams("require", rootcert=str(ca)))
    assert isinstance(with_ca, ssl.SSLContext)
    assert with_ca.verify_mode == ssl.CERT_REQUIRED
    assert not with_ca.check_hostname


def test_disable_and_the_advisory_modes() -> None:
    assert asyncpg_ssl(TlsParams("disable")) is False
    assert asyncpg_ssl(TlsParams("prefer")) == "prefer"  # asyncpg's own fallback
    assert asyncpg_ssl(TlsParams("allow")) == "allow"


def test_the_system_store(monkeypatch: pytest.MonkeyPatch) -> None:
    context = asyncpg_ssl(TlsParams("verify-full", rootcert="system"))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_a_client_certificate_is_loaded(ca: Path, tmp_path: Path) -> None:
    client = Authority.make(tmp_path, "client-ca").issue(tmp_path, "client")
    params = TlsParams("verify-full", rootcert=str(ca), cert=str(client.cert), key=str(client.key))
    context = asyncpg_ssl(params)
    assert isinstance(context, ssl.SSLContext)


def test_unusable_files_are_one_line_naming_the_parameter(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt
    with pytest.raises(DatabaseTlsError, match=r"sslrootcert=.*nowhere\.pem: No such file"):
        asyncpg_ssl(TlsParams("verify-full", rootcert=str(tmp_path / "nowhere.pem")))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(DatabaseTlsError, match=r"sslcert=.*junk\.pem"):
        asyncpg_ssl(TlsParams("verify-full", rootcert=str(ca), cert=str(junk), key=str(junk)))
    with pytest.raises(DatabaseTlsError, match=r"verify-full.*root\.crt|sslrootcert="):
        asyncpg_ssl(TlsParams("verify-full"))  # libpq's default file, absent here


def test_the_migrations_get_libpqs_parameters_as_they_are() -> None:
    url = "postgresql+asyncpg://u@h/d?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c&sslkey=/k"
    migrations = make_url(db.sync_url(url))
    assert migrations.drivername == "postgresql+psycopg"
    assert dict(migrations.query) == {
        "sslmode": "verify-full",
        "sslrootcert": "/ca.pem",
        "sslcert": "/c",
        "sslkey": "/k",
    }
    aliased = make_url(db.sync_url("postgresql+asyncpg://u@h/d?ssl=require"))
    assert dict(aliased.query) == {"sslmode": "require"}


def test_the_service_engine_takes_them_out_of_the_url(ca: Path) -> None:
    engine = db.make_engine(
        f"postgresql+asyncpg://u@h/d?sslmode=verify-full&sslrootcert={ca}&application_name=a"
    )
    assert dict(engine.url.query) == {}
