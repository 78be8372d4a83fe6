"""`funops logs APP`: the app's logs from every node it runs on, each line prefixed with its node."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .options import InventoryOpt, RepoOpt, RevisionOpt, load
from .output import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, console, reported, worst

if TYPE_CHECKING:
    from ..tasks.model import ReadLogs
    from ..transports import Connections

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C


def logs(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The app, by its manifest name.")],
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node", help="Only these nodes: names, globs, labels (repeatable).", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this long ago (30s, 10m, 2h, 1d) or time (2026-11-25T08:00)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C ends).")
    ] = False,
    lines: Annotated[
        int | None, typer.Option("--lines", "-n", min=0, help="The last K lines of each node.")
    ] = None,
) -> None:
    """Print APP's logs (journal or container log) from its nodes, asked in parallel, each line
    prefixed with its node. Only what the app wrote: funops never prints its env or secrets."""
    from ..nodes.logs import log_nodes, logs_task, parse_since
    from ..transports import Connections

    project = load(repo, revision, inventory)
    with reported():
        nodes = log_nodes(project, app_name, node)
        task = logs_task(project, app_name, parse_since(since) if since else None, lines, follow)
    connections = Connections(project.nodes, project.settings, project.root)
    printer = _Printer(nodes)
    threads = [
        threading.Thread(target=printer.read, args=(connections, name, task), daemon=True) for name in nodes
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive() and not printer.broken.is_set():
                thread.join(0.2)  # short waits: Ctrl-C reaches the main thread between them
    except KeyboardInterrupt:
        printer.stopping.set()
        connections.close()  # ends every stream (ssh channels, local processes)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    printer.stopping.set()
    connections.close()
    if printer.broken.is_set():  # stdout closed (`| head`): what was asked for has been read
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(EXIT_OK)
    raise typer.Exit(worst(*printer.codes))


class _Printer:
    """Lines from the nodes' threads, whole and prefixed, one at a time."""

    def __init__(self, nodes: list[str]) -> None:
        self.width = max(len(n) for n in nodes)
        self.lock = threading.Lock()
        self.codes: list[int] = []
        self.stopping = threading.Event()
        self.broken = threading.Event()

    def read(self, connections: Connections, node: str, task: ReadLogs) -> None:
        from ..transports import TransportError

        try:
            code = connections(node).stream(task, lambda line: self.line(node, line))
        except TransportError as exc:
            self.failed(EXIT_UNREACHABLE, str(exc))
            return
        except Exception as exc:  # a bug: say so, and which node, without a traceback per thread
            self.failed(EXIT_ERROR, f"node {node}: {type(exc).__name__}: {exc}")
            return
        if code != 0:
            self.failed(EXIT_PARTIAL, f"node {node}: reading the logs failed (exit code {code})")

    def line(self, node: str, text: str) -> None:
        from ..errors import visible

        if self.stopping.is_set():
            return
        # visible(): an app's log cannot move the cursor or retitle the terminal.
        with self.lock:
            try:
                sys.stdout.write(f"{node:<{self.width}} | {visible(text)}\n")
                sys.stdout.flush()
            except BrokenPipeError:
                self.stopping.set()
                self.broken.set()

    def failed(self, code: int, message: str) -> None:
        if self.stopping.is_set():
            return
        from rich.markup import escape

        with self.lock:
            self.codes.append(code)
            console(stderr=True).print(f"[red]error:[/] {escape(message)}")
