"""The drift check's one extra round trip per node: funops-looking files that funops did not write,
and `nginx -t` where funops manages nginx files: the ProbeExtras task, and its pure parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..gather import contents
from ..gather.contents import Content
from ..plan.filediff import MAX_BYTES
from ..resources import NGINX_RELOAD, NodeDesired
from ..tasks.model import ProbeExtras
from ..transports import Transport, TransportError

MARK = "@@funops "
NGINX_OUTPUT_LINES = 6  # the tail of a failing `nginx -t` kept in the report


@dataclass
class NodeExtras:
    own_files: dict[str, str] = field(default_factory=dict)  # node path → sha256, in funops's own places
    nginx_ok: bool | None = None  # None: not tested (no managed nginx file, no nginx, a prefixed root)
    nginx_output: str = ""
    error: str | None = None  # the round trip failed: the rest of the report still stands
    contents: dict[str, Content | None] = field(default_factory=dict)  # node path → content (diffs)


def manages_nginx(desired: NodeDesired) -> bool:
    return any(NGINX_RELOAD in r.handlers for r in desired.resources)


def parse(output: str, path: Callable[[str], str]) -> NodeExtras:
    prefix = path("/")[:-1]
    extras = NodeExtras()
    section = None
    nginx: list[str] = []
    ended = False
    for line in output.splitlines():
        if line.startswith(MARK):
            tag = line[len(MARK) :].strip()
            if tag.startswith("nginx-rc "):
                extras.nginx_ok = tag.split()[1] == "0"
                extras.nginx_output = "\n".join(nginx[-NGINX_OUTPUT_LINES:])
            ended = ended or tag == "end"
            section = tag
        elif section == "own" and line.strip():
            digest, _, name = line.partition("  ")
            extras.own_files[name[len(prefix) :] if prefix and name.startswith(prefix) else name] = digest
        elif section == "nginx":
            nginx.append(line)
    if not ended:
        raise ValueError("the drift probe did not finish (no end marker)")
    return extras


def probe_extras(
    targets: dict[str, NodeDesired],
    connect: Callable[[str], Transport],
    parallel: int,
    timeout: float = 60,
    fetch: Mapping[str, Sequence[str]] | None = None,
    limit: int = MAX_BYTES,
) -> dict[str, NodeExtras]:
    """One round trip per node, all nodes in parallel; a failure is noted, never raised. `fetch`:
    node → node paths whose contents to bring back as well (for diffs)."""

    def one(name: str) -> NodeExtras:
        try:
            transport = connect(name)
            # `nginx -t` under a root prefix would test this machine's nginx, not the node's.
            test = manages_nginx(targets[name]) and transport.path("/") == "/"
            paths = sorted(set((fetch or {}).get(name, ())))
            result = transport.call(ProbeExtras(test, tuple(paths), limit), timeout=timeout)
            extras = parse(result.text(), transport.path)
            if paths:
                extras.contents = dict(zip(paths, contents.parse(result.text(), len(paths)), strict=True))
            return extras
        except (TransportError, ValueError) as exc:
            return NodeExtras(error=str(exc))

    names = sorted(targets)
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names)))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))
