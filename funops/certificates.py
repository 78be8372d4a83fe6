"""Per Certificate, from what its edge nodes serve now: issue, renew, reissue, deploy, or nothing.

One certificate per set of domains, served by every edge node of the ingresses naming it: the nodes
are looked at together (a node serving another serial is a mismatch, fixed by deploying the
certificate the others serve), never one by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from .compile.compiler import DesiredState
from .gather.gatherer import NodeGather
from .ids import ResourceId
from .kinds.cert import NEW
from .load.project import Project
from .model.manifests import duration_seconds
from .resources import NGINX_DIR

Action = Literal["issue", "renew", "reissue", "deploy", "rollback", "none"]
ORDERS: tuple[Action, ...] = ("issue", "renew", "reissue")  # what needs the CA


def cert_id(name: str) -> ResourceId:
    """The resource id of Certificate `name` on its nodes."""
    return ResourceId.of("cert", name)


@dataclass(frozen=True)
class Served:
    """What one node serves for a certificate (None when it serves none)."""

    serial: str
    domains: tuple[str, ...]
    not_after: dt.datetime
    key_type: str | None = None  # ecdsa-p256, rsa2048, rsa3072 (None: not known)

    def days_left(self, now: dt.datetime) -> int:
        return int((self.not_after - now).total_seconds() // 86400)


@dataclass
class Decision:
    """What apply does for one Certificate, and why (the plan's wording)."""

    name: str
    action: Action
    reason: str
    domains: list[str]
    issuer: str
    challenge: str
    serial: str | None  # the serial every node is to serve (NEW: one the CA is to issue)
    source: str | None = None  # deploy: a node serving that serial, whose files are copied
    nodes: dict[str, Served | None] = field(default_factory=dict)  # the gathered edge nodes
    mismatch: bool = False  # the nodes serve different serials

    @property
    def needs_ca(self) -> bool:
        return self.action in ORDERS

    def doc(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "reason": self.reason,
            "domains": self.domains,
            "issuer": self.issuer,
            "challenge": self.challenge,
            "serial": self.serial,
            "mismatch": self.mismatch,
            "nodes": {
                n: None
                if s is None
                else {"serial": s.serial, "notAfter": s.not_after.isoformat(), "daysLeft": s.days_left(now)}
                for n, s in sorted(self.nodes.items())
            },
        }


def served(info: dict[str, Any] | None) -> Served | None:
    """A node's fact of a certificate (kinds/cert.py) as Served; None when absent or unreadable."""
    if not info or not info.get("serial") or not info.get("notAfter"):
        return None
    return Served(
        info["serial"],
        tuple(info.get("domains", ())),
        dt.datetime.fromisoformat(info["notAfter"]),
        info.get("keyType"),
    )


def decide(
    name: str,
    domains: list[str],
    renew_before_seconds: int,
    nodes: dict[str, Served | None],
    now: dt.datetime,
    key_type: str | None = None,
) -> tuple[Action, str, str | None, str | None]:
    """(action, reason, serial to serve, node to copy it from). Pure: the unit tests' table."""
    wanted = sorted(domains)
    serving = {n: s for n, s in sorted(nodes.items()) if s is not None}
    if not serving:
        return "issue", "issue (served by no node yet)", NEW, None
    # The best certificate the fleet has: the wanted names (and key type), the latest expiry.
    named = [(s.not_after, n, s) for n, s in serving.items() if sorted(s.domains) == wanted]
    fitting = [f for f in named if key_type is None or f[2].key_type in (None, key_type)]
    if named and not fitting:
        had = sorted({str(s.key_type) for _, _, s in named})
        return "reissue", f"reissue (key type changed: {', '.join(had)} → {key_type})", NEW, None
    if not fitting:
        have = sorted({d for s in serving.values() for d in s.domains})
        added, gone = sorted(set(wanted) - set(have)), sorted(set(have) - set(wanted))
        what = ", ".join([*(f"+{d}" for d in added), *(f"-{d}" for d in gone)]) or "order"
        return "reissue", f"reissue (names changed: {what})", NEW, None
    _, source, best = max(fitting)
    left = (best.not_after - now).total_seconds()
    if left <= renew_before_seconds:
        days = int(left // 86400)
        when = f"expired {-days} days ago" if left < 0 else f"expires in {days} days"
        return "renew", f"renew ({when})", NEW, None
    lacking = sorted(n for n, s in nodes.items() if s is None or s.serial != best.serial)
    if lacking:
        return "deploy", f"deploy {best.serial} to {', '.join(lacking)} (from {source})", best.serial, source
    return "none", "up to date", best.serial, None


def settle(
    project: Project,
    desired: DesiredState,
    gathered: dict[str, NodeGather],
    pinned: dict[str, dict[str, str]] | None = None,
) -> list[Decision]:
    """Decide each Certificate some gathered node should serve, and set the serial its resources
    want (NEW, or the one to deploy) on every node of it, so the diff shows what changes where.
    `pinned`: certificate → node → a version the node keeps (`funops certs rollback`): switched to."""
    now = dt.datetime.now(dt.UTC)
    pinned = pinned or {}
    decisions = []
    for name, cert in sorted(project.certificates.items()):
        rid = ResourceId.of("cert", name)
        holders = [n for n, nd in desired.nodes.items() if n in gathered and nd.resource(rid) is not None]
        if not holders:
            continue
        nodes = {
            n: served(g.facts.live["cert"].get(name)) for n in holders if (g := gathered[n]).facts is not None
        }
        spec = cert.spec
        action, reason, serial, source = decide(
            name, spec.domains, duration_seconds(spec.renew_before), nodes, now, spec.key_type
        )
        back = pinned.get(name, {})
        if name in pinned:
            targets = sorted(set(back.values()))
            action, reason, serial, source = "rollback", f"rollback to {', '.join(targets)}", None, None
        mismatch = len({s.serial for s in nodes.values() if s is not None}) > 1
        decisions.append(
            Decision(name, action, reason, sorted(spec.domains), spec.issuer, spec.challenge, serial,
                     source, nodes, mismatch)
        )  # fmt: skip
        for n in holders:
            nd = desired.nodes[n]
            wanted = back.get(n, serial)
            nd.resources = [
                dataclasses.replace(r, desired={**r.desired, "serial": wanted}) if r.id == rid else r
                for r in nd.resources
            ]
    return decisions


# ---- the edge nodes of a certificate (HTTP-01 goes to every one) --------------------------------


@dataclass(frozen=True)
class Edge:
    """An edge node of a certificate: where its http server listens, and whether a site of the
    certificate's ingress is already there (else it gets the bootstrap site)."""

    node: str
    listen: str  # "127.0.7.1:" or ""
    port: int
    served: bool
    files_only: bool = False  # a local node under a root prefix: no nginx there to check or reload

    @property
    def address(self) -> str:
        """Where the node itself reaches its http server."""
        return self.listen.rstrip(":") or "127.0.0.1"


def edges(project: Project, gathered: dict[str, NodeGather], name: str) -> list[Edge]:
    """Every node of the certificate's ingresses (all of them serve its names, the plan's targets or
    not), with its http listener and whether a site of it is already there."""
    ingresses = [i for i in project.ingresses.values() if i.spec.tls and i.spec.tls.certificate_ref == name]
    found = []
    for node in sorted(project.nodes.values(), key=lambda n: n.name):
        mine = [i for i in ingresses if node.matches(i.spec.selector.match_labels, i.spec.selector.nodes)]
        if not mine:
            continue
        g = gathered.get(node.name)
        # A node left out of the plan (--node) is taken as serving its site: no bootstrap site there.
        served = (
            g is None
            or g.facts is None
            or any(g.facts.files.get(f"{NGINX_DIR}/funops-{i.metadata.name}.conf") for i in mine)
        )
        listen = f"{node.bind_address}:" if node.bind_address else ""
        files_only = node.transport == "local" and bool(node.root)
        found.append(Edge(node.name, listen, mine[0].spec.http_port, served, files_only))
    return found
