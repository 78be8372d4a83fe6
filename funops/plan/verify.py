"""What `apply FILE` needs besides the program when it runs without the repo: a project of only the
plan's settings and nodes (no manifests), and each node probed again — the resources the plan probed,
its state file — so the rollout starts from exactly the node states the program was made from."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..gather.gatherer import NodeGather, probe_node
from ..load.project import Project
from ..load.source import Revision
from ..model.inventory import Node
from ..settings import Settings
from ..transports import TransportError
from .document import PlanDoc
from .planner import observed_digest
from .program import Program

if TYPE_CHECKING:
    from ..transports import Transport

PROBE_TIMEOUT = 60.0


class SavedSource:
    """A source with no files: the plan's revision, rooted where apply runs (relative credential
    paths of the inventory, the journal). Nothing is compiled from it."""

    saved = True

    def __init__(self, root: Path, revision: Revision) -> None:
        self.root, self.revision = root, revision

    def list(self, folder: str) -> list[str]:
        return []

    def read_bytes(self, path: str) -> bytes | None:
        return None


def project_of(doc: PlanDoc, settings: Settings, nodes: dict[str, Node], root: Path) -> Project:
    rev = doc.revision
    source = SavedSource(root, Revision(commit=rev.commit, dirty=rev.dirty, ref=rev.ref))
    return Project(source=source, settings=settings, nodes=nodes)  # type: ignore[arg-type]


def regather(
    doc: PlanDoc, program: Program, connect: Callable[[str], Transport], settings: Settings
) -> tuple[dict[str, NodeGather], list[str]]:
    """Each target probed again (the plan's resource ids), and what differs from what the plan saw."""
    assert doc.program is not None
    carried = doc.program.nodes

    def one(name: str) -> tuple[NodeGather, str | None]:
        saved = next(n for n in doc.nodes if n.name == name)
        if not saved.reachable:  # the plan skipped it (--skip-unreachable): so does apply
            return NodeGather(node=name, error=saved.error), None
        probed = set(carried[name]["probed"]) if name in carried else set()
        try:
            facts = probe_node(connect(name), probed, settings.state_dir, PROBE_TIMEOUT, containers=False)
        except TransportError as exc:
            return NodeGather(node=name, error=str(exc)), f"{name} is unreachable now"
        if not (name in carried and carried[name]["keyed"]):
            facts.fingerprint_key = None  # the plan's digest was not keyed (no key on the node yet)
        g = NodeGather(node=name, facts=facts, probed=probed)
        if observed_digest(g) != saved.observed:
            return g, f"{name} changed since the plan was made"
        return g, None

    with ThreadPoolExecutor(max_workers=max(1, min(settings.parallel, len(doc.targets) or 1))) as pool:
        results = list(pool.map(one, doc.targets))
    return {g.node: g for g, _ in results}, [why for _, why in results if why]
