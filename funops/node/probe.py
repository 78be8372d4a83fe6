"""The gather probe as the node sees it: one POSIX sh script per node (no Python needed there),
assembled from the fragments of the resource kinds involved (funops/kinds/), plus the node's own
facts (disk, nginx, state file, lock, key); and the same sections read in-process by the agent
(`read_kinds`, `node_section`). The script is built from data with shlex.quote, so it can be
asserted in unit tests. Node side: the standard library only (docs/architecture.md). Its parser is
gather/probe.py.
"""

from __future__ import annotations

import base64
import os
import shlex
import time
from collections.abc import Callable, Iterable

from .. import kinds
from ..ids import ResourceId

MARK = "@@funops "
KEY_FILE = "fingerprint.key"

# The node's own files (state, lock info) are printed base64-encoded: no content can end a section early
# or forge a marker (a state file without a final newline once put the next marker on its last line).
_NODE = """\
echo '@@funops df'; df -P -- {root} 2>/dev/null | tail -n 1
echo '@@funops nginx'; (command -v nginx >/dev/null 2>&1 && nginx -v 2>&1) || echo absent
{dockerps}echo '@@funops state'
if [ -e {state} ] || [ -L {state} ]; then
  if s=$(base64 < {state} 2>/dev/null); then echo present; printf '%s\n' "$s"; else echo unreadable; fi
fi
echo '@@funops key'; base64 < {key} 2>/dev/null
echo '@@funops lock'; if [ -d {lock} ]; then printf '%s\n' "$(base64 < {lock}/info 2>/dev/null)"
  echo "expires=$(cat -- {lock}/expires 2>/dev/null)"; echo "now=$(date +%s)"; fi
"""
_END = "echo '@@funops end'\n"
_DOCKERPS = "echo '@@funops dockerps'; (docker ps -q 2>/dev/null | wc -l) || echo 0\n"


def build_script(
    resource_ids: Iterable[str],
    state_path: str,
    path: Callable[[str], str],
    node_facts: bool = True,
    containers: bool = True,
) -> str:
    """The probe for the resources with these ids (`file:/etc/x`, `unit:web.service`, …). Without
    `node_facts` it prints only the kinds' sections and no end marker: the agent adds those itself
    (`node_section`). Without `containers` the running containers are not counted."""
    parts = ["export LC_ALL=C"]
    parts += [kind.probe(names, path) for kind, names in _by_kind(resource_ids)]
    if not node_facts:
        return "\n".join(parts)
    lock, key = _beside_state(state_path)
    parts.append(
        _NODE.format(
            root=shlex.quote(path("/")),
            state=shlex.quote(path(state_path)),
            lock=shlex.quote(path(lock)),
            key=shlex.quote(path(key)),
            dockerps=_DOCKERPS if containers else "",
        )
    )
    return "\n".join(parts) + _END


def read_kinds(resource_ids: Iterable[str], path: Callable[[str], str]) -> tuple[str, list[str]]:
    """The kinds' sections read in this process (`ResourceKind.read`: the agent), and the ids of the
    resources whose kinds still need their sh fragment (`build_script`)."""
    read, rest = [], []
    for kind, names in _by_kind(resource_ids):
        text = kind.read(names, path)
        if text is None:
            rest += [kind.resource_id(n) for n in names]
        else:
            read.append(text)
    return "".join(read), rest


def _by_kind(resource_ids: Iterable[str]) -> list[tuple[kinds.ResourceKind, list[str]]]:
    """The resources' names by kind, in the registry's order (the probe's sections' order)."""
    by_kind: dict[str, set[str]] = {}
    for rid in resource_ids:
        by_kind.setdefault(kinds.kind_of(rid).name, set()).add(ResourceId(rid).name)
    return [(kind, sorted(by_kind[name])) for name, kind in kinds.REGISTRY.items() if name in by_kind]


def node_section(
    state_path: str, nginx_version: Callable[[], str | None], containers: Callable[[], int] | None
) -> str:
    """What `_NODE` prints, read in-process (the agent): free disk, nginx's version, the running
    containers, the state file, the digest key and the lock, then the end marker. The caller says how
    to learn nginx's version (it caches it) and the container count (the engine's API; None: not
    counted)."""
    lock, key_file = _beside_state(state_path)
    disk = os.statvfs("/")
    kib = disk.f_frsize // 1024 or 1
    total, free, avail = disk.f_blocks * kib, disk.f_bfree * kib, disk.f_bavail * kib
    used_pct = round(100 * (total - free) / max(total - free + avail, 1))
    out = [f"{MARK}df", f"rootfs {total} {total - free} {avail} {used_pct}% /", f"{MARK}nginx"]
    out.append(f"nginx version: nginx/{v}" if (v := nginx_version()) else "absent")
    if containers is not None:
        out += [f"{MARK}dockerps", str(containers())]
    out.append(f"{MARK}state")
    if os.path.lexists(state_path):
        data = _read(state_path)
        out += ["unreadable"] if data is None else ["present", base64.b64encode(data).decode()]
    out.append(f"{MARK}key")
    key = _read(key_file)
    if key is not None:
        out.append(base64.b64encode(key).decode())
    out.append(f"{MARK}lock")
    if os.path.isdir(lock):
        info, expires = (
            _read(f"{lock}/info") or b"",
            (_read(f"{lock}/expires") or b"").decode(errors="replace"),
        )
        out += [base64.b64encode(info).decode(), f"expires={expires.strip()}", f"now={int(time.time())}"]
    return "\n".join([*out, f"{MARK}end"]) + "\n"


def _beside_state(state_path: str) -> tuple[str, str]:
    """The apply lock and the digest key, beside the state file (apply/lock.py)."""
    state_dir = state_path.rsplit("/", 1)[0]
    return f"{state_dir}/lock", f"{state_dir}/{KEY_FILE}"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None
