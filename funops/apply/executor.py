"""Converge one node: its tasks in dependency order, its handlers, its health gate, its record.

Order (DESIGN §2): deletions → files → daemon-reload → units → containers → health → nginx
(write, `nginx -t`, reload; a failed test restores the old files, so nginx keeps serving the old
config) → node state. Handlers a change owes are recorded on the node *before* the first task and
cleared only once they ran, so a failure or a lost link leaves the debt visible to the next run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..compile.resources import (
    DAEMON_RELOAD,
    NGINX_RELOAD,
    RESTART_CONTAINER,
    RESTART_UNIT,
    NodeDesired,
    Resource,
    app_of_handler,
)
from ..compile.versions import image_repository
from ..diff.differ import Change, NodeDiff
from ..gather.probe import LiveFacts
from ..model.strategy import UpdateStrategy
from ..release.recorder import NodeReleases, now
from ..state.node_state import AppRecord, ManagedResource, NodeState, secrecy_record, state_path
from ..transports import Transport, TransportError
from . import tasks as t
from .artifact_tasks import place_artifact, remove_artifact

Emit = Callable[[dict[str, Any]], None]


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
    def __init__(self, message: str, ran: int) -> None:
        super().__init__(message)
        self.ran = ran  # how many tasks of the bundle ran, the failed one included


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
    releases: NodeReleases = field(default_factory=NodeReleases)
    scope: set[str] | None = None  # the apps this run covers (a rollback); None: every app
    outcome: NodeOutcome = field(init=False)
    _recorded: NodeState | None = field(init=False, default=None)  # as written by the first round trip

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
            self._record_failure(str(exc))
        except TransportError as exc:
            self.outcome.status, self.outcome.error = "unreachable", str(exc)
        self.outcome.seconds = round(time.monotonic() - started, 3)
        return self.outcome

    # ---------------------------------------------------------------------------------------

    def _run(self, tasks: list[t.Task], health: dict[int, str] | None = None) -> None:
        """Run `tasks` in one round trip (a bundle); an event per task; TaskFailed at the first
        failure, carrying how many tasks ran. `health`: task index → app, for `healthy` events."""
        if not tasks:
            return
        result = self.transport.run(t.BUNDLE_RUNNER, stdin=t.bundle(tasks).encode())
        results = t.parse_bundle(result.text())
        for r in results:
            task, ok = tasks[r.index], r.exit_code == 0
            output = r.output[-2000:]
            self.outcome.tasks.append(TaskRecord(task.name, ok, r.seconds, output))
            self.emit({"event": "task", "node": self.outcome.node, "task": task.name, "ok": ok,
                       "seconds": r.seconds, **({} if ok else {"output": output})})  # fmt: skip
            if not ok:
                raise TaskFailed(
                    f"{task.name} failed (exit {r.exit_code}): {output or 'no output'}", r.index + 1
                )
            if health and r.index in health:
                self.emit({"event": "healthy", "node": self.outcome.node, "app": health[r.index]})
        if len(results) < len(tasks):  # the bundle itself died (killed, out of disk, lost link)
            reason = (
                result.stderr.decode("utf-8", errors="replace").strip()[-500:] or f"exit {result.exit_code}"
            )
            raise TaskFailed(f"{tasks[len(results)].name} did not finish: {reason}", len(results) + 1)

    def _record_failure(self, error: str) -> None:
        """Best effort: the releases this run started are marked failed (else the next apply
        settles them: a `running` record with no live apply is failed)."""
        state = self._recorded
        if state is None or not self.releases.records:
            return
        for rec in self.releases.records:
            state.record(
                rec.model_copy(update={"status": "failed", "finished": now(), "error": error[:500]}),
                self.releases.keep,
            )
        with contextlib.suppress(TaskFailed, TransportError):
            self._run([self._record(state)])

    def _converge(self) -> None:
        path = self.transport.path
        state = NodeState.from_facts(self.facts.state)
        state.settle_interrupted()  # this run holds the node's lock: anything unfinished is dead
        keep = self.releases.keep
        for rec in self.releases.records:
            state.record(rec.model_copy(update={"status": "running"}), keep)
        handlers = self.diff.handlers()
        pending = self.diff.pending
        by_id = {r.id: r for r in self.desired.resources}
        deletes = [c for c in pending if c.action == "delete"]
        writes = [c for c in pending if c.action != "delete"]
        nginx_files = [by_id[c.id] for c in writes if c.kind == "file" and NGINX_RELOAD in c.handlers]

        # Round trip 1 — the changes. What the changes owe is recorded first.
        state.owed = sorted(set(state.owed) | set(handlers))
        changes = [self._record(state)]
        self._recorded = state.model_copy(deep=True)
        # Artifacts first: a failed or corrupt download stops the node before anything changed.
        changes += [place_artifact(by_id[c.id], path) for c in writes if c.kind == "artifact"]
        # Deletions: what runs first (containers, units), then the files they used.
        kept_images = state.images()  # a kept release may still need a removed container's image
        for change in sorted(
            deletes, key=lambda c: {"container": 0, "unit": 1, "artifact": 3}.get(c.kind, 2)
        ):
            changes.append(self._delete(change, kept_images))
        # Users of `createUser` apps come before the files they may own (idempotent: `id -u` first).
        changes += [
            t.ensure_user(u) for u in sorted({a.create_user for a in self.desired.apps.values()} - {None})
        ]
        changes += [
            t.write_file(by_id[c.id], self.state_dir, path)
            for c in writes
            if c.kind == "file" and by_id[c.id] not in nginx_files
        ]
        if DAEMON_RELOAD in handlers or any(c.kind == "unit" for c in deletes):
            changes.append(t.daemon_reload())
        restart_units = {h[len(RESTART_UNIT) :] for h in handlers if h.startswith(RESTART_UNIT)}
        start_units = {c.id.split(":", 1)[1] for c in writes if c.kind == "unit"}
        changes += [
            t.start_unit(unit, restart=unit in restart_units)
            for unit in sorted(restart_units | start_units)
            if f"unit:{unit}" in by_id
        ]
        recreated = set()
        for change in (c for c in writes if c.kind == "container"):
            res = by_id[change.id]
            if {f.field for f in change.fields} == {"status"}:
                changes.append(t.start_container(res.name))
            else:
                changes.append(t.run_container(res, path))
                recreated.add(res.name)
        for handler in handlers:
            name = handler[len(RESTART_CONTAINER) :]
            if (
                handler.startswith(RESTART_CONTAINER)
                and name not in recreated
                and f"container:{name}" in by_id
            ):
                changes.append(t.run_container(by_id[f"container:{name}"], path))  # re-reads its env file
        self._run(changes)

        # Round trip 2 — health gate, then nginx (tested before the reload), then the record.
        checks = self._health_checks(pending, handlers)
        nginx = [t.write_file(res, self.state_dir, path) for res in nginx_files]
        if nginx_files or NGINX_RELOAD in handlers:
            nginx += [t.nginx_test(), t.nginx_reload()]
        deleted = {c.id for c in deletes}
        state.managed = {k: v for k, v in state.managed.items() if k not in deleted}
        for res in self.desired.resources:
            state.managed[res.id] = ManagedResource(
                owner=res.owner, kind=res.kind, applied=dict(res.desired), **secrecy_record(res)
            )
        revisions = {r.app: r.revision.commit for r in self.releases.records}
        placed = {
            name: AppRecord(
                version=app.version, release=app.release, revision=revisions.get(name, self.revision)
            )
            for name, app in sorted(self.desired.apps.items())
        }
        if self.scope is None:
            state.apps = placed
        else:  # a rollback of some apps: the others' records stay as they are
            state.apps = {k: v for k, v in state.apps.items() if k not in self.scope} | placed
        state.owed = []
        for rec in self.releases.records:
            state.record(rec.model_copy(update={"status": "succeeded", "finished": now()}), keep)
        for undone in self.releases.rolls_back:
            state.set_status(undone, "rolled_back")
        tasks = [task for task, _ in checks] + nginx + self._housekeeping(state) + [self._record(state)]
        try:
            self._run(tasks, health={i: app for i, (_, app) in enumerate(checks)})
        except TaskFailed as exc:
            reloaded = len(nginx) > len(nginx_files) and exc.ran > len(checks) + len(nginx)
            if reloaded:  # a later task failed: nginx runs the new files, so they stay and are recorded
                self._record_live(nginx_files)
                raise
            # Files of the nginx step that were (or may have been) written go back to their old
            # version; nginx was not reloaded, so it keeps serving the old config.
            written = [res.name for i, res in enumerate(nginx_files) if len(checks) + i < exc.ran]
            if written:
                self._run([t.restore_file(name, self.state_dir, path) for name in reversed(written)])
            raise

    def _record_live(self, nginx_files: list[Resource]) -> None:
        """What the failure record says is live: the nginx files a successful reload activated."""
        if self._recorded is not None:
            for res in nginx_files:
                self._recorded.managed[res.id] = ManagedResource(
                    owner=res.owner, kind=res.kind, applied=dict(res.desired)
                )
            self._recorded.owed = [h for h in self._recorded.owed if h != NGINX_RELOAD]
            if not self.releases.records:  # else _record_failure writes it, with the releases
                with contextlib.suppress(TaskFailed, TransportError):
                    self._run([self._record(self._recorded)])

    def _housekeeping(self, state: NodeState) -> list[t.Task]:
        """Keep what the kept releases need to be restored, and only that: file contents in the
        artifact store, and (for apps that clean their images up) the images."""
        files = [
            (spec.desired["sha256"], spec.id.split(":", 1)[1])
            for rec in self.releases.records
            for spec in rec.resources
            if spec.kind == "file"
        ]
        tasks = [t.keep_artifacts(self.state_dir, files, state.artifacts(), self.transport.path)]
        images = {
            image
            for recs in state.releases.values()
            for rec in recs
            if rec.app in self.cleanup_images
            for image in rec.images()
        } | {
            r.run_spec["image"]
            for r in self.desired.resources
            if r.kind == "container" and r.run_spec and r.owner.split("/", 1)[-1] in self.cleanup_images
        }
        repositories = {image_repository(image) for image in images if "@" not in image}
        if repositories:
            tasks.append(t.prune_images(repositories, state.images() | images))
        return tasks

    def _delete(self, change: Change, kept_images: set[str]) -> t.Task:
        name = change.id.split(":", 1)[1]
        if change.kind == "container":
            app = change.owner.split("/", 1)[-1]
            return t.remove_container(name, remove_image=app in self.cleanup_images, keep_images=kept_images)
        if change.kind == "unit":
            return t.stop_unit(name)
        if change.kind == "artifact":
            return remove_artifact(name, self.transport.path)
        return t.remove_file(name, self.state_dir, self.transport.path)

    def _health_checks(self, pending: list[Change], handlers: list[str]) -> list[tuple[t.Task, str]]:
        """A health check for every app this run touched on the node (with the app it gates)."""
        touched = {
            c.owner.split("/", 1)[1] for c in pending if c.owner.startswith("app/") and c.action != "delete"
        }
        touched |= {app for h in handlers if (app := app_of_handler(h))}
        checks = []
        for name in sorted(touched):
            app = self.desired.apps.get(name)
            if app is None:
                continue
            strategy = self.strategies.get(name) or UpdateStrategy()
            task = t.health_check(
                name, app.health, host=app.bind, port=app.port, unit=app.unit, container=app.container,
                min_healthy_seconds=strategy.min_healthy_seconds,
            )  # fmt: skip
            checks.append((task, name))
        return checks

    def _record(self, state: NodeState) -> t.Task:
        return t.write_state(state_path(self.state_dir), state.to_json().encode(), self.transport.path)
