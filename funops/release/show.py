"""`funops history` for people: a table, newest first."""

from __future__ import annotations

from typing import Any

from .document import HistoryDoc

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "rolled_back": "yellow",
    "running": "cyan",
    "created": "dim",
}


def print_history(doc: HistoryDoc, console: Any) -> None:
    from rich.table import Table

    if not console.is_terminal:  # a log or a pipe: never squeeze the columns
        console.width = max(console.width, 200)

    if not doc.releases:
        console.print(f"No release of {doc.app or 'any app'} is recorded on the reachable nodes.")
    else:
        table = Table(title=f"Releases of {doc.app or doc.project}", title_justify="left")
        for col in ("release", "kind", "status", "version", "revision", "nodes", "started", "took", "who"):
            table.add_column(col)
        for r in doc.releases:
            style = STATUS_STYLE.get(r.status, "")
            kind = r.kind + (f" to {r.restores}" if r.restores else "")
            rev = (r.revision.commit or "-")[:12] + (" (dirty)" if r.revision.dirty else "")
            nodes = ", ".join(f"{n}" if s == r.status else f"{n} ({s})" for n, s in sorted(r.nodes.items()))
            table.add_row(
                r.id, kind, f"[{style}]{r.status}[/]", ", ".join(r.versions) or "-", rev, nodes,
                (r.started or "-").replace("+00:00", "Z"),
                f"{r.seconds:.0f}s" if r.seconds is not None else "-", r.who or "-",
            )  # fmt: skip
        console.print(table)
        for r in doc.releases:
            for node, error in sorted(r.errors.items()):
                console.print(f"[dim]{r.id} on {node}:[/] {error}")
    if doc.unreachable:
        console.print(
            f"[yellow]unreachable (their records are missing here):[/] {', '.join(doc.unreachable)}"
        )
