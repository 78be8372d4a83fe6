"""`funops publish` (CI, on merge to main) and `funops status` (how far the pull-mode nodes got)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from .options import (
    InventoryOpt,
    MetricsPushOpt,
    MetricsTextfileOpt,
    OutputOpt,
    RepoOpt,
    RevisionOpt,
    exports_metrics,
    load,
    load_inventory,
)
from .output import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, Output, console, reported

StoreOpt = Annotated[
    str | None, typer.Option("--store", help="The store's directory (default: pull.store in funops.yaml).")
]
CohortOpt = Annotated[str | None, typer.Option("--cohort", help="Only the nodes of this cohort.")]


@exports_metrics("publish")
def publish(
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    store: StoreOpt = None,
    cohort: CohortOpt = None,
    apply_after: Annotated[
        float, typer.Option("--apply-after", min=0, help="Nodes apply it no sooner than this many seconds.")
    ] = 0,
    output: OutputOpt = Output.text,
    metrics_push: MetricsPushOpt = None,
    metrics_textfile: MetricsTextfileOpt = None,
) -> None:
    """Compile the repo and publish to each pull-mode node its own bundle (sealed to its agent's
    certificate: only that node can read its secrets) and a signed index; the nodes' timers pick it
    up. A node whose bundle did not change keeps its generation (its index is only signed again)."""
    from ..certs.phase import CertificateFailed
    from ..observe.deploy import record as record_metrics
    from ..pull.publish import publish as run
    from ..pull.store import open_store

    project = load(repo, revision, inventory)
    with reported():
        target = open_store(store or project.settings.pull.store, project.root)
        try:
            done = run(project, target, cohort, apply_after)
        except CertificateFailed as exc:  # nothing was published; every node keeps its certificate
            console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}; nothing was published")
            raise typer.Exit(EXIT_PARTIAL) from None
    record_metrics(published=done)
    if output is Output.json:
        typer.echo(json.dumps({"formatVersion": 1, "published": [p.__dict__ for p in done]}, indent=1))
        return
    out, lines = console(), Text()  # one Text, no markup to parse: 5,000 lines' print() took ≈ 4 s
    for p in done:
        what = f"generation {p.generation}" + ("" if p.changed else " (unchanged, signed again)")
        lines.append(p.node).append(f" (cohort {p.cohort})", style="dim").append(f": {what}\n")
    out.print(lines, end="")
    changed = sum(p.changed for p in done)
    out.print(
        f"Published to {target.url}: {changed} node(s) with a new bundle, {len(done) - changed} unchanged."
    )


def status(
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    store: StoreOpt = None,
    cohort: CohortOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Until all converged or one failed (or --timeout).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds --wait waits at most.")] = 900,
    output: OutputOpt = Output.text,
) -> None:
    """Where each pull-mode node stands against what is published for it. Exit 0: all converged the
    published generation; 3: some failed (or refused what was published); 4: some are not reporting,
    stale (no poll reached the store for 2 intervals + splay) or not there yet."""
    from ..pull.publish import pull_nodes
    from ..pull.status import CONVERGED, FAILED, read_statuses, settled
    from ..pull.store import open_store

    project = load_inventory(repo, inventory)
    with reported():
        names = pull_nodes(project, cohort)
        where = store or project.settings.pull.store
        target = open_store(where, project.root) if where else None
    deadline = time.monotonic() + timeout
    while True:
        found = read_statuses(project, names, target)
        if not wait or settled(found) or time.monotonic() > deadline:
            break
        time.sleep(2)
    if output is Output.json:
        typer.echo(json.dumps({"formatVersion": 1, "nodes": [s.to_doc() for s in found]}, indent=1))
    else:
        out = console()
        if not found:
            which = f" in cohort {cohort!r}" if cohort else ""
            out.print(f"No node{which} is in pull mode (an inventory node's pull: section).")
        for s in found:
            color = {CONVERGED: "green", FAILED: "red"}.get(s.state, "yellow")
            gens = f"applied {s.applied if s.applied is not None else '-'} / published {s.published or '-'}"
            out.print(f"[{color}]{s.state:<13}[/] {s.node} [dim](cohort {s.cohort})[/] {gens}"
                      + (f": {s.detail}" if s.detail else ""), highlight=False)  # fmt: skip
    if any(s.state == FAILED for s in found):
        raise typer.Exit(EXIT_PARTIAL)
    if any(s.state != CONVERGED for s in found):
        raise typer.Exit(EXIT_UNREACHABLE)
    raise typer.Exit(EXIT_OK)
