"""The one interface every transport implements: run a shell script on the node, map a path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import FunopsError

if TYPE_CHECKING:
    from ..model.inventory import Node


class TransportError(FunopsError):
    """The node could not be reached or the command could not be run (not: it ran and failed)."""


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


class Transport(Protocol):
    node: Node

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        """Run a POSIX sh script on the node as root; raise TransportError if it cannot be run."""

    def path(self, node_path: str) -> str:
        """Where `node_path` is for the scripts this transport runs (a root prefix for local nodes)."""

    def close(self) -> None: ...
