"""`funops exec`: one operator's command on an app's nodes (or the nodes named), in parallel, as a
RunCommand task — the argv as values, each argument one word, never spliced into a script."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import FunopsError
from ..gather.probe import parse
from ..load.project import Project
from ..load.targets import select_apps, select_nodes
from ..model.placement import matching_nodes
from ..state.node_state import state_path
from ..tasks import model as m
from ..transports import Transport, TransportError


@dataclass
class NodeRun:
    node: str
    exit_code: int | None = None  # None: the node could not be reached
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "exitCode": self.exit_code, "stdout": self.stdout, "stderr": self.stderr,
                "error": self.error, "seconds": round(self.seconds, 3)}  # fmt: skip


def app_nodes(project: Project, app_name: str, connect: Callable[[str], Transport]) -> list[str]:
    """Where `app_name` runs: the nodes its selector matches; for a `replicas` app, those of them
    whose state file records it (placement picked some of them)."""
    (name,) = select_apps(project.apps, [app_name])
    app = project.apps[name]
    nodes = [n.name for n in matching_nodes(app, project.nodes)]
    if app.spec.replicas:
        nodes = [n for n in nodes if _records(project, n, name, connect)]
    if not nodes:
        raise FunopsError(f"app {name} runs on no node (yet: not applied)")
    return nodes


def _records(project: Project, node: str, app: str, connect: Callable[[str], Transport]) -> bool:
    try:
        transport = connect(node)
        probe = transport.call(m.Probe((), state_path(project.settings.state_dir), False), timeout=60)
        facts = parse(probe.text(), transport.path)
        return facts.state is not None and app in facts.node_state.apps
    except (TransportError, ValueError):
        return True  # unreachable: shown as such, not silently left out


def exec_targets(
    project: Project, app: str | None, nodes: list[str] | None, connect: Callable[[str], Transport]
) -> list[str]:
    """The nodes to run on: the app's (narrowed by `nodes`, if given) or the nodes given. Pull-mode
    nodes are refused: they take no pushed task."""
    if app is None and not nodes:
        raise FunopsError("name an app, or nodes with --node")
    names = select_nodes(project.nodes, nodes) if nodes else None
    if app is not None:
        on = app_nodes(project, app, connect)
        names = [n for n in on if names is None or n in names]
        if not names:
            raise FunopsError(
                f"app {app} does not run on {', '.join(nodes or [])} (its nodes: {', '.join(on)})"
            )
    assert names is not None
    pulled = [n for n in names if project.nodes[n].pull]
    if pulled:
        raise FunopsError(
            f"{', '.join(pulled)}: in pull mode: they take no pushed task (leave them out: --node)"
        )
    return names


def run_everywhere(
    project: Project, names: list[str], argv: list[str], connect: Callable[[str], Transport], timeout: float
) -> list[NodeRun]:
    task = m.RunCommand(tuple(argv))  # checked once, before any node is asked

    def one(name: str) -> NodeRun:
        run = NodeRun(name)
        started = time.monotonic()
        try:
            result = connect(name).call(task, timeout=timeout)
            run.exit_code = result.exit_code
            run.stdout = result.stdout.decode("utf-8", errors="replace")
            run.stderr = result.stderr.decode("utf-8", errors="replace")
        except TransportError as exc:
            run.error = str(exc)
        run.seconds = time.monotonic() - started
        return run

    with ThreadPoolExecutor(max_workers=max(1, min(project.settings.parallel, len(names) or 1))) as pool:
        return list(pool.map(one, names))
