"""What running tasks on a node gives back, whichever runner ran them (the sh bundle, the agent's
native runner) and however they reached the node: the results and the one error of not reaching it.
Standard library only: the node side returns these too."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FunopsError


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
