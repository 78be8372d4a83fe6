"""ACME certificates in a saved plan (issue 29): what `apply FILE` orders, and how the CA's answer —
known only at apply time — enters the nodes' tasks without the repo.

From the repo, apply's ACME phase (certs/phase.py) gives each certificate resource its key and
certificate and makes the programs of its nodes again (`remake_nodes`), which needs the desired
state and the diffs, that is the repo. A saved plan instead holds:

- each order's parameters (`orders`): names, challenge, key type, the issuer's directory URL and CA
  bundle (PEM: public), its EAB and the DNS server's TSIG key as the *references* funops.yaml gives
  (a file or variable name, read where apply runs), the variable of the ACME account key (else
  `.funops/acme/<issuer>.key` under `-C`), the edge nodes HTTP-01 goes to, and for a deploy the node
  to copy from;
- the programs of the certificate's nodes made at plan time for a *placeholder* version: a serial
  no CA gives (derived from the name) and a placeholder key and chain. Every task and record the
  certificate kind makes from them (the version's two files, the `current` link, its gated group,
  the managed record) is an ordinary task of the program, shown and compared like any other.

After the order apply `bind`s them: in those task types only, the placeholder serial becomes the
CA's and the placeholder key and chain its key and chain, in memory. Binding typed fields of known
task types, not re-planning, keeps apply from deriving any task: what runs is what was reviewed,
with the one value nobody could review."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

from ..certificates import cert_id
from ..errors import FunopsError
from ..kinds.base import GatedGroup
from ..kinds.cert import split_bundle
from ..tasks import model as m
from .program import remade_node

if TYPE_CHECKING:
    from .model import NodeProgram, Plan, Program

BOUND = ("issue", "renew", "reissue", "deploy")  # what gives a resource a version only apply knows
PLACEHOLDER_KEY = (
    b"-----BEGIN PRIVATE KEY-----\nfunops placeholder: the key of the order\n-----END PRIVATE KEY-----\n"
)
PLACEHOLDER_CHAIN = (
    b"-----BEGIN CERTIFICATE-----\nfunops placeholder: the CA's certificate\n-----END CERTIFICATE-----\n"
)


def placeholder(name: str) -> str:
    """A version name no CA gives (hex, as a serial must be), one per certificate."""
    return hashlib.sha256(f"funops placeholder serial {name}".encode()).hexdigest()[:40]


def placeholder_programs(plan: Plan) -> dict[str, NodeProgram]:
    """The programs of the nodes of each certificate the plan orders or deploys, made for its
    placeholder version (the plan itself is left as it is)."""
    bound = {cert_id(d.name): placeholder(d.name) for d in plan.certificates if d.action in BOUND}
    out = {}
    for name, nd in sorted(plan.desired.nodes.items()):
        held = [r for r in nd.resources if r.id in bound]
        if not held or name not in plan.program.nodes or not plan.program.nodes[name].converge:
            continue
        resources = [
            dataclasses.replace(
                r, desired={**r.desired, "serial": bound[r.id]}, content=PLACEHOLDER_KEY + PLACEHOLDER_CHAIN
            )
            if r.id in bound
            else r
            for r in nd.resources
        ]
        out[name] = remade_node(plan, name, dataclasses.replace(nd, resources=resources))
    return out


def saved_orders(plan: Plan) -> dict[str, dict[str, Any]]:
    """Each certificate's order (or copy) as the saved plan holds it: parameters and references only."""
    from ..certificates import edges

    project, acme = plan.project, plan.project.settings.acme
    orders = {}
    for d in plan.certificates:
        if d.action not in BOUND:
            continue
        spec = project.certificates[d.name].spec
        order: dict[str, Any] = {
            "action": d.action,
            "placeholder": placeholder(d.name),
            "domains": list(spec.domains),
            "challenge": spec.challenge,
            "keyType": spec.key_type,
            "issuer": None,
            "dns": None,
            "edges": [dataclasses.asdict(e) for e in edges(project, plan.gathered, d.name)],
            "copyFrom": {"node": d.source, "serial": d.serial} if d.action == "deploy" else None,
        }
        if d.action != "deploy":
            issuer = acme.issuers[spec.issuer]
            order["issuer"] = {
                "name": spec.issuer,
                "url": issuer.directory,  # the CA's ACME directory
                "email": issuer.email,
                "eab": issuer.eab.model_dump(mode="json", by_alias=True) if issuer.eab else None,
                "accountKeyFromEnv": issuer.account_key_from_env,
                "caBundle": _ca_bundle(plan, issuer.ca_bundle) if issuer.ca_bundle else None,
            }
            if spec.dns:
                order["dns"] = {"name": spec.dns, **acme.dns[spec.dns].model_dump(mode="json", by_alias=True)}
        orders[d.name] = order
    return orders


def _ca_bundle(plan: Plan, path: str) -> str:
    try:
        return (plan.project.root / path).read_text(encoding="ascii")
    except (OSError, ValueError) as exc:
        raise FunopsError(f"funops.yaml: acme caBundle {path}: cannot read it: {exc}") from None


# ---- at apply ----------------------------------------------------------------------------------


def bind(program: Program, placeholder_serial: str, serial: str, bundle: bytes) -> None:
    """The CA's serial, key and chain in place of the placeholder's, in the tasks and records the
    certificate kind made for it (in memory: the key is never written anywhere but the nodes)."""
    key, chain = split_bundle(bundle)

    def task(t: Any) -> Any:
        if isinstance(t, m.WriteFile) and f"/{placeholder_serial}/" in t.path:
            content = key if t.path.endswith("/privkey.pem") else chain
            return dataclasses.replace(
                t,
                path=t.path.replace(placeholder_serial, serial),
                label=t.label.replace(placeholder_serial, serial),
                content=content,
            )
        if isinstance(t, m.PointLink) and t.target == placeholder_serial:
            return dataclasses.replace(t, target=serial)
        return t

    def group(g: GatedGroup) -> GatedGroup:
        resources = [
            dataclasses.replace(r, desired={**r.desired, "serial": serial})
            if r.desired.get("serial") == placeholder_serial
            else r
            for r in g.resources
        ]
        return GatedGroup(
            tasks=[task(t) for t in g.tasks],
            undo=[task(t) for t in g.undo],
            resources=resources,
            handler=g.handler,
        )

    for p in program.nodes.values():
        p.changes = [task(t) for t in p.changes]
        p.gated = [group(g) for g in p.gated]
        p.housekeeping = [task(t) for t in p.housekeeping]
        p.managed = {
            rid: rec.model_copy(update={"applied": {**rec.applied, "serial": serial}})
            if rec.applied.get("serial") == placeholder_serial
            else rec
            for rid, rec in p.managed.items()
        }
