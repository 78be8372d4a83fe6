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
    from rich.markup import escape
    from rich.table import Table

    if not console.is_terminal:  # a log or a pipe: never squeeze the columns
        console.width = max(console.width, 200)

    if not doc.releases:
        console.print(f"No release of {escape(doc.app or 'any app')} is recorded on the reachable nodes.")
    else:
        table = Table(title=f"Releases of {escape(doc.app or doc.project)}", title_justify="left")
        for col in ("release", "kind", "status", "version", "revision", "nodes", "started", "took", "who"):
            table.add_column(col)
        for r in doc.releases:
            style = STATUS_STYLE.get(r.status, "")
            kind = r.kind + (f" to {r.restores}" if r.restores else "")
            rev = (r.revision.commit or "-")[:12] + (" (dirty)" if r.revision.dirty else "")
            nodes = ", ".join(f"{n}" if s == r.status else f"{n} ({s})" for n, s in sorted(r.nodes.items()))
            # Cells are rich markup: what the nodes recorded is escaped (`[emerg]` stays visible).
            table.add_row(
                escape(r.id), escape(kind), f"[{style}]{escape(r.status)}[/]",
                escape(", ".join(r.versions) or "-"), escape(rev), escape(nodes),
                escape((r.started or "-").replace("+00:00", "Z")),
                f"{r.seconds:.0f}s" if r.seconds is not None else "-", escape(r.who or "-"),
            )  # fmt: skip
        console.print(table)
        for r in doc.releases:
            for node, error in sorted(r.errors.items()):
                console.print(f"[dim]{escape(r.id)} on {escape(node)}:[/] {escape(str(error))}")
    if doc.unreachable:
        console.print(
            f"[yellow]unreachable (their records are missing here):[/] {escape(', '.join(doc.unreachable))}"
        )
