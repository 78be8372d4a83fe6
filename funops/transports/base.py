"""The one interface every transport implements: run a shell script on the node, map a path."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..tasks.results import CommandResult, StepResult, TransportError

__all__ = ["CommandResult", "StepResult", "Transport", "TransportError"]

if TYPE_CHECKING:
    from ..model.inventory import Node
    from ..tasks.model import Task


class Transport(Protocol):
    """Typed tasks in, results out: how they reach the node (a sh bundle, the agent) is the
    transport's. Raises TransportError when the node cannot be reached or the task cannot be run."""

    node: Node

    def call(self, task: Task, timeout: float | None = None) -> CommandResult:
        """Run one task alone (a read, a lock step): its exit code and output."""

    def run_tasks(
        self, tasks: list[Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        """Run tasks in order in one round trip, stopping at the first failure: the results of those
        that ran, and the run's own."""

    def stream(self, task: Task, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        """Run a task whose output is a stream of lines (logs, possibly endless), calling `on_line`
        with each line as it arrives; its exit code. `close()` from another thread ends it."""

    def path(self, node_path: str) -> str:
        """Where `node_path` is for the scripts this transport runs (a root prefix for local nodes)."""

    def close(self) -> None: ...
