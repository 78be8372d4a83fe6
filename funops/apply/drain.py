"""Drain before touch (issue 15; README.md, "Zero downtime"): no request goes to an instance while funops
restarts, replaces or stops it.

Why requests failed before: nginx learnt about a restart only from failing requests. A refused
connect marks the server failed for `fail_timeout` (10 s; `max_fails=1`), and batches of a rolling
update come faster than that, so after the second or third batch every server of the upstream was
marked failed at once and nginx answered 502 "no live upstreams" to everything; requests in flight
when the instance stopped were cut (POSTs are not retried), and a new instance that was not yet
listening took requests too.

So, before a batch runs, every ingress node whose upstreams route to an instance the batch will
touch gets that endpoint marked `down` (the compiler's `unhealthy` set; `nginx -t`, then reload:
nginx's old workers finish their requests, new ones no longer pick the endpoint), funops waits until
the instance has no established connection left on its port (at most the app's `drainTimeout`),
and only then the batch runs. Once the batch's nodes are healthy their endpoints are put back the
same way; a failed node's stay down. Endpoints on nodes that do not run the app yet stay down until
their batch has made them healthy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..diff.differ import Change, live_attributes
from ..kinds import kind_of
from ..kinds.base import NodeWork
from ..plan.drains import RepoSites, initial_down, site_of, touched_pairs
from ..plan.drainsites import Pair, Site, SiteSource
from ..plan.planner import Plan
from ..resources import NGINX_RELOAD, Resource
from ..state.node_state import NodeState
from ..tasks import model as m
from ..transports import Transport, TransportError
from .executor import Emit


@dataclass
class Drainer:
    plan: Plan
    connect: Callable[[str], Transport]
    emit: Emit
    down: set[Pair] = field(default_factory=set)
    _written: dict[str, dict[str, bytes]] = field(default_factory=dict)  # node → path → content
    _drained: list[str] | None = None  # the batch `after` drained already

    def __post_init__(self) -> None:
        # The sites come from the repo, or from a saved plan's program (plan/drains.py).
        saved = self.plan.program.drains
        self.source: SiteSource = saved if saved is not None else RepoSites(self.plan)
        self.down |= initial_down(self.plan)

    # ---- the rollout's hooks ----------------------------------------------------------------

    def ingress_nodes(self) -> list[str]:
        """The reachable nodes that serve an ingress (they are locked with the rollout)."""
        return sorted(n for n in self.source.ingress_nodes() if self._reachable(n))

    def before(self, batch: list[str], wait: bool = True) -> None:
        """Mark what `batch` will touch down on every ingress routing to it; wait for its requests.
        Nothing to do when the previous batch's `after` drained it already."""
        if self._drained == batch:
            self._drained = None
            return
        self._drain(batch, set(), wait)

    def after(self, batch: list[str], healthy: list[str], then: list[str] | None = None) -> None:
        """Put back the endpoints of the nodes that came out of their batch healthy. An ingress node
        in the batch may have written its own sites: those differing from what the drain wants are
        written again. `then`: the next batch, drained in the same reload (one `nginx -t` and reload
        per batch instead of two: each reload also closes every idle keep-alive connection)."""
        for node in batch:
            self._written[node] = self._after_batch(node, node in healthy)
        back = {p for p in self.down if p[1] in healthy}
        self.down -= back
        if then is not None:
            self._drain(then, back, wait=True, render=True)
            self._drained = then
            return
        self._render(f"restore {_names(back)}" if back else "keep drained")

    def _drain(self, batch: list[str], back: set[Pair], wait: bool, render: bool = False) -> None:
        """Mark `batch`'s endpoints down and put `back` back: one render; `render` even when
        neither changes anything (the batch before may have written its own sites)."""
        pairs = touched_pairs(self.plan, batch)
        new = pairs - self.down
        self.down |= pairs
        # Instances the batch removes: no longer in any upstream once rendered; wait for them too.
        gone = {
            (app, node)
            for node in batch
            for app in self._touched(node)
            if app in self.source.apps() and node not in self.plan.desired.placements.get(app, [])
        }
        restore = [f"restore {_names(back)}"] if back else []
        why = "; ".join(restore + ([f"drain {_names(new | gone)}"] if new or gone else []))
        rendered = bool(render or back or new or gone) and self._render(why or "keep drained", wait)
        if wait and (rendered or gone):
            self._wait(new | gone)

    def finish(self) -> None:
        """A rollback renders its sites from release records, not from the repo the drain compiles:
        once its batches ran, each site the drain rewrote becomes exactly what the plan wants."""
        if self.plan.intent.kind == "deploy":
            return
        for node, written in sorted(self._written.items()):
            nd = self.plan.desired.nodes.get(node)
            sites = [r for r in (nd.resources if nd else []) if r.name in written and r.routes]
            if not sites:
                continue
            with contextlib.suppress(TransportError):
                transport = self.connect(node)
                state_dir = self.plan.project.settings.state_dir
                group = kind_of(sites[0].id).gated(_sites_work(sites, state_dir))
                tasks = group.tasks if group else []
                results, _ = transport.run_tasks(tasks)
                ok = len(results) == len(tasks) and all(r.exit_code == 0 for r in results)
                self.emit({"event": "drain", "node": node, "ok": ok, "what": "as the plan renders"})

    def _after_batch(self, node: str, succeeded: bool) -> dict[str, str]:
        """What the node's sites hold after its batch: a site the batch wrote is the plan's (if the
        node succeeded; else unknown, "?"), one it did not write still what the drain wrote. A first
        apply's sites are then not written and reloaded a second time when nothing is left down."""
        wrote = self.source.wrote(node)
        planned = self.source.planned(node)
        written = dict(self._written.get(node, {}))
        for name in wrote & (set(planned) | set(written)):
            written[name] = planned.get(name, "?") if succeeded else "?"
        return written

    def _touched(self, node: str) -> list[str]:
        """The apps the node's run restarts, replaces or stops, as its program says."""
        program = self.plan.program.nodes.get(node)
        return program.touched if program else []

    # ---- rendering ----------------------------------------------------------------------------

    def _reachable(self, node: str) -> bool:
        """Not known unreachable: a plan for some nodes (a rollback) did not gather the ingress."""
        g = self.plan.gathered.get(node)
        return g is None or g.reachable

    def _render(self, why: str, settle: bool = False) -> bool:
        """Write the sites that differ from what is live, `nginx -t`, reload (the ingress nodes in
        parallel: each is a round trip). True if any changed."""
        work: list[tuple[str, list[Site]]] = []
        planned = self.source.sites(frozenset(self.down))
        if planned is None:  # a saved plan holds no sites for these endpoints (plan/drains.py)
            for node in self.ingress_nodes():
                error = "the saved plan holds no sites with these endpoints drained"
                self.emit({"event": "drain", "node": node, "ok": False, "what": why, "error": error})
            return False
        for node, sites in sorted(planned.items()):
            if not self._reachable(node):
                continue
            written = self._written.setdefault(node, {})
            for r in sites:  # "?": not gathered, written whatever it holds
                written.setdefault(r.name, self._live(node, r) or "?")
            todo = [r for r in sites if written[r.name] != r.sha256]
            if todo:
                work.append((node, todo))

        def swap(node: str, todo: list[Site]) -> tuple[str | None, float]:
            """(None when done, else why not; the node's own seconds for the write, test, reload)."""
            try:
                tasks = _swap_tasks(todo, settle)
                results, result = self.connect(node).run_tasks(tasks)
            except TransportError as exc:
                return str(exc), 0.0
            seconds = round(sum(r.seconds for r in results), 3)
            if len(results) == len(tasks) and all(r.exit_code == 0 for r in results):
                return None, seconds
            return (results[-1].output if results else result.stderr.decode(errors="replace")), seconds

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(work)))) as pool:
            done = list(pool.map(lambda w: swap(*w), work))
        errors = [error for error, _ in done]
        for (node, todo), (error, seconds) in zip(work, done, strict=True):
            self.emit({"event": "drain", "node": node, "ok": error is None, "what": why, "seconds": seconds}
                      | ({} if error is None else {"error": error[-500:]}))  # fmt: skip
            if error is None:
                for r in todo:
                    self._written[node][r.name] = r.sha256
        return any(error is None for error in errors)

    def _live(self, node: str, site: Site) -> str | None:
        g = self.plan.gathered.get(node)
        if g is None:
            return None
        return ((live_attributes(site.id, g.facts) or {}) if g.facts else {}).get("sha256")

    def _wait(self, pairs: set[Pair]) -> None:
        """Until no connection is established to the drained instances (their in-flight requests
        ended), at most each app's drainTimeout."""
        for node in sorted({n for _, n in pairs}):
            ports = []
            timeout = 0.0
            for app, n in sorted(pairs):
                port, drain_timeout = (
                    self.source.wait(app) if n == node and app in self.source.apps() else (None, 0.0)
                )
                if port:
                    ports.append(port)
                    timeout = max(timeout, drain_timeout)
            if not ports or not timeout:
                continue
            # where the node's instances listen: its bind address (the apps' `node.bind`), else any
            inventory = self.plan.project.nodes.get(node)
            host = (inventory.bind_address if inventory else None) or ""
            started, waited = time.monotonic(), 0.0
            with contextlib.suppress(TransportError):
                task = m.AwaitIdle(tuple(ports), timeout, host)
                results, _ = self.connect(node).run_tasks([task], timeout=timeout + 30)
                waited = sum(r.seconds for r in results)
            # "seconds" as the rollout waited (its round trip included), "waited" as the node did
            seconds = round(time.monotonic() - started, 3)
            self.emit({"event": "drained", "node": node, "ports": ports, "seconds": seconds,
                       "waited": round(waited, 3)})  # fmt: skip


def _names(pairs: set[Pair]) -> str:
    return ", ".join(f"{app}@{node}" for app, node in sorted(pairs))


def _swap_tasks(sites: Sequence[Site | Resource], settle: bool = False) -> list[m.Task]:
    """Write every site (the old one kept aside), `nginx -t`; a failed test puts the old ones back
    and fails, else nginx reloads (`settle`: and serves them, before a wait for in-flight requests)."""
    sites = [s if isinstance(s, Site) else site_of(s) for s in sites]
    tasks: list[m.Task] = [s.write for s in sites]
    return [
        *tasks,
        m.DrainTest(tuple(s.name for s in sites)),
        m.NginxReloadSettled() if settle else m.NginxReload(),
    ]


def _sites_work(sites: list[Resource], state_dir: str) -> NodeWork:
    """The sites as pending writes: their kind's gated group writes them, tests and reloads."""
    writes = [(Change(id=r.id, kind=r.kind, owner=r.owner, action="update"), r) for r in sites]
    return NodeWork(desired={r.id: r for r in sites}, writes=writes, deletes=[], handlers=[NGINX_RELOAD],
                    state=NodeState(), state_dir=state_dir)  # fmt: skip
