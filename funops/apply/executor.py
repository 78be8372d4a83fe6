"""Converge one node: its tasks in dependency order, its handlers, its health gate, its record.

Order (DESIGN §2): deletions → files → daemon-reload → units → containers → health → nginx
(write, `nginx -t`, reload; a failed test restores the old files, so nginx keeps serving the old
config) → node state. Handlers a change owes are recorded on the node *before* the first task and
cleared only once they ran, so a failure or a lost link leaves the debt visible to the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..compile.resources import DAEMON_RELOAD, NGINX_RELOAD, NodeDesired
from ..diff.differ import Change, NodeDiff
from ..gather.probe import LiveFacts
from ..model.strategy import UpdateStrategy
from ..state.node_state import AppRecord, ManagedResource, NodeState, state_path
from ..transports import Transport, TransportError
from . import tasks as t

Emit = Callable[[dict[str, Any]], None]
RESTART_UNIT, RESTART_CONTAINER = "restart:unit:", "restart:container:"


@dataclass
class TaskRecord:
    name: str
    ok: bool
    seconds: float
    output: str = ""


@dataclass
class NodeOutcome:
    node: str
    status: str  # succeeded | failed | unreachable | skipped | unchanged
    tasks: list[TaskRecord] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "unreachable")


class TaskFailed(Exception):
    pass


@dataclass
class NodeRun:
    desired: NodeDesired
    diff: NodeDiff
    facts: LiveFacts
    transport: Transport
    state_dir: str
    revision: str | None
    strategies: dict[str, UpdateStrategy]  # app → its effective strategy (min healthy seconds)
    cleanup_images: set[str]  # apps whose images go when their container does
    emit: Emit
    outcome: NodeOutcome = field(init=False)

    def run(self) -> NodeOutcome:
        started = time.monotonic()
        self.outcome = NodeOutcome(self.desired.node.name, "succeeded")
        try:
            if not self.diff.pending and not self.diff.owed:
                self.outcome.status = "unchanged"
            else:
                self._converge()
        except TaskFailed as exc:
            self.outcome.status, self.outcome.error = "failed", str(exc)
        except TransportError as exc:
            self.outcome.status, self.outcome.error = "unreachable", str(exc)
        self.outcome.seconds = round(time.monotonic() - started, 3)
        return self.outcome

    # ---------------------------------------------------------------------------------------

    def _do(self, task: t.Task) -> str:
        began = time.monotonic()
        result = self.transport.run(task.script, stdin=task.stdin)
        output = (result.stdout + result.stderr).decode("utf-8", errors="replace").strip()[-2000:]
        record = TaskRecord(task.name, result.ok, round(time.monotonic() - began, 3), output)
        self.outcome.tasks.append(record)
        self.emit(
            {
                "event": "task",
                "node": self.outcome.node,
                "task": task.name,
                "ok": result.ok,
                "seconds": record.seconds,
                **({"output": output} if not result.ok else {}),
            }
        )
        if not result.ok:
            raise TaskFailed(f"{task.name} failed (exit {result.exit_code}): {output or 'no output'}")
        return output

    def _converge(self) -> None:
        path = self.transport.path
        state = NodeState.from_facts(self.facts.state)
        handlers = self.diff.handlers()
        pending = self.diff.pending
        by_id = {r.id: r for r in self.desired.resources}
        state.owed = sorted(set(state.owed) | set(handlers))
        self._record(state)

        deletes = [c for c in pending if c.action == "delete"]
        writes = [c for c in pending if c.action != "delete"]
        nginx_files = [c for c in writes if c.kind == "file" and NGINX_RELOAD in c.handlers]

        # Deletions: what runs first (containers, units), then the files they used.
        for change in sorted(deletes, key=lambda c: {"container": 0, "unit": 1}.get(c.kind, 2)):
            self._delete(change)
        for change in writes:
            if change.kind == "file" and change not in nginx_files:
                self._do(t.write_file(by_id[change.id], self.state_dir, path))
        if DAEMON_RELOAD in handlers or any(c.kind == "unit" for c in deletes):
            self._do(t.daemon_reload())

        restart_units = {h[len(RESTART_UNIT) :] for h in handlers if h.startswith(RESTART_UNIT)}
        start_units = {c.id.split(":", 1)[1] for c in writes if c.kind == "unit"}
        for unit in sorted(restart_units | start_units):
            if f"unit:{unit}" in by_id:
                self._do(t.start_unit(unit, restart=unit in restart_units))

        recreated = set()
        for change in writes:
            if change.kind != "container":
                continue
            res = by_id[change.id]
            if {f.field for f in change.fields} == {"status"}:
                self._do(t.start_container(res.name))
            else:
                self._do(t.run_container(res, path))
                recreated.add(res.name)
        for handler in handlers:
            name = handler[len(RESTART_CONTAINER) :]
            if (
                handler.startswith(RESTART_CONTAINER)
                and name not in recreated
                and f"container:{name}" in by_id
            ):
                self._do(t.restart_container(name))

        self._health(pending, handlers)

        if nginx_files or NGINX_RELOAD in handlers:
            self._nginx([by_id[c.id] for c in nginx_files])

        deleted = {c.id for c in deletes}
        state.managed = {k: v for k, v in state.managed.items() if k not in deleted}
        for res in self.desired.resources:
            state.managed[res.id] = ManagedResource(owner=res.owner, kind=res.kind)
        state.apps = {
            name: AppRecord(version=app.version, release=app.release, revision=self.revision)
            for name, app in sorted(self.desired.apps.items())
        }
        state.owed = []
        self._record(state)

    def _delete(self, change: Change) -> None:
        name = change.id.split(":", 1)[1]
        if change.kind == "container":
            app = change.owner.split("/", 1)[-1]
            self._do(t.remove_container(name, remove_image=app in self.cleanup_images))
        elif change.kind == "unit":
            self._do(t.stop_unit(name))
        else:
            self._do(t.remove_file(name, self.state_dir, self.transport.path))

    def _health(self, pending: list[Change], handlers: list[str]) -> None:
        """Health-gate every app this run touched on the node."""
        touched = {
            c.owner.split("/", 1)[1] for c in pending if c.owner.startswith("app/") and c.action != "delete"
        }
        for h in handlers:
            if h.startswith(RESTART_UNIT):
                touched.add(h[len(RESTART_UNIT) :].removesuffix(".service"))
            elif h.startswith(RESTART_CONTAINER):
                touched.add(h[len(RESTART_CONTAINER) :])
        for name in sorted(touched):
            app = self.desired.apps.get(name)
            if app is None:
                continue
            strategy = self.strategies.get(name) or UpdateStrategy()
            task = t.health_check(
                app.health,
                host=app.bind,
                port=app.port,
                unit=app.unit,
                container=app.container,
                min_healthy_seconds=strategy.min_healthy_seconds,
            )
            self._do(t.Task(f"{task.name} {name}", task.script))
            self.emit({"event": "healthy", "node": self.outcome.node, "app": name})

    def _nginx(self, files: list[Any]) -> None:
        """Write, test, reload — or put the old files back and leave nginx on its old config."""
        written = []
        try:
            for res in files:
                written.append(res.name)
                self._do(t.write_file(res, self.state_dir, self.transport.path))
            self._do(t.nginx_test())
        except TaskFailed:
            for name in reversed(written):
                self._do(t.restore_file(name, self.state_dir, self.transport.path))
            raise
        self._do(t.nginx_reload())

    def _record(self, state: NodeState) -> None:
        self._do(t.write_state(state_path(self.state_dir), state.to_json().encode(), self.transport.path))
