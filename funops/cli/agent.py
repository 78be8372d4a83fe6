"""`funops agent install|rotate-token|upgrade|serve|token|ca|pull-key`: put the agent on nodes over SSH,
roll its token, run it (what funops-agent.service does on the node), named tokens with scopes, keep
the operator CA for mTLS and pull mode's signing key."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from .options import InventoryOpt, RepoOpt, load_inventory
from .output import console, fail, reported

if TYPE_CHECKING:
    from ..agent.ca import Issued
    from ..load.project import Project

agent_app = typer.Typer(
    rich_markup_mode="markdown",
    help="The funops agent: install it on nodes (over SSH), roll tokens, mTLS CA, serve.",
)

ca_app = typer.Typer(
    rich_markup_mode="markdown",
    help="The operator CA: client certificates the agents accept instead of a token.",
)
agent_app.add_typer(ca_app, name="ca")

token_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Named agent tokens with a scope: metrics, read (plan, status, logs), apply, admin.",
)
agent_app.add_typer(token_app, name="token")

pull_key_app = typer.Typer(
    rich_markup_mode="markdown", help="Pull mode's signing key: CI signs what it publishes, nodes verify."
)
agent_app.add_typer(pull_key_app, name="pull-key")

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
    from ..node.server import Config
    from ..node.server import serve as run

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


TokenName = Annotated[str, typer.Argument(metavar="NAME", help="The token's name (monitoring, ci, ...).")]
TokenNodes = Annotated[
    list[str] | None, typer.Argument(metavar="NODE...", help="Nodes by name; default: every agent.")
]
ScopeHelp = (
    "metrics: GET /metrics only (Prometheus); read: + hello, plan (gather), status, logs; apply: + tasks "
    "(root on the node); admin: + tokens."
)


@token_app.command("create")
def token_create(
    name: TokenName,
    nodes: TokenNodes = None,
    scope: Annotated[str, typer.Option("--scope", help=ScopeHelp)] = "read",
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
) -> None:
    """Give the agents on NODE... the token NAME with --scope (sent as its sha256 over each agent, with
    this repo's admin token or client certificate). The token stays here: .funops/agent/tokens/NAME.token
    (0600); hand it to whoever needs it (their inventory's agent tokenFile or tokenFromEnv)."""
    from ..agent import tokens

    project = load_inventory(repo, inventory)
    with reported():
        path = tokens.create(project, name, scope, list(nodes or []))
        done = tokens.agent_nodes(project, list(nodes or []))
    where = f"{', '.join(done)}: {path} (0600, keep it out of git)"
    console().print(f"token {escape(name)} (scope {scope}) on {where}")


@token_app.command("revoke")
def token_revoke(name: TokenName, nodes: TokenNodes = None, repo: RepoOpt = Path("."),
                 inventory: InventoryOpt = None) -> None:  # fmt: skip
    """The token NAME stops working on the agents of NODE... at once."""
    from ..agent import tokens

    project = load_inventory(repo, inventory)
    with reported():
        tokens.revoke(project, name, list(nodes or []))
        done = tokens.agent_nodes(project, list(nodes or []))
    console().print(f"token {escape(name)} revoked on {', '.join(done)}")


DaysOpt = Annotated[int, typer.Option("--days", min=1, help="Validity of the client certificate.")]


@ca_app.command("init")
def ca_init(
    name: Annotated[str | None, typer.Option("--name", help="This operator (default: user@host).")] = None,
    days: DaysOpt = 90,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing CA.")] = False,
    repo: RepoOpt = Path("."),
) -> None:
    """Make the operator CA (agent_client_ca.pem: commit it; its key in .funops/agent/ca/, 0600) and
    this operator's client certificate (.funops/agent/client.crt, .key). `funops agent install` then
    ships the CA's certificate to nodes, and their agents accept its client certificates (mTLS)."""
    import getpass
    import socket

    from ..agent import ca

    root = _repo_root(repo)
    with reported():
        done = ca.init(root, name or f"{getpass.getuser()}@{socket.gethostname()}", days, force)
    console().print(f"operator CA: {ca.ca_cert_path(root)} (commit it); its key: {root / ca.CA_KEY} (0600)")
    _print_issued(done)
    console().print("next: `funops agent install NODE...` ships the CA to the nodes")


@ca_app.command("issue")
def ca_issue(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Another operator, a CI runner.")],
    days: DaysOpt = 90,
    repo: RepoOpt = Path("."),
) -> None:
    """A client certificate for NAME from the operator CA (.funops/agent/clients/NAME.crt, .key): hand
    it over, and point the inventory's agent clientCert/clientKey at it (or put it at
    .funops/agent/client.crt, .key in that checkout)."""
    from ..agent import ca

    with reported():
        _print_issued(ca.issue(_repo_root(repo), name, days))


@pull_key_app.command("init")
def pull_key_init(
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key pair.")] = False,
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
) -> None:
    """Make pull mode's ed25519 signing key pair: the public key in the repo (settings pull.publicKey:
    commit it; `funops agent install` gives it to pull nodes), the private key in
    .funops/pull-signing.key (or pull.signingKeyFile; 0600, never commit it)."""
    from ..pull import keys

    project = load_inventory(_repo_root(repo), inventory)
    with reported():
        private, public = keys.init(project, force)
    env = project.settings.pull.signing_key_from_env
    console().print(f"public key: {public} (commit it); private key: {private} (0600, keep it out of git)")
    console().print(
        f"CI that runs `funops publish` needs the private key in ${env}; "
        "next: `funops agent install NODE...` gives the public key to the pull nodes"
    )


def _repo_root(repo: Path) -> Path:
    root = repo.resolve()
    if not (root / "funops.yaml").is_file():
        fail(f"{root}: not a funops repo (no funops.yaml)")
    return root


def _print_issued(done: Issued) -> None:
    console().print(
        f"client certificate {escape(done.name)}: {done.cert}, key {done.key} (0600), "
        f"valid until {done.not_after:%Y-%m-%d %H:%M} UTC"
    )
