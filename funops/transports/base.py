"""The one interface every transport implements: run a shell script on the node, map a path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import FunopsError

if TYPE_CHECKING:
    from ..model.inventory import Node
    from ..tasks.model import Task


class TransportError(FunopsError):
    """The node could not be reached or the command could not be run (not: it ran and failed)."""


@dataclass(frozen=True)
class CommandResult:
    """How a command or a task bundle ended on a node: its exit code and output."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class StepResult:
    """One task of a batch: its index in the batch, exit code, duration and output."""

    index: int
    exit_code: int
    seconds: float
    output: str
    not_run: str = ""  # why the transport did not run it (a host-wide action on a local root node)


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
