"""A test certificate authority and the certificates it signs, made with `cryptography`
(EC P-256 keys, SHA-256, valid from five minutes ago for a day).

`Authority.make(folder, label)` writes the CA's certificate to `folder/<label>.pem`;
`authority.issue(folder, label, ...)` writes a certificate it signs to `<label>.pem` and
its key to `<label>.key` (mode 0600), and with `chain=True` the certificate followed by
the CA's to `<label>-chain.pem`. A certificate with DNS names or IP addresses is a
server's (those names in its subjectAltName, serverAuth); one without is a client's
(clientAuth), named by its common name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    chain: Path | None = None  # the certificate, then the CA's


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    path.chmod(0o600)  # whatever the umask


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


@dataclass(frozen=True)
class Authority:
    """A certificate authority: its certificate's PEM file, the certificate, its key."""

    cert_file: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, folder: Path, label: str, *, common_name: str | None = None) -> Authority:
        """A self-signed CA named `common_name` (by default `label`), its certificate
        written to `folder/<label>.pem`."""
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name or label)
        cert = (
            _builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        cert_file = folder / f"{label}.pem"
        cert_file.write_bytes(_pem(cert))
        return cls(cert_file, cert, key)

    def pem(self) -> bytes:
        return _pem(self.cert)

    def issue(
        self,
        folder: Path,
        label: str,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        common_name: str | None = None,
        chain: bool = False,
    ) -> Issued:
        """A certificate signed here: a server's for `dns_names` and `ip_addresses` when
        any are given, else a client's. Its common name is `common_name`, by default the
        first DNS name, else `label`."""
        folder.mkdir(parents=True, exist_ok=True)
        server = bool(dns_names or ip_addresses)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(common_name or (dns_names[0] if dns_names else label))
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(subject, self.cert.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file, key_file = folder / f"{label}.pem", folder / f"{label}.key"
        cert_file.write_bytes(_pem(cert))
        _write_key(key_file, key)
        chain_file = None
        if chain:
            chain_file = folder / f"{label}-chain.pem"
            chain_file.write_bytes(_pem(cert) + self.pem())
        return Issued(cert_file, key_file, chain_file)
