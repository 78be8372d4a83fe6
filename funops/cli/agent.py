"""`funops agent install|rotate-token|serve`: put the agent on nodes over SSH, roll its token, or run
it (what funops-agent.service does on the node)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import InventoryOpt, RepoOpt, load_inventory
from .output import console, fail, reported

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


def _install(nodes: list[str], repo: Path, inventory: list[Path] | None, rotate: bool) -> None:
    from ..agent.install import install

    project = load_inventory(repo, inventory)
    unknown = sorted(set(nodes) - set(project.nodes))
    if unknown:
        fail(f"unknown node(s) {', '.join(unknown)}; known: {', '.join(sorted(project.nodes))}")
    with reported():
        for done in install(project, nodes, rotate=rotate):
            what = "installed" if done.changed else "up to date"
            console().print(
                f"{done.node}: agent {done.version} {what}, certificate sha256:{done.fingerprint}"
            )
