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

from ..errors import FunopsError
from ..gather.contents import fetch
from ..ids import ResourceId
from ..kinds.cert import SERIAL, cert_dir
from ..resources import NGINX_DIR
from ..transports import Transport, TransportError
from .presenter import Edge, NodesPresenter

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


def obtain(plan: Plan, connect: Callable[[str], Transport], emit: Emit, order: Order | None = None) -> None:
    """Give every certificate resource the plan changes its key and certificate (in memory only)."""
    order = order or acme_order
    for decision in plan.certificates:
        if decision.action not in ("issue", "renew", "reissue", "deploy"):
            continue
        emit({"event": "certificate-start", "certificate": decision.name, "action": decision.action,
              "reason": decision.reason})  # fmt: skip
        if decision.action == "deploy":
            serial, bundle = _copy_from(decision, connect)
        else:
            presenter = NodesPresenter(
                decision.name, tuple(decision.domains), _edges(plan, decision.name), connect, emit
            )
            try:
                issued = order(plan.project, decision, presenter)
            except FunopsError as exc:
                raise CertificateFailed(f"certificate {decision.name}: {exc}") from exc
            except Exception as exc:  # the CA's errors (AcmeError), a broken connection to it
                raise CertificateFailed(f"certificate {decision.name}: {_shown(exc)}") from exc
            serial, bundle = issued.serial, issued.key_pem + issued.fullchain_pem
        if not SERIAL.fullmatch(serial):
            raise CertificateFailed(f"certificate {decision.name}: the CA's serial {serial!r} is not hex")
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


def _edges(plan: Plan, name: str) -> list[Edge]:
    """Every node of the certificate's ingresses (all of them serve its names, the plan's targets or
    not), with its http listener and whether a site of it is already there."""
    project = plan.project
    ingresses = [i for i in project.ingresses.values() if i.spec.tls and i.spec.tls.certificate_ref == name]
    edges = []
    for node in sorted(project.nodes.values(), key=lambda n: n.name):
        mine = [i for i in ingresses if node.matches(i.spec.selector.match_labels, i.spec.selector.nodes)]
        if not mine:
            continue
        g = plan.gathered.get(node.name)
        # A node left out of the plan (--node) is taken as serving its site: no bootstrap site there.
        served = (
            g is None
            or g.facts is None
            or any(g.facts.files.get(f"{NGINX_DIR}/funops-{i.metadata.name}.conf") for i in mine)
        )
        listen = f"{node.bind_address}:" if node.bind_address else ""
        files_only = node.transport == "local" and bool(node.root)
        edges.append(Edge(node.name, listen, mine[0].spec.http_port, served, files_only))
    return edges
