"""A plan's program in a saved plan and back (issue 29): `plan --out` writes what `apply FILE` runs,
so that apply needs neither the repo's manifests nor its templates.

What the file carries besides the program, and why:
- **How to reach the nodes**: each target's inventory entry (address, port, user, transport, the
  agent's URL and pin file) and the settings apply uses (state dir, parallelism, journal, releases
  kept, ssh options). Credentials are never in it — only the paths and environment variable names
  the inventory gives (ssh keys, agent tokens, client certificates), resolved where apply runs, as
  an apply from the repo resolves them. Node `vars` are left out: nothing at apply time reads them.
- **What the plan saw**: per node, the resource ids it probed (apply probes them again under the
  lock and compares the `observed` digest) and whether that digest was keyed.
- **Secrets**: sealed or withheld, see plan/seal.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import FunopsError
from ..kinds.base import GatedGroup
from ..model.inventory import Node
from ..model.strategy import UpdateStrategy
from ..node import wire
from ..resources import Resource
from ..settings import Settings
from ..state.node_state import AppRecord, ManagedResource
from ..state.records import ReleaseRecord
from .certorders import placeholder_programs, saved_orders
from .document import ProgramDoc
from .drains import drain_table
from .drainsites import DrainTable
from .program import NodeProgram, Program
from .seal import Needles, Sealer

if TYPE_CHECKING:
    from .planner import Plan

# The settings apply reads; the rest (placement, injected env, pull, acme, allowed roots) shaped
# the plan and stays in the repo.
CARRIED_SETTINGS = ("project", "parallel", "state_dir", "journal", "ssh", "keep_releases",
                    "saved_plan_max_age_seconds")  # fmt: skip


def program_doc(
    plan: Plan,
    seal_to: bytes | None,
    rolled_back: Sequence[tuple[str, str]] = (),
    rollbacks: Mapping[str, tuple[str, str | None]] | None = None,
) -> ProgramDoc:
    """The plan's program as the saved file holds it (secret units sealed to `seal_to`, else withheld);
    `rolled_back`: (app, release id) the plan deploys at a rolled-back revision; `rollbacks`: app →
    (release made, release a halt returns to) for the apps that auto-rollback (release/ finds both)."""
    sealer = Sealer()
    # The nodes of a certificate apply orders run their program for its placeholder version, bound
    # to the CA's answer at apply (plan/certorders.py).
    programs = plan.program.nodes | placeholder_programs(plan)
    nodes = {name: _node_doc(name, program, plan, sealer) for name, program in sorted(programs.items())}
    sealed = sealer.seal(seal_to)
    needs_repo = _needs_repo(plan)
    if sealer.units and sealed is None:
        for doc in nodes.values():
            _withhold(doc)
        needs_repo.append("its secrets are not sealed (save it with `plan --out FILE --seal-to CERT`)")
    settings = plan.project.settings
    carried = {k: v for k, v in settings.model_dump(mode="json").items() if k in CARRIED_SETTINGS}
    drains = drain_table(plan)
    reached = sorted({*plan.doc.targets, *(drains.ingress if drains else [])})
    return ProgramDoc(
        connection={
            "settings": carried,
            "nodes": {n: plan.project.nodes[n].model_dump(mode="json", exclude={"vars"}) for n in reached},
        },
        intent=plan.intent.kind,
        strategy=plan.program.strategy.model_dump(mode="json"),
        batches=plan.program.batches,
        nodes=nodes,
        needs_repo=needs_repo,
        rolled_back=[list(hit) for hit in rolled_back],
        drains=drains.doc() if drains else None,
        orders=saved_orders(plan),
        rollback={
            app: {"from": made, "to": back, "strategy": plan.strategy_of(app).model_dump(mode="json")}
            for app, (made, back) in sorted((rollbacks or {}).items())
        },
        sealed_to=seal_to.decode() if sealed else None,
        sealed=sealed,
    )


def _needs_repo(plan: Plan) -> list[str]:
    """What apply can only do from the repo: nothing the plan decides (drains are carried in
    `drains`, plan/drains.py; certificate orders in `orders`, plan/certorders.py); see the caller
    for unsealed secrets."""
    return []


def _node_doc(name: str, program: NodeProgram, plan: Plan, sealer: Sealer) -> dict[str, Any]:
    g = plan.gathered[name]
    needles = Needles.of(plan.desired.nodes[name].resources, g.facts.node_state if g.facts else None)

    def put(plain: Any, encoded: Any) -> Any:
        return sealer.put(name, plain, encoded, needles)

    def task(t: Any) -> Any:
        return put(t, wire.encode(t))

    return {
        "converge": program.converge,
        "probed": sorted(g.probed),
        "keyed": bool(g.facts and g.facts.fingerprint_key),
        "changes": [task(t) for t in program.changes],
        "checks": [{"task": task(t), "app": app} for t, app in program.checks],
        "gated": [put(group, _group(group)) for group in program.gated],
        "housekeeping": [task(t) for t in program.housekeeping],
        "owed": list(program.owed),
        "deleted": list(program.deleted),
        "managed": {rid: put(m, m.model_dump(mode="json")) for rid, m in sorted(program.managed.items())},
        "apps": {a: r.model_dump(mode="json") for a, r in program.apps.items()},
        "scope": program.scope,
        "records": [put(r, r.model_dump(mode="json", by_alias=True)) for r in program.records],
        "rollsBack": list(program.rolls_back),
        "keep": program.keep,
        "bake": [task(t) for t in program.bake],
        "touched": list(program.touched),
    }


def _group(group: GatedGroup) -> dict[str, Any]:
    return {
        "handler": str(group.handler),
        "tasks": [wire.encode(t) for t in group.tasks],
        "undo": [wire.encode(t) for t in group.undo],
        "resources": [
            {"id": str(r.id), "kind": r.kind, "owner": str(r.owner), "desired": dict(r.desired)}
            for r in group.resources
        ],
    }


def _withhold(doc: dict[str, Any]) -> None:
    """Sealed units with nowhere to go: left out (apply FILE then makes them again from the repo)."""

    def out(v: Any) -> Any:
        return {"withheld": True} if isinstance(v, dict) and set(v) == {"sealed"} else v

    for key in ("changes", "gated", "housekeeping", "records", "bake"):
        doc[key] = [out(v) for v in doc[key]]
    doc["checks"] = [{"task": out(c["task"]), "app": c["app"]} for c in doc["checks"]]
    doc["managed"] = {k: out(v) for k, v in doc["managed"].items()}


def public_units(doc: ProgramDoc) -> dict[str, Any]:
    """The program without its secret units: what two plans must share to be the same program."""

    def clear(v: Any) -> Any:
        if isinstance(v, dict) and (set(v) == {"sealed"} or set(v) == {"withheld"}):
            return "(secret)"
        if isinstance(v, dict):
            return {k: clear(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clear(x) for x in v]
        return v

    def same(node: dict[str, Any]) -> dict[str, Any]:
        # What the plan saw (probed ids, keyed) is compared through the nodes' observed digests; how
        # the revision was named (the working tree, or the commit apply loads) is not what runs.
        out = clear({k: v for k, v in node.items() if k not in ("probed", "keyed")})
        for record in out["records"]:
            if isinstance(record, dict) and isinstance(record.get("revision"), dict):
                record["revision"] = {k: v for k, v in record["revision"].items() if k != "ref"}
        return out

    return {name: same(node) for name, node in doc.nodes.items()}


# ---- reading it back ---------------------------------------------------------------------------


def connection(doc: ProgramDoc) -> tuple[Settings, dict[str, Node]]:
    conn = doc.connection
    try:
        settings = Settings.model_validate(conn["settings"])
        nodes = {n: Node.model_validate(v) for n, v in conn["nodes"].items()}
    except (KeyError, ValueError) as exc:
        raise FunopsError(f"program.connection: not what funops writes ({exc})") from None
    return settings, nodes


def load_program(doc: ProgramDoc, units: dict[str, Any], where: str) -> Program:
    """The program the file holds, its sealed units opened (`units`)."""

    def get(v: Any) -> Any:
        if isinstance(v, dict) and set(v) == {"sealed"}:
            if v["sealed"] not in units:
                raise FunopsError(f"{where}: sealed unit {v['sealed']} is missing from its sealed section")
            return units[v["sealed"]]
        if isinstance(v, dict) and set(v) == {"withheld"}:
            raise FunopsError(f"{where}: its secrets were not sealed: apply it from the repo")
        return v

    def tasks(items: list[Any]) -> list[Any]:
        return [wire.decode(get(t)) for t in items]

    try:
        nodes = {}
        for name, d in doc.nodes.items():
            nodes[name] = NodeProgram(
                converge=bool(d["converge"]),
                changes=tasks(d["changes"]),
                checks=[(wire.decode(get(c["task"])), c["app"]) for c in d["checks"]],  # type: ignore[misc]
                gated=[_read_group(get(g)) for g in d["gated"]],
                housekeeping=tasks(d["housekeeping"]),
                owed=list(d["owed"]),
                deleted=list(d["deleted"]),
                managed={k: ManagedResource.model_validate(get(v)) for k, v in d["managed"].items()},
                apps={k: AppRecord.model_validate(v) for k, v in d["apps"].items()},
                scope=d["scope"],
                records=[ReleaseRecord.model_validate(get(r)) for r in d["records"]],
                rolls_back=list(d["rollsBack"]),
                keep=int(d["keep"]),
                bake=tasks(d["bake"]),  # type: ignore[arg-type]
                touched=list(d["touched"]),
            )
        strategy = UpdateStrategy.model_validate(doc.strategy)
        drains = DrainTable.of_doc(doc.drains) if doc.drains is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise FunopsError(f"{where}: program: not what funops writes ({exc})") from None
    return Program(nodes, strategy, [list(b) for b in doc.batches], drains, dict(doc.orders))


def _read_group(d: dict[str, Any]) -> GatedGroup:
    return GatedGroup(
        tasks=[wire.decode(t) for t in d["tasks"]],
        undo=[wire.decode(t) for t in d["undo"]],
        resources=[
            Resource(id=r["id"], kind=r["kind"], owner=r["owner"], desired=r["desired"], order=0)
            for r in d["resources"]
        ],
        handler=d["handler"],
    )
