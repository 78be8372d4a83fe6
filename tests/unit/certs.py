"""Helpers of the certificate tests: certificates made here (a throwaway CA), and the example repo
with a Certificate served by an ingress on two edge nodes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SETTINGS = """
acme:
  issuers:
    pebble:
      directory: https://127.0.0.1:14000/dir
      email: ops@shop.test
"""

MANIFESTS = """\
apiVersion: funops/v1
kind: Certificate
metadata:
  name: shop
spec:
  domains: [shop.test, www.shop.test]
  issuer: pebble
  renewBefore: {renew_before}
---
apiVersion: funops/v1
kind: Ingress
metadata:
  name: shop
spec:
  selector: {{nodes: [node1, node2]}}
  domains: [shop.test, www.shop.test]
  tls: {{certificateRef: shop}}
  rules:
    - {{path: /, service: web}}
"""


def with_certificate(repo: Path, renew_before: str = "30d") -> Path:
    with (repo / "funops.yaml").open("a") as f:
        f.write(SETTINGS)
    (repo / "manifests" / "shop.yaml").write_text(MANIFESTS.format(renew_before=renew_before))
    return repo


def make_certificate(
    domains: list[str], days: float = 90, serial: int | None = None
) -> tuple[bytes, bytes, str]:
    """(key PEM, fullchain PEM, serial hex) of a leaf signed by a throwaway CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "funops test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    number = serial or x509.random_serial_number()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(number)
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    return key_pem, chain, f"{number:x}"


def place(repo: Path, node: str, name: str, key: bytes, chain: bytes, serial: str) -> None:
    """A certificate version on a local node, made current (as apply leaves it)."""
    base = repo / ".funops" / "nodes" / node / "etc" / "funops" / "certs" / name
    (base / serial).mkdir(parents=True, exist_ok=True)
    (base / serial / "fullchain.pem").write_bytes(chain)
    (base / serial / "privkey.pem").write_bytes(key)
    link = base / "current"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(serial)
