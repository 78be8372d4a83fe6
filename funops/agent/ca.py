"""The operator CA for the agent's optional mTLS (controller side; `funops agent ca init|issue`).

The CA's certificate is committed (`agent_client_ca.pem` beside agent_known_hosts): every operator's
`agent install` then ships the same one, so an install from another checkout never drops mTLS from a
node. Its key stays on the machine that made it (`.funops/agent/ca/ca.key`, 0600, not in git) and
never goes to a node. Client certificates are short-lived (90 days by default): the CA keeps no
revocation list, so expiry (or a new CA plus `agent install`) is how one stops working.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import FunopsError
from ..private_file import write_private

CA_CERT = "agent_client_ca.pem"  # in the repo, committed: what `agent install` ships to nodes
CA_KEY = Path(".funops/agent/ca/ca.key")
CLIENT_CERT = Path(".funops/agent/client.crt")  # this operator's; the transport presents it if present
CLIENT_KEY = Path(".funops/agent/client.key")
ISSUED = Path(".funops/agent/clients")  # `ca issue NAME`: for another operator or CI, to hand over
CA_DAYS = 3650
CLIENT_DAYS = 90
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Issued:
    name: str
    cert: Path
    key: Path
    not_after: dt.datetime


def ca_cert_path(repo_root: Path) -> Path:
    return repo_root / CA_CERT


def init(repo_root: Path, operator: str, days: int = CLIENT_DAYS, force: bool = False) -> Issued:
    """A new operator CA (EC P-256, self-signed) and this operator's client certificate from it. An
    existing CA is kept unless `force`: a new one invalidates every client certificate of the old."""
    _check(operator, days)  # before a CA is made: a bad name leaves nothing half done
    cert_path, key_path = ca_cert_path(repo_root), repo_root / CA_KEY
    if not force and (cert_path.exists() or key_path.exists()):
        raise FunopsError(
            f"an operator CA exists already ({cert_path}): `funops agent ca issue NAME` makes client "
            "certificates from it; --force makes a new CA (every client certificate of the old one "
            "stops working once `funops agent install` ships the new one)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"funops operator CA {repo_root.name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        _builder(name, name, key.public_key(), now, now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return _issue(repo_root, operator, days, repo_root / CLIENT_CERT, repo_root / CLIENT_KEY)


def issue(repo_root: Path, name: str, days: int = CLIENT_DAYS) -> Issued:
    """A client certificate for NAME (another operator, a CI runner) from this repo's CA."""
    out = repo_root / ISSUED
    return _issue(repo_root, name, days, out / f"{name}.crt", out / f"{name}.key")


def certificate_to_ship(repo_root: Path) -> bytes | None:
    """The CA certificate `agent install` puts on nodes, checked to be a CA certificate and nothing
    more (never a key); None when the repo has no CA (token authentication only)."""
    path = ca_cert_path(repo_root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if b"PRIVATE KEY" in data:
        raise FunopsError(f"{path}: holds a private key: only the CA's certificate may be shipped to nodes")
    try:
        certs = x509.load_pem_x509_certificates(data)
        constraints = certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise FunopsError(f"{path}: not an operator CA certificate: {exc}") from exc
    if len(certs) != 1 or not constraints.ca:
        raise FunopsError(f"{path}: one CA certificate expected (basicConstraints CA:TRUE)")
    return data


def _check(name: str, days: int) -> None:
    if not NAME.match(name):
        raise FunopsError(f"client name {name!r}: letters, digits and '._@-' expected (at most 64)")
    if not 1 <= days <= CA_DAYS:
        raise FunopsError(f"--days {days}: 1 to {CA_DAYS} expected")


def _issue(repo_root: Path, name: str, days: int, cert_path: Path, key_path: Path) -> Issued:
    _check(name, days)
    ca_key, ca_cert = _load_ca(repo_root)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # clientAuth only: the agent verifies for that purpose, and it cannot serve as a server's cert.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(name, cert_path, key_path, not_after)


def _load_ca(repo_root: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert_path, key_path = ca_cert_path(repo_root), repo_root / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise FunopsError(
            f"no operator CA here ({exc.filename} missing): `funops agent ca init` makes one; client "
            "certificates are issued where the CA's key is"
        ) from exc
    except ValueError as exc:
        raise FunopsError(f"the operator CA ({cert_path}, {key_path}) cannot be read: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise FunopsError(f"{key_path}: not the key of the CA certificate {cert_path}")
    return key, cert


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # a node's clock a little behind still accepts
        .not_valid_after(not_after)
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
