"""The gather probe: one POSIX sh script per node (no Python needed there) and its pure parser.

Each resource kind (funops/kinds/) contributes a fragment that prints tagged sections and parses
them back; this module adds the node's own facts (disk, nginx, state file, lock, key). The script is
built from data with shlex.quote, so it can be asserted in unit tests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shlex
import time
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .. import kinds
from ..ids import ResourceId

if TYPE_CHECKING:  # the node side builds probes with the standard library only
    from ..state.node_state import NodeState

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


_ALIASES = {k.facts_alias: k.name for k in kinds.REGISTRY.values()}  # facts.files → live["file"]


class LiveFacts:
    """What one node looks like now, for the resources in play: each kind's facts by resource name
    (`live[kind][name]`, also `facts.<kind alias>`, e.g. `facts.files`), and the node's own facts."""

    def __init__(
        self,
        live: dict[str, dict[str, dict[str, Any]]] | None = None,
        *,
        state: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        self.live: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in kinds.NAMES} | (live or {})
        self.systemd = True
        self.docker = True
        self.disk_free_pct: float | None = None
        self.container_count: int | None = None
        self.nginx: str | None = None
        self.state = state  # the node's funops state file, if any
        self.state_error: str | None = None
        self.lock: dict[str, Any] | None = None  # the apply lock, if held: holder info, expires, node's now
        # A local node under a root prefix (transports/local.py): only its files are probed; what acts
        # on the whole host (units, containers, owners) is taken as funops last applied it.
        self.files_only = False
        # The node's fingerprint key (see redact.py): secret-derived digests are shown only keyed with it.
        # Held in memory, never printed; None until the first apply created it.
        self.fingerprint_key: bytes | None = None
        for key, value in fields.items():
            if key in _ALIASES or key in self.__dict__:
                setattr(self, key, value)
            else:
                raise TypeError(f"LiveFacts has no field {key!r}")

    def __getattr__(self, alias: str) -> dict[str, dict[str, Any]]:
        kind = _ALIASES.get(alias)
        if kind is None:
            raise AttributeError(alias)
        return self.live[kind]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ALIASES:
            self.live[_ALIASES[name]] = value
        else:
            super().__setattr__(name, value)

    def __repr__(self) -> str:
        return f"LiveFacts(live={self.live!r}, state={self.state!r})"

    @cached_property
    def node_state(self) -> NodeState:
        """The state file, parsed once per run (gather checked it fits the format)."""
        from ..state.node_state import NodeState  # pydantic: the controller's side only

        return NodeState.from_facts(self.state)


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


def parse(output: str, path: Callable[[str], str]) -> LiveFacts:
    """Turn the probe's output back into facts; node paths are un-prefixed with `path`."""
    sections = _sections(output)
    if "end" not in sections:
        raise ValueError("the probe did not finish (no end marker)")
    facts = LiveFacts()
    unmap = unprefix(path)
    for kind in kinds.REGISTRY.values():
        facts.live[kind.name] = kind.parse(sections, unmap, facts)
    df = sections.get("df", [])
    if df:
        fields = df[0].split()
        try:
            facts.disk_free_pct = round(100.0 * int(fields[3]) / int(fields[1]), 1)
        except (IndexError, ValueError, ZeroDivisionError):
            facts.disk_free_pct = None
    nginx = " ".join(sections.get("nginx", []))
    facts.nginx = None if nginx in ("", "absent") else nginx.split("/", 1)[-1]
    if "dockerps" in sections:  # absent: not counted
        with contextlib.suppress(ValueError, IndexError):
            facts.container_count = int(sections["dockerps"][0])
    facts.state, facts.state_error = parse_state(sections.get("state", []))
    facts.lock = _lock(sections.get("lock", []))
    with contextlib.suppress(binascii.Error, ValueError):
        key = base64.b64decode("".join(sections.get("key", [])), validate=True).strip()
        facts.fingerprint_key = key if len(key) >= 32 else None
    return facts


def parse_state(lines: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The state section: nothing (no state file: a node funops never applied), `unreadable`, or
    `present` and the file base64-encoded. Returns (state, error); any doubt is an error, never an
    empty state (that would make the node forget its releases and owed handlers)."""
    if not lines:
        return None, None
    if lines[0] != "present":
        return None, "state file cannot be read (permissions, or not a regular file)"
    try:
        text = base64.b64decode("".join(lines[1:]), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, "state file is not UTF-8 text"
    if not text.strip():
        return None, "state file is empty"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"state file is not valid JSON (line {exc.lineno}: {exc.msg})"
    if not isinstance(data, dict):
        return None, f"state file holds a JSON {type(data).__name__}, not an object"
    return data, None


def _lock(lines: list[str]) -> dict[str, Any] | None:
    if not lines:
        return None
    lock: dict[str, Any] = {}
    encoded = []  # the holder's info, base64-encoded JSON (wrapped over lines)
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key in ("expires", "now"):
            lock[key] = int(value) if value.strip().isdigit() else 0
        else:
            encoded.append(line)
    with contextlib.suppress(binascii.Error, ValueError):
        info = json.loads(base64.b64decode("".join(encoded), validate=True))
        if isinstance(info, dict):
            lock.update(info)
    return lock


def _sections(output: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARK):
            current = sections.setdefault(line[len(MARK) :].strip(), [])
        elif current is not None and line.strip():
            current.append(line)
    return sections


def unprefix(path: Callable[[str], str]) -> Callable[[str], str]:
    prefix = path("/")[:-1]
    return (lambda p: p[len(prefix) :] if p.startswith(prefix) else p) if prefix else (lambda p: p)
