"""`funops agent token create|revoke` (controller side): named tokens with a scope (scopes.py), for a
monitoring system that only reads or a CI runner that applies. The token stays on this machine
(.funops/agent/tokens/NAME.token, 0600); each node is sent its sha256 and scope only, over the agent
itself with this repo's admin credentials (the install token or an operator CA client certificate)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from ..errors import FunopsError
from ..load.project import Project
from ..node.scopes import SCOPES, check_token_entry
from ..private_file import write_private
from ..transports import TransportError
from ..transports.agent import AgentTransport

TOKENS_DIR = ".funops/agent/tokens"


def token_file(project: Project, name: str) -> Path:
    return project.root / TOKENS_DIR / f"{name}.token"


def agent_nodes(project: Project, names: list[str]) -> list[str]:
    """The nodes named, or every node with an agent: section; a named node without one is an error."""
    chosen = names or sorted(n for n, node in project.nodes.items() if node.agent is not None)
    bare = [n for n in chosen if project.nodes[n].agent is None]
    if bare:
        raise FunopsError(f"node(s) {', '.join(bare)} have no agent: section: no agent to give a token to")
    if not chosen:
        raise FunopsError("no node has an agent: section: install agents first (`funops agent install`)")
    return chosen


def create(project: Project, name: str, scope: str, nodes: list[str]) -> Path:
    """The token NAME with `scope` on each node (a token already made under this name is reused, so a
    node added later gets the same one; its scope is what is asked now). Returns the token's file."""
    if scope not in SCOPES:
        raise FunopsError(f"--scope {scope!r}: one of {', '.join(SCOPES)}")
    try:
        check_token_entry({"name": name, "revoke": True})
    except ValueError as exc:
        raise FunopsError(f"token name {name!r}: {str(exc).removeprefix('tokens: name: ')}") from None
    chosen = agent_nodes(project, nodes)
    path = token_file(project, name)
    token = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if not token:
        token = secrets.token_urlsafe(32)
        write_private(path, token.encode() + b"\n")
    digest = hashlib.sha256(token.encode()).hexdigest()
    _send(project, chosen, {"name": name, "scope": scope, "sha256": digest})
    return path


def revoke(project: Project, name: str, nodes: list[str]) -> None:
    """The token NAME stops working on each node at once (its file here is left: other nodes may
    still take it)."""
    _send(project, agent_nodes(project, nodes), {"name": name, "revoke": True})


def _send(project: Project, nodes: list[str], body: dict[str, object]) -> None:
    failed = []
    for node in nodes:
        agent = AgentTransport(project.nodes[node], project.settings, project.root)
        try:
            agent.tokens(body)
        except TransportError as exc:
            failed.append(str(exc))
        finally:
            agent.close()
    if failed:
        raise FunopsError("; ".join(failed))
