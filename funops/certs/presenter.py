"""HTTP-01 on every edge node at once: each token's key authorization is written (the normal write
task, through each node's own transport) under the webroot every site of a Certificate serves at
`/.well-known/acme-challenge/` on its http port, before the CA is asked to look; removed after.

A node that serves none of the names yet (the first issuance: its site names the certificate, so it
cannot be loaded before there is one) gets a bootstrap site for the time of the order — the http
server of those names with the challenge location only — removed again once the order is done.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..certificates import Edge
from ..errors import FunopsError
from ..resources import CHALLENGE_ROOT, NGINX_DIR, sha256
from ..tasks import model as m
from ..transports import Transport, TransportError

CHALLENGE_DIR = f"{CHALLENGE_ROOT}/.well-known/acme-challenge"
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # base64url (RFC 8555 §8.3)

_BOOTSTRAP = """\
# Managed by funops: the ACME HTTP-01 challenge of certificate {cert}, only while its first order runs.
server {{
    listen {listen}{port};
    server_name {names};
    server_tokens off;
    location ^~ /.well-known/acme-challenge/ {{
        root {root};
        default_type text/plain;
    }}
    location / {{
        return 404;
    }}
}}
"""


def bootstrap_path(cert: str) -> str:
    return f"{NGINX_DIR}/funops-acme-bootstrap-{cert}.conf"


@dataclass
class NodesPresenter:
    """`funops.acme.Http01Presenter` over the edge nodes of one certificate."""

    cert: str
    domains: tuple[str, ...]
    edges: list[Edge]
    connect: Callable[[str], Transport]
    emit: Callable[[dict[str, Any]], None]
    _boots: list[Edge] = field(default_factory=list)

    def present(self, tokens: dict[str, str]) -> None:
        for token in tokens:
            if not TOKEN.fullmatch(token):
                raise FunopsError(f"certificate {self.cert}: the CA sent a token that is not base64url")
        writes = [
            m.WriteFile(f"{CHALLENGE_DIR}/{token}", sha256(auth.encode()), "0644", "root", "root", None,
                        auth.encode(), label=f"acme-challenge {token[:12]}…")
            for token, auth in sorted(tokens.items())
        ]  # fmt: skip
        self._boots = [e for e in self.edges if not e.served]

        host = next((d for d in self.domains if not d.startswith("*.")), "")

        def tasks(edge: Edge) -> list[m.Task]:
            # Every node must answer every token: the CA may ask any of them.
            checks = [
                m.CheckChallenge(edge.address, edge.port, host, token, sha256(auth.encode()))
                for token, auth in sorted(tokens.items())
            ]
            if edge.files_only:
                return writes
            if edge.served:
                return [*writes, *checks]
            names = " ".join(d for d in self.domains if not d.startswith("*."))
            site = _BOOTSTRAP.format(
                cert=self.cert, listen=edge.listen, port=edge.port, names=names, root=CHALLENGE_ROOT
            ).encode()
            boot = m.WriteFile(bootstrap_path(self.cert), sha256(site), "0644", "root", "root", None, site)
            return [*writes, boot, m.NginxTest(), m.NginxReload(), *checks]

        failed = self._each(tasks)
        if failed:
            raise FunopsError(f"certificate {self.cert}: HTTP-01 tokens not placed on {'; '.join(failed)}")
        self.emit({"event": "acme-challenge", "certificate": self.cert, "tokens": len(tokens),
                   "nodes": [e.node for e in self.edges]})  # fmt: skip

    def cleanup(self, tokens: list[str]) -> None:
        paths = tuple(f"{CHALLENGE_DIR}/{t}" for t in tokens if TOKEN.fullmatch(t))
        boots = {e.node for e in self._boots}

        def tasks(edge: Edge) -> list[m.Task]:
            if edge.node not in boots or edge.files_only:
                return [m.DeletePaths(paths)]
            return [m.DeletePaths((*paths, bootstrap_path(self.cert))), m.NginxTest(), m.NginxReload()]

        for problem in self._each(tasks):
            self.emit({"event": "warning", "message": f"certificate {self.cert}: cleanup on {problem}"})

    def _each(self, tasks: Callable[[Edge], list[m.Task]]) -> list[str]:
        """Run each edge's tasks in parallel; the nodes that failed, each with why."""

        def one(edge: Edge) -> str | None:
            todo = tasks(edge)
            try:
                results, _ = self.connect(edge.node).run_tasks(todo)
            except TransportError as exc:
                return f"{edge.node}: {exc}"
            bad = next((r for r in results if r.exit_code != 0), None)
            if bad is not None:
                return f"{edge.node}: {todo[bad.index].name} failed: {bad.output[-300:] or 'no output'}"
            if len(results) < len(todo):
                return f"{edge.node}: {todo[len(results)].name} did not finish"
            return None

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(self.edges)))) as pool:
            return [p for p in pool.map(one, self.edges) if p]
