"""From funops.yaml's `acme:` settings to what the protocol side takes: an issuer's `IssuerConfig`
and a DNS server's `Dns01Config`, their secrets (EAB HMAC key, TSIG secret) read from the file or
environment variable their SecretRef names. A missing issuer, file or variable is an error naming
funops.yaml's line and field; the secret's value never appears in it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, Problem
from . import Dns01Config, IssuerConfig

if TYPE_CHECKING:
    from ..load.project import Project
    from ..model.common import SecretRef

SETTINGS_FILE = "funops.yaml"


def issuer_config(project: Project, name: str) -> IssuerConfig:
    issuers = project.settings.acme.issuers
    if name not in issuers:
        known = ", ".join(sorted(issuers)) or "none"
        raise _problem(project, ("acme", "issuers"), f"no ACME issuer {name!r} (issuers: {known})")
    issuer = issuers[name]
    base = ("acme", "issuers", name)
    hmac_key = secret_value(project, issuer.eab.hmac_key, (*base, "eab", "hmacKey")) if issuer.eab else None
    return IssuerConfig(
        name=name,
        directory=issuer.directory,
        email=issuer.email,
        eab_kid=issuer.eab.kid if issuer.eab else None,
        eab_hmac_key=hmac_key,
        ca_bundle=project.root / issuer.ca_bundle if issuer.ca_bundle else None,
    )


def dns_config(project: Project, name: str) -> Dns01Config:
    servers = project.settings.acme.dns
    if name not in servers:
        known = ", ".join(sorted(servers)) or "none"
        raise _problem(project, ("acme", "dns"), f"no DNS server {name!r} for dns-01 (dns: {known})")
    dns = servers[name]
    zone = dns.zone if dns.zone.endswith(".") else f"{dns.zone}."
    return Dns01Config(
        server=dns.server,
        port=dns.port,
        zone=zone,
        tsig_key_name=dns.tsig_key_name,
        tsig_algorithm=dns.tsig_algorithm,
        tsig_secret=secret_value(project, dns.tsig_secret, ("acme", "dns", name, "tsigSecret")),
        propagation_seconds=dns.propagation_seconds,
    )


def secret_value(project: Project, ref: SecretRef, field: tuple[str, ...]) -> str:
    """The value `ref` names, read where funops runs (a saved plan's orders hold only the reference)."""
    from ..load.source import read_secret_file

    if ref.from_env is not None:
        value = os.environ.get(ref.from_env)
        if value is None:
            raise _problem(project, (*field, "fromEnv"), f"environment variable {ref.from_env} is not set")
        return value.strip()
    written = Path(ref.from_file or "")
    file = written if written.is_absolute() else project.root / written
    try:
        return read_secret_file(file).strip()
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _problem(project, (*field, "fromFile"), f"cannot read secret file {written}: {why}") from None


def _problem(project: Project, field: tuple[str, ...], message: str) -> InputError:
    origin = project.settings_origin
    if origin is not None:
        return InputError([origin.problem(field, message)])
    return InputError([Problem(SETTINGS_FILE, None, ".".join(field), message)])
