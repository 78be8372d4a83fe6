"""`funops agent install|rotate-token|serve`: put the agent on nodes over SSH, roll its token, or run
it (what funops-agent.service does on the node)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from .options import InventoryOpt, RepoOpt, load_inventory
from .output import console, fail, reported

if TYPE_CHECKING:
    from ..load.project import Project

agent_app = typer.Typer(help="The funops agent: install it on nodes (over SSH), roll tokens, serve.")

NodesArg = Annotated[list[str], typer.Argument(metavar="NODE...", help="Nodes by inventory name.")]


@agent_app.command("install")
def install(nodes: NodesArg, repo: RepoOpt = Path("."), inventory: InventoryOpt = None) -> None:
    """Install or update the agent on NODE... over SSH, and pin each agent's certificate
    (agent_known_hosts; commit it). The token stays on this machine (.funops/agent/, mode 0600).
    Idempotent: an agent already as wanted is not restarted."""
    _install(nodes, repo, inventory, rotate=False)


@agent_app.command("rotate-token")
def rotate_token(nodes: NodesArg, repo: RepoOpt = Path("."), inventory: InventoryOpt = None) -> None:
    """Give NODE... a new agent token (the old one stops working at once)."""
    _install(nodes, repo, inventory, rotate=True)


@agent_app.command("upgrade")
def upgrade(
    nodes: NodesArg,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Nodes at once.")] = 1,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
) -> None:
    """Put this funops's agent on NODE... in batches: each batch's agents must answer as the new build
    before the next batch starts; the first failure halts (exit 3), later nodes untouched."""
    from ..agent.install import upgrade as run_upgrade
    from ..errors import FunopsError
    from .output import EXIT_PARTIAL

    project = _project(repo, inventory, nodes)
    done: list[str] = []
    try:
        for k, batch in enumerate(run_upgrade(project, nodes, batch_size), 1):
            done += [i.node for i in batch]
            console().print(
                f"batch {k}: " + ", ".join(f"{i.node} {i.version}" for i in batch) + " [green]healthy[/]"
            )
    except FunopsError as exc:
        left = [n for n in nodes if n not in done]
        console(stderr=True).print(f"[red]halted:[/] {escape(str(exc))}; not upgraded: {', '.join(left)}")
        raise typer.Exit(EXIT_PARTIAL) from None


@agent_app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", help="The agent's config.")] = Path(
        "/etc/funops-agent/agent.json"
    ),
) -> None:
    """Serve the agent API on this node (funops-agent.service runs this)."""
    from ..agent.server import Config
    from ..agent.server import serve as run

    run(Config.load(str(config)))


def _project(repo: Path, inventory: list[Path] | None, nodes: list[str]) -> Project:
    project = load_inventory(repo, inventory)
    unknown = sorted(set(nodes) - set(project.nodes))
    if unknown:
        fail(f"unknown node(s) {', '.join(unknown)}; known: {', '.join(sorted(project.nodes))}")
    return project


def _install(nodes: list[str], repo: Path, inventory: list[Path] | None, rotate: bool) -> None:
    from ..agent.install import install

    project = _project(repo, inventory, nodes)
    with reported():
        for done in install(project, nodes, rotate=rotate):
            what = "installed" if done.changed else "up to date"
            console().print(
                f"{done.node}: agent {done.version} {what}, certificate sha256:{done.fingerprint}"
            )
