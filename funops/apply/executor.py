"""Converge one node: its tasks in dependency order, its handlers, its health gate, its record.

Order (each step may need what comes before it): deletions → files → daemon-reload → units →
containers → health → nginx (write, `nginx -t`, reload; a failed test restores the old files, so nginx
keeps serving the old config) → node state. Handlers a change owes are recorded on the node *before*
the first task and cleared only once they ran, so a failure or a lost link leaves the debt visible to
the next run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import FunopsError
from ..kinds.base import GatedGroup
from ..plan.program import NodeProgram, begin_state, end_state
from ..plan.releases import NodeReleases, now
from ..state.node_state import ManagedResource, NodeState, state_path
from ..tasks import model as m
from ..transports import Transport, TransportError

Emit = Callable[[dict[str, Any]], None]


@dataclass
class TaskRecord:
    name: str
    ok: bool
    seconds: float
    output: str = ""
    not_run: str = ""  # why the transport did not run it


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


class TaskFailed(FunopsError):
    def __init__(self, message: str, ran: int) -> None:
        super().__init__(message)
        self.ran = ran  # how many tasks of the bundle ran, the failed one included


@dataclass
class NodeRun:
    """One node's program run through its transport (the program was made at plan time)."""

    node: str
    program: NodeProgram
    state: NodeState  # the node's state as the plan saw it (apply confirmed it under the lock)
    transport: Transport
    state_dir: str
    emit: Emit
    releases: NodeReleases = field(default_factory=NodeReleases)  # the program's, stamped by the rollout
    outcome: NodeOutcome = field(init=False)
    _recorded: NodeState | None = field(init=False, default=None)  # as written by the first round trip

    def run(self) -> NodeOutcome:
        started = time.monotonic()
        self.outcome = NodeOutcome(self.node, "succeeded")
        try:
            if not self.program.converge:
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

    def _run(self, tasks: list[m.Task], health: dict[int, str] | None = None) -> None:
        """Run `tasks` in one round trip (a bundle); an event per task; TaskFailed at the first
        failure, carrying how many tasks ran. `health`: task index → app, for `healthy` events."""
        if not tasks:
            return
        results, result = self.transport.run_tasks(tasks)
        for r in results:
            task, ok = tasks[r.index], r.exit_code == 0
            output = r.output[-2000:]
            self.outcome.tasks.append(TaskRecord(task.name, ok, r.seconds, output, r.not_run))
            # A step the transport did not run (a host-wide action on a local node) is its own
            # outcome: neither a failure nor done.
            self.emit({"event": "task", "node": self.outcome.node, "task": task.name, "ok": ok,
                       "seconds": r.seconds, **({} if ok else {"output": output}),
                       **({"outcome": "not-run", "reason": r.not_run} if r.not_run else {})})  # fmt: skip
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
        program, records = self.program, self.releases.records
        # Round trip 1 — the changes. What the changes owe is recorded first.
        state = begin_state(self.state, program, records)
        self._recorded = state.model_copy(deep=True)
        self._run([self._record(state), *program.changes])

        # Round trip 2 — health gate, then the gated groups (nginx: tested before the reload), then
        # housekeeping and the record.
        state = end_state(state, program, records)
        checks = [task for task, _ in program.checks]
        gated = [task for group in program.gated for task in group.tasks]
        tasks = [*checks, *gated, *program.housekeeping, self._record(state)]
        try:
            self._run(tasks, health={i: app for i, (_, app) in enumerate(program.checks)})
        except TaskFailed as exc:
            self._settle_gated(program.gated, len(checks), exc.ran)
            raise

    def _settle_gated(self, groups: list[GatedGroup], start: int, ran: int) -> None:
        """After a failure in the second round trip: a group that finished is live (its files stay
        and are recorded); what a group that stopped midway wrote goes back to its old version — nginx
        was not reloaded, so it keeps serving the old config."""
        finished, undo = [], []
        for group in groups:
            end = start + len(group.tasks)
            if ran > end:
                finished.append(group)
            else:
                undo += [task for i, task in enumerate(group.undo) if start + i < ran]
            start = end
        if finished:
            self._record_live(finished)
        if undo:
            self._run(list(reversed(undo)))

    def _record_live(self, groups: list[GatedGroup]) -> None:
        """What the failure record says is live: what a finished group activated."""
        if self._recorded is None:
            return
        for group in groups:
            for res in group.resources:
                self._recorded.managed[res.id] = ManagedResource(
                    owner=res.owner, kind=res.kind, applied=dict(res.desired)
                )
            self._recorded.owed = [h for h in self._recorded.owed if h != group.handler]
        if not self.releases.records:  # else _record_failure writes it, with the releases
            with contextlib.suppress(TaskFailed, TransportError):
                self._run([self._record(self._recorded)])

    def _record(self, state: NodeState) -> m.Task:
        return m.WriteState(state_path(self.state_dir), state.to_json().encode())
