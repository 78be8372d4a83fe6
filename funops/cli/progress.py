"""Rollout progress: lines for people, or one JSON object per line (events) for machines."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from typing import Any

from rich.markup import escape

STATUS_STYLE = {
    "succeeded": "green",
    "unchanged": "dim",
    "failed": "red",
    "unreachable": "red",
    "skipped": "yellow",
}


class Progress:
    def __init__(self, console: Any, json_events: bool) -> None:
        self.console = console
        self.json_events = json_events
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self.json_events:  # each event says when (UTC, RFC 3339): CI logs interleave
                event = {**event, "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}
                sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
                sys.stdout.flush()
                return
            self._print(event)

    def _print(self, e: dict[str, Any]) -> None:
        kind = e["event"]
        c = self.console
        if kind == "start":
            what = {"deploy": "Applying", "rollback": "Rolling back", "auto-rollback": "Auto rollback"}
            made = ", ".join(sorted(e.get("releases", {}).values()))
            c.print(
                f"\n[bold]{what.get(e.get('kind', 'deploy'), 'Applying')}[/]"
                + (f" (release {made})" if made else "")
                + f" in {len(e['batches'])} batch(es): "
                + " | ".join(", ".join(b) for b in e["batches"])
            )
        elif kind == "auto-rollback":
            if e["to"]:
                c.print(
                    f"\n[yellow bold]auto rollback:[/] {e['app']} {e['from']} → {e['to']} "
                    f"on {', '.join(e['nodes'])}"
                )
            else:
                c.print(f"[yellow]auto rollback: {e['app']} has no earlier succeeded release to return to[/]")
        elif kind == "batch-start":
            c.print(f"[bold]batch {e['batch']}/{e['of']}[/]: {', '.join(e['nodes'])}")
        elif kind == "task" and e.get("outcome") == "not-run":
            c.print(f"  [yellow]○[/] {e['node']}: {escape(e['task'])} [yellow]({escape(e['reason'])})[/]")
        elif kind == "task":
            mark = "[green]✓[/]" if e["ok"] else "[red]✗[/]"
            c.print(f"  {mark} {e['node']}: {escape(e['task'])} [dim]({e['seconds']:.2f}s)[/]")
            if not e["ok"] and e.get("output"):
                c.print(f"      [red]{escape(e['output'])}[/]")
        elif kind == "node-done":
            style = STATUS_STYLE.get(e["status"], "")
            c.print(
                f"  [{style}]{e['node']} {e['status']}[/] in {e['seconds']:.1f}s"
                + (f": {escape(e['error'])}" if e.get("error") else "")
            )
        elif kind == "batch-done":
            c.print(
                f"  batch {e['batch']} "
                + ("[green]healthy[/]" if e["healthy"] else f"[red]failed: {', '.join(e['failed'])}[/]")
            )
        elif kind == "halt":
            c.print(
                f"[red bold]halted:[/] {escape(e['reason'])}; untouched: {', '.join(e['skipped']) or 'none'}"
            )
        elif kind == "certificate-start":
            c.print(f"[bold]certificate {escape(e['certificate'])}[/]: {escape(e['reason'])}")
        elif kind == "acme-challenge":
            c.print(f"  HTTP-01: {e['tokens']} token(s) on {', '.join(e['nodes'])}")
        elif kind == "certificate-done":
            c.print(f"  [green]✓[/] certificate {escape(e['certificate'])}: serial {e['serial']}")
        elif kind == "certificate-failed":
            c.print(f"  [red]✗ {escape(e['error'])}[/] (every node keeps its certificate)")
        elif kind == "warning":
            c.print(f"  [yellow]warning:[/] {escape(e['message'])}")
        elif kind == "pause":
            c.print(f"  [dim]pausing {e['seconds']:g}s before the next batch[/]")

    def summary(self, result: Any, code: int) -> None:
        if self.json_events:
            return
        counts: dict[str, int] = {}
        for o in result.outcomes.values():
            counts[o.status] = counts.get(o.status, 0) + 1
        parts = [f"[{STATUS_STYLE.get(k, '')}]{v} {k}[/]" for k, v in sorted(counts.items())]
        self.console.print(
            f"\n[bold]Apply {result.id}[/]: {', '.join(parts)} in {result.seconds:.1f}s (exit {code})"
        )
