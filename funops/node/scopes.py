"""Who may do what on the agent: token scopes, the tokens file, and which files a read may return.

Scopes are ranked: `metrics` (GET /metrics, nothing else: a Prometheus scrape) < `read` (hello, gather,
status, logs) < `apply` (tasks: root on the node) < `admin` (managing the agent's tokens). The token
`agent install` made (token.sha256) and an operator CA's client certificate are `admin`. Further
tokens, each with a name and a scope, are kept in tokens.json beside token.sha256: their sha256 only,
never the token. Both files are read per request, so a new or revoked token counts at once. Node
side: the standard library only (Python 3.9).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import threading
from typing import Any

SCOPES = ("metrics", "read", "apply", "admin")  # each includes the ones before it
INSTALL_TOKEN = "install"  # the name the request log gives the token `agent install` made
# Beyond what a node's funops.yaml allows: what gather and diffs read (the state dir and its artifact
# store, unit files funops writes, nginx's conf.d). agent.json's readRoots replaces the allowed roots.
DEFAULT_READ_ROOTS = ("/etc/funops", "/etc/nginx/conf.d", "/srv", "/opt", "/var/lib", "/etc/systemd/system")
# Never returned, whatever a root says: the agent's own config, key and tokens, and the host's secrets.
NEVER_READ = ("/etc/funops-agent", "/etc/shadow", "/etc/gshadow", "/etc/ssh", "/root")


class Forbidden(Exception):
    """Authenticated, but not allowed this (403)."""


def rank(scope: str) -> int:
    return SCOPES.index(scope)


def need(have: str, wanted: str, what: str) -> None:
    """Refuse `what` unless `have` includes the scope `wanted`; the message names the scope needed."""
    if rank(have) < rank(wanted):
        raise Forbidden(f"{what} needs a token with scope {wanted} (or higher); this one has scope {have}")


def tokens_file(token_sha256_file: str) -> str:
    return os.path.join(os.path.dirname(token_sha256_file), "tokens.json")


def scope_of(token: str, token_sha256_file: str, named_file: str) -> str | None:
    """The scope of `token`: admin for the install token, a named token's own; None: not a token here."""
    found = identify(token, token_sha256_file, named_file)
    return found[0] if found else None


def identify(token: str, token_sha256_file: str, named_file: str) -> tuple[str, str] | None:
    """(scope, name) of `token` (the install token is INSTALL_TOKEN); None: not a token here. Every
    stored hash is compared (in constant time each), so the time says nothing of which matched."""
    got = hashlib.sha256(token.encode()).hexdigest()
    found = None
    want = _read(token_sha256_file).strip()
    if want and hmac.compare_digest(got, want):
        found = ("admin", INSTALL_TOKEN)
    for name, entry in load(named_file).items():
        if hmac.compare_digest(got, entry["sha256"]) and found is None:
            found = (entry["scope"], name)
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, ValueError):
        return ""  # no file (or not ASCII): nobody gets in by it


def load(path: str) -> dict[str, dict[str, str]]:
    """Named tokens: {name: {sha256, scope}}; an unreadable or malformed file counts as none."""
    try:
        doc = json.loads(_read(path) or "{}")
    except ValueError:
        return {}
    tokens = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(tokens, dict):
        return {}
    return {
        name: entry
        for name, entry in tokens.items()
        if isinstance(entry, dict)
        and entry.get("scope") in SCOPES
        and isinstance(entry.get("sha256"), str)
        and len(entry["sha256"]) == 64
    }


_WRITING = threading.Lock()


def store(path: str, name: str, entry: dict[str, str] | None) -> None:
    """Add or replace the token `name` ({sha256, scope}), or drop it (None); written aside, 0600, renamed."""
    with _WRITING:
        tokens = load(path)
        if entry is None:
            tokens.pop(name, None)
        else:
            tokens[name] = entry
        aside = f"{path}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"tokens": tokens}, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(aside, path)


def check_token_entry(body: dict[str, Any]) -> tuple[str, dict[str, str] | None]:
    """A /v1/tokens request: {name, scope, sha256} to add or replace, {name, revoke: true} to drop."""
    name = body.get("name")
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 64
        or not all(c.isascii() and (c.isalnum() or c in "-_.@") for c in name)
    ):
        raise ValueError("tokens: name: 1-64 of A-Z a-z 0-9 - _ . @")
    if body.get("revoke") is True:
        return name, None
    scope, digest = body.get("scope"), body.get("sha256")
    if scope not in SCOPES:
        raise ValueError(f"tokens: scope: one of {', '.join(SCOPES)}")
    if not isinstance(digest, str) or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError("tokens: sha256: 64 lowercase hex digits (the token's hash, never the token)")
    return name, {"scope": scope, "sha256": digest}


# ---- what a read may return ----------------------------------------------------------------------------


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


def readable(path: str, roots: tuple[str, ...], never: tuple[str, ...]) -> bool:
    """Whether a read may return `path`: absolute, under a root funops manages (as written and once
    its links are followed: a managed link to /etc/shadow stays refused), and not one never read."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        return False
    for p in {os.path.normpath(path), os.path.realpath(path)}:
        if any(_under(p, n) for n in never) or not any(_under(p, r) for r in roots):
            return False
    return True
