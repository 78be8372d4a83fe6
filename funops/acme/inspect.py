"""What a certificate says about itself (serial, names, validity, issuer), read from its PEM.

The gather brings each node's current certificate (public) to the controller; this is how plan,
drift and `funops certs` read it. Never given a key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtensionOID


@dataclass(frozen=True)
class CertificateInfo:
    serial: str  # lowercase hex, no colons
    domains: tuple[str, ...]  # the subjectAltName DNS names, in the certificate's order
    not_before: dt.datetime
    not_after: dt.datetime
    issuer: str  # RFC 4514

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.UTC)
        return (self.not_after - now).total_seconds() / 86400


def describe(pem: bytes) -> CertificateInfo:
    """The leaf (first) certificate of a PEM chain. Raises ValueError on anything else."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        domains = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        domains = ()
    return CertificateInfo(
        serial=f"{cert.serial_number:x}",
        domains=domains,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        issuer=cert.issuer.rfc4514_string(),
    )
