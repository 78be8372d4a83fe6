"""Where a rollout's drains get their ingress files (README.md, "Zero downtime"; apply/drain.py runs
them): which (app, node) endpoints are marked down when, and the nginx sites with those marked down.

From the repo, apply renders the sites for each set of drained endpoints as it goes
(`RepoSites`). A saved plan cannot: apply runs without the manifests and templates. So `plan --out`
renders, once, every set of drained endpoints the rollout can reach — each batch drained and
restored, and each with one of its nodes failed (its endpoints stay down, through the later
batches when `maxFailures` lets the rollout go on, and through the bake window) — and the file
holds them as typed `DrainWrite` tasks (`DrainTable`). Apply looks the set up; one it does not
hold (two nodes failed in one batch) takes the smallest held set that drains at least as much, or,
with none, is reported as a failed drain step, as an unreachable ingress node is."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..compile.compiler import DesiredState, Facts, compile_ingresses, compile_with_facts
from ..resources import NGINX_RELOAD, Resource
from ..tasks import model as m
from .drainsites import DrainTable, Pair, Site

if TYPE_CHECKING:
    from .model import Plan


# ---- which endpoints are down when --------------------------------------------------------------


def initial_down(plan: Plan) -> set[Pair]:
    """Instances not running yet (new placements) take no traffic before their batch made them
    healthy. Only what was seen counts: a node the plan did not gather (or could not reach) keeps its
    endpoints as they are."""
    down = set()
    for app, nodes in plan.desired.placements.items():
        for node in nodes:
            g = plan.gathered.get(node)
            if g and g.facts is not None and app not in g.facts.node_state.apps:
                down.add((app, node))
    return down


def touched_pairs(plan: Plan, batch: Iterable[str]) -> set[Pair]:
    """The endpoints of what the nodes' runs restart, replace or stop, as their programs say."""
    return {
        (app, node)
        for node in batch
        for app in touched(plan, node)
        if node in plan.desired.placements.get(app, [])
    }


def touched(plan: Plan, node: str) -> list[str]:
    program = plan.program.nodes.get(node)
    return program.touched if program else []


# ---- from the repo ----------------------------------------------------------------------------


class RepoSites:
    """Sites rendered from the repo for each set of drained endpoints (as the plan's compile)."""

    def __init__(self, plan: Plan) -> None:
        from .planner import live_facts

        self.plan = plan
        live = live_facts(plan.gathered)
        # The sites are rendered where the plan places the apps, not where they run now: `funops
        # drain NODE` planned them away from NODE, and a render from the live placements put NODE's
        # instance back into the upstream it was leaving (its removal then cut requests in flight).
        planned = {app: frozenset(nodes) for app, nodes in plan.desired.placements.items()}
        self.facts = Facts(live.capacity, {**live.placements, **planned})
        self._base: DesiredState | None = None  # the project compiled with these placements, once

    def ingress_nodes(self) -> list[str]:
        return sorted(self.resources(frozenset()))

    def sites(self, down: frozenset[Pair]) -> dict[str, list[Site]]:
        return {node: [site_of(r) for r in rs] for node, rs in self.resources(down).items()}

    def resources(self, down: frozenset[Pair]) -> dict[str, list[Resource]]:
        """node → its nginx site files, rendered with `down` marked down."""
        if not self.plan.project.ingresses:
            return {}
        if self._base is None:
            # The plan's own desired state when these placements are its (and nothing is down): the
            # ingresses read only the base's placements and versions, so rendering every app's
            # files again (~40 ms at 20 nodes, before the first lock) gave the same.
            self._base = compile_with_facts(self.plan.project, self.facts, self.plan.desired)
        if not down and self._base is self.plan.desired and self.plan.intent.apps is None:
            # Nothing down, the plan's placements and no app left out: the sites are the plan's own
            # (the ingresses alone render as the whole compile), with no template rendered again.
            desired = self.plan.desired
        else:
            facts = Facts(self.facts.capacity, self.facts.placements, down)
            desired = compile_ingresses(self.plan.project, facts, self._base)
        return {
            name: sites
            for name, nd in desired.nodes.items()
            if (sites := [r for r in nd.resources if NGINX_RELOAD in r.handlers and r.routes])
        }

    def apps(self) -> set[str]:
        return set(self.plan.project.apps)

    def wait(self, app: str) -> tuple[int | None, float]:
        spec = self.plan.project.apps[app].spec
        return spec.port, spec.drain_timeout

    def planned(self, node: str) -> dict[str, str]:
        nd = self.plan.desired.nodes.get(node)
        return {r.name: r.desired.get("sha256") or "?" for r in (nd.resources if nd else []) if r.routes}

    def wrote(self, node: str) -> set[str]:
        diff = self.plan.diffs.get(node)
        return {c.id.name for c in diff.pending} if diff else set()


def site_of(r: Resource) -> Site:
    """A rendered site resource as a drain step writes it."""
    return Site(
        str(r.id), r.desired["sha256"], m.DrainWrite(r.name, r.desired["mode"], r.content or b"", str(r.id))
    )


def drain_table(plan: Plan) -> DrainTable | None:
    """What `plan --out` saves for the rollout's drains; None when the plan drains nothing."""
    repo = RepoSites(plan)
    changed = [n for b in plan.program.batches for n in b]
    if not plan.project.ingresses or not any(touched_pairs(plan, changed)):
        return None
    downs, steps = reachable_downs(plan)
    variants = {down: repo.sites(down) for down in sorted(downs, key=lambda d: (len(d), sorted(d)))}
    ingress = repo.ingress_nodes()
    names = {s.name for by_node in variants.values() for sites in by_node.values() for s in sites}
    return DrainTable(
        ingress=ingress,
        variants=variants,
        app_waits={a: repo.wait(a) for a in sorted(repo.apps())},
        planned_sites={n: repo.planned(n) for n in sorted(set(changed) | set(ingress))},
        written={n: sorted(repo.wrote(n) & names) for n in sorted(set(changed) | set(ingress))},
        steps=steps,
    )


MAX_SETS = 256  # sets of drained endpoints a saved plan renders at most (one compile each)


def reachable_downs(plan: Plan) -> tuple[list[frozenset[Pair]], list[dict[str, Any]]]:
    """The sets of drained endpoints apply/drain.py's Drainer can ask for, and the healthy path's
    steps: first every set of the healthy path (and a node failing the bake window), then each
    node's batch with that node failed (its endpoints stay down: where a halt leaves them), then
    — when maxFailures lets the rollout go on — the later batches with it still down, while fewer
    than MAX_SETS are held (a set not held falls back as DrainTable.sites says)."""
    batches, strategy = plan.program.batches, plan.program.strategy
    changed = [n for b in batches for n in b]

    def walk(failed: str | None) -> list[tuple[int, str, frozenset[Pair]]]:
        down, seen = initial_down(plan), []
        for index, batch in enumerate(batches, start=1):
            down |= touched_pairs(plan, batch)
            seen.append((index, "drain", frozenset(down)))
            down = {p for p in down if p[1] not in batch or p[1] == failed}
            seen.append((index, "restore", frozenset(down)))
            if failed in batch and strategy.max_failures < 1:
                break  # the rollout halts after this batch
        return seen

    healthy = walk(None)
    steps = [{"batch": i, "step": step, "down": [list(p) for p in sorted(d)]} for i, step, d in healthy]
    final = healthy[-1][2] if healthy else frozenset()
    first = [frozenset(), *(d for _, _, d in healthy)]
    if strategy.bake_seconds:
        first += [final | touched_pairs(plan, [n]) for n in changed]
    failing = {n: walk(n) for n in changed}
    halted = [
        next(d for i, step, d in failing[n] if step == "restore" and n in batches[i - 1]) for n in changed
    ]
    later = [d for n in changed for _, _, d in failing[n]]
    downs = dict.fromkeys(first)
    for d in [*halted, *later]:
        if len(downs) >= MAX_SETS:
            break
        downs.setdefault(d)
    return list(downs), steps
