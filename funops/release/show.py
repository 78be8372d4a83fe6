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
    if doc.stats is not None:
        _print_stats(doc, console)
    if doc.unreachable:
        console.print(
            f"[yellow]unreachable (their records are missing here):[/] {escape(', '.join(doc.unreachable))}"
        )


def _print_stats(doc: HistoryDoc, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    stats = doc.stats
    assert stats is not None
    tables = [("Deploys per app (nodes' records)", "app", stats.apps),
              ("Rollouts from this controller (journal)", "kind", stats.rollouts)]  # fmt: skip
    for title, first, rows in tables:
        if not rows:
            console.print(f"[dim]{title}: none since {escape(stats.since)} ({escape(stats.window)}).[/]")
            continue
        table = Table(title=f"{title}, last {escape(stats.window)}", title_justify="left")
        for col in (first, "runs", "succeeded", "success rate", "median", "p95"):
            table.add_column(col)
        for f in rows:
            rate = f"{f.success_rate:.0%}" if f.success_rate is not None else "-"
            table.add_row(
                escape(f.name),
                str(f.runs),
                str(f.succeeded),
                rate,
                _seconds(f.median_seconds),
                _seconds(f.p95_seconds),
            )
        console.print(table)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
