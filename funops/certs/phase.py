"""The ACME phase of apply: before any node is touched (the nodes locked), each Certificate the plan
issues, renews or reissues is ordered from its CA — HTTP-01 tokens on every edge node of it — and a
certificate to deploy to mismatched nodes is read from a node serving it. Key and certificate then
become the content of the certificate's resources, which the rollout writes like any other.

A failure (the CA's error, a challenge refused, a node that cannot take the tokens) names the
certificate, domain, challenge and the CA's problem, and stops the apply before the rollout: every
node keeps serving its old certificate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..certificates import Edge, edges
from ..errors import FunopsError
from ..gather.contents import fetch
from ..ids import ResourceId
from ..kinds.cert import SERIAL, cert_dir
from ..plan.certorders import bind
from ..transports import Transport, TransportError
from .presenter import NodesPresenter

if TYPE_CHECKING:
    from ..acme import Http01Presenter, IssuedCertificate
    from ..certificates import Decision
    from ..load.project import Project
    from ..plan.planner import Plan

Emit = Callable[[dict[str, Any]], None]
# (project, decision, presenter or None for dns-01) → the issued certificate; raises on failure.
Order = Callable[["Project", "Decision", "Http01Presenter | None"], "IssuedCertificate"]
KEY_LIMIT = 64 * 1024  # a certificate chain or key read back from a node (deploy) is far smaller


class CertificateFailed(FunopsError):
    """An order or a copy that failed: the apply stops before the rollout (exit 3)."""


def acme_order(project: Project, decision: Decision, presenter: Http01Presenter | None) -> IssuedCertificate:
    """The real order: funops/acme/client.py with the issuer's account key."""
    from ..acme import CertificateRequest
    from ..acme.account import load_key
    from ..acme.client import issue
    from ..acme.config import dns_config, issuer_config

    cert = project.certificates[decision.name].spec
    issuer = issuer_config(project, cert.issuer)
    env = project.settings.acme.issuers[cert.issuer].account_key_from_env
    account_key, _ = load_key(project.root, cert.issuer, env)
    request = CertificateRequest(
        name=decision.name,
        domains=tuple(cert.domains),
        key_type=cert.key_type,
        challenge=cert.challenge,
        dns=dns_config(project, cert.dns) if cert.dns else None,
    )
    return issue(issuer, account_key, request, presenter if cert.challenge == "http-01" else None)


def saved_order(orders: dict[str, dict[str, Any]]) -> Order:
    """The order of a saved plan: its parameters from the file, the secrets they reference (account
    key, EAB key, TSIG secret) read where apply runs, the CA bundle written to a private temp file."""

    def run(project: Project, decision: Decision, presenter: Http01Presenter | None) -> IssuedCertificate:
        import tempfile
        from pathlib import Path

        from ..acme import CertificateRequest, Dns01Config, IssuerConfig
        from ..acme.account import load_key
        from ..acme.client import issue
        from ..acme.config import secret_value
        from ..model.common import SecretRef

        o = orders[decision.name]
        i, d = o["issuer"], o["dns"]
        account_key, _ = load_key(project.root, i["name"], i.get("accountKeyFromEnv"))
        eab = i.get("eab")
        with tempfile.TemporaryDirectory(prefix="funops-acme-") as tmp:
            bundle = None
            if i.get("caBundle"):
                bundle = Path(tmp) / "ca.pem"
                bundle.write_text(i["caBundle"], encoding="ascii")
            issuer = IssuerConfig(
                name=i["name"], directory=i["url"], email=i.get("email"),
                eab_kid=eab["kid"] if eab else None,
                eab_hmac_key=secret_value(project, SecretRef.model_validate(eab["hmacKey"]),
                                          ("acme", "issuers", i["name"], "eab", "hmacKey")) if eab else None,
                ca_bundle=bundle,
            )  # fmt: skip
            dns = None
            if d is not None:
                zone = d["zone"] if d["zone"].endswith(".") else f"{d['zone']}."
                dns = Dns01Config(
                    server=d["server"], port=int(d["port"]), zone=zone, tsig_key_name=d["tsigKeyName"],
                    tsig_algorithm=d["tsigAlgorithm"],
                    tsig_secret=secret_value(project, SecretRef.model_validate(d["tsigSecret"]),
                                             ("acme", "dns", d["name"], "tsigSecret")),
                    propagation_seconds=float(d["propagationSeconds"]),
                )  # fmt: skip
            request = CertificateRequest(
                name=decision.name, domains=tuple(o["domains"]), key_type=o["keyType"],
                challenge=o["challenge"], dns=dns,
            )  # fmt: skip
            return issue(issuer, account_key, request, presenter if o["challenge"] == "http-01" else None)

    return run


def obtain(plan: Plan, connect: Callable[[str], Transport], emit: Emit, order: Order | None = None) -> None:
    """Give every certificate resource the plan changes its key and certificate (in memory only)."""
    saved = plan.program.orders  # a saved plan run without the repo (plan/certorders.py)
    order = order or (saved_order(saved) if saved is not None else acme_order)
    for decision in plan.certificates:
        if decision.action not in ("issue", "renew", "reissue", "deploy"):
            continue
        emit({"event": "certificate-start", "certificate": decision.name, "action": decision.action,
              "reason": decision.reason})  # fmt: skip
        if decision.action == "deploy":
            serial, bundle = _copy_from(decision, connect)
        else:
            found = (
                [Edge(**e) for e in saved[decision.name]["edges"]]
                if saved is not None
                else edges(plan.project, plan.gathered, decision.name)
            )
            presenter = NodesPresenter(decision.name, tuple(decision.domains), found, connect, emit)
            try:
                issued = order(plan.project, decision, presenter)
            except FunopsError as exc:
                raise CertificateFailed(f"certificate {decision.name}: {exc}") from exc
            except Exception as exc:  # the CA's errors (AcmeError), a broken connection to it
                raise CertificateFailed(f"certificate {decision.name}: {_shown(exc)}") from exc
            serial, bundle = issued.serial, issued.key_pem + issued.fullchain_pem
        if not SERIAL.fullmatch(serial):
            raise CertificateFailed(f"certificate {decision.name}: the CA's serial {serial!r} is not hex")
        if saved is not None:
            bind(plan.program, saved[decision.name]["placeholder"], serial, bundle)
        else:
            _materialize(plan, decision.name, serial, bundle)
        decision.serial = serial  # what the journal records
        emit({"event": "certificate-done", "certificate": decision.name, "serial": serial})


def _shown(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _copy_from(decision: Decision, connect: Callable[[str], Transport]) -> tuple[str, bytes]:
    """The certificate and key a node serving the wanted serial holds (held in memory only)."""
    serial, source = decision.serial or "", decision.source or ""
    version = f"{cert_dir(decision.name)}/{serial}"
    paths = [f"{version}/privkey.pem", f"{version}/fullchain.pem"]
    try:
        found = fetch(connect(source), paths, KEY_LIMIT)
    except TransportError as exc:
        raise CertificateFailed(f"certificate {decision.name}: cannot read it from {source}: {exc}") from exc
    parts = [found.get(p) for p in paths]
    if any(c is None or c.data is None for c in parts):
        raise CertificateFailed(f"certificate {decision.name}: {version} is no longer complete on {source}")
    return serial, b"".join(c.data for c in parts if c is not None and c.data is not None)


def _materialize(plan: Plan, name: str, serial: str, bundle: bytes) -> None:
    """The certificate's resources get what the CA gave, and their nodes' programs the tasks that
    write it (made at plan time without it)."""
    from ..plan.program import remake_nodes

    rid = ResourceId.of("cert", name)
    for nd in plan.desired.nodes.values():
        nd.resources = [
            dataclasses.replace(r, desired={**r.desired, "serial": serial}, content=bundle)
            if r.id == rid
            else r
            for r in nd.resources
        ]
    remake_nodes(plan, {n for n, nd in plan.desired.nodes.items() if nd.resource(rid) is not None})
