"""`funops prometheus targets|ca`: what a Prometheus server needs to scrape the agents (file-based
service discovery and the certificates to verify them with). See README.md, Monitoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .options import InventoryOpt, RepoOpt, load_inventory
from .output import EXIT_OK, EXIT_UNREACHABLE, console, fail

prometheus_app = typer.Typer(
    help="Prometheus: the agents as scrape targets, and the CA bundle to verify them."
)
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", metavar="FILE", help="Write it here (replaced whole, atomically); default: stdout."
    ),
]


@prometheus_app.command("targets")
def targets(repo: RepoOpt = Path("."), inventory: InventoryOpt = None, out: OutOpt = None) -> None:
    """The inventory's agent nodes as Prometheus file_sd JSON (target: the agent's host:port; labels:
    node, transport, address, mode, cohort and the inventory labels). Nodes without an agent (ssh,
    local) have no /metrics: they are left out and named on stderr. Exit 0."""
    from ..observe.targets import file_sd

    project = load_inventory(repo, inventory)
    found = file_sd(project)
    for node, why in found.skipped.items():
        console(stderr=True).print(f"[dim]{escape(node)}: left out ({escape(why)})[/]")
    _write(json.dumps(found.groups, indent=2) + "\n", out)


@prometheus_app.command("ca")
def ca(repo: RepoOpt = Path("."), inventory: InventoryOpt = None, out: OutOpt = None) -> None:
    """The PEM bundle Prometheus verifies the agents with (tls_config ca_file): each agent's
    self-signed certificate, checked against the pin `agent install` recorded (read from
    certs/agents/, else fetched from the agent). Exit 0; 4 when some agent's certificate could not be
    given (named on stderr; the others are written)."""
    from ..observe.targets import bundle, pinned_certificates

    project = load_inventory(repo, inventory)
    pinned, problems = pinned_certificates(project)
    err = console(stderr=True)
    for node, why in problems.items():
        err.print(f"[yellow]warning:[/] {escape(node)}: {escape(why)}")
    for p in pinned:
        if not p.verifiable:
            err.print(
                f"[yellow]warning:[/] {escape(p.node)}: its agent certificate does not name "
                f"{escape(p.target)} (made before funops put the agent's address in it): Prometheus "
                "will refuse it. Remove /etc/funops-agent/tls/ on the node, then "
                f"`funops agent install {escape(p.node)}` and restart funops-agent."
            )
    if not pinned:
        fail("no agent certificate to give: " + ("; ".join(problems.values()) or "no node has an agent"))
    _write(bundle(pinned), out)
    raise typer.Exit(EXIT_UNREACHABLE if problems else EXIT_OK)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    from ..observe.export import write_replacing

    problem = write_replacing(out, text)
    if problem:
        fail(f"cannot write {problem}")
    console(stderr=True).print(f"wrote {escape(str(out))}")
