"""The gather probe: one POSIX sh script per node (no Python needed there) and its pure parser.

Each resource kind contributes a fragment that prints a tagged section; `parse` turns the output
into data. The script is built from data with shlex.quote, so it can be asserted in unit tests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MARK = "@@funops "
KEY_FILE = "fingerprint.key"

# The node's own files (state, lock info) are printed base64-encoded: no content can end a section early
# or forge a marker (a state file without a final newline once put the next marker on its last line).
# File facts: `stat` and `sha256sum` once for all files; a missing file just prints nothing.
_FILES = """\
echo '@@funops stat'; stat -c '%a|%U|%G|%F|%n' -- {paths} 2>/dev/null
echo '@@funops sha256'; sha256sum -- {paths} 2>/dev/null
"""
# Units: only where systemd is the running init; `systemctl show` prints one block per unit.
_UNITS = """\
echo '@@funops units'
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl show -p Id -p LoadState -p ActiveState -p SubState -p UnitFileState \
-p ActiveEnterTimestamp -p NRestarts -- {units} 2>/dev/null
else echo 'nosystemd'; fi
"""
_CONTAINER_FORMAT = (
    '{"name":{{json .Name}},"image":{{json .Config.Image}},"status":{{json .State.Status}},'
    '"startedAt":{{json .State.StartedAt}},"restarts":{{json .RestartCount}},'
    '"labels":{{json .Config.Labels}}}'
)
_CONTAINERS = """\
echo '@@funops containers'
if command -v docker >/dev/null 2>&1 && docker version -f '{{{{.Server.Version}}}}' >/dev/null 2>&1; then
  docker inspect --type container --format {fmt} -- {names} 2>/dev/null
else echo 'nodocker'; fi
"""
# Artifacts (issue 15): where each `current` link points, and the sha256 its release dir was made from.
_ARTIFACTS = """\
echo '@@funops artifacts'
funops_artifact() {{ if [ -L "$1" ]; then printf '%s|%s|%s\\n' "$1" "$(readlink -- "$1")" \\
  "$(head -c 64 -- "$1/.funops-artifact" 2>/dev/null)"; fi; }}
{calls}
"""
_NODE = """\
echo '@@funops df'; df -P -- {root} 2>/dev/null | tail -n 1
echo '@@funops nginx'; (command -v nginx >/dev/null 2>&1 && nginx -v 2>&1) || echo absent
echo '@@funops dockerps'; (docker ps -q 2>/dev/null | wc -l) || echo 0
echo '@@funops state'
if [ -e {state} ] || [ -L {state} ]; then
  if s=$(base64 < {state} 2>/dev/null); then echo present; printf '%s\n' "$s"; else echo unreadable; fi
fi
echo '@@funops key'; base64 < {key} 2>/dev/null
echo '@@funops lock'; if [ -d {lock} ]; then printf '%s\n' "$(base64 < {lock}/info 2>/dev/null)"
  echo "expires=$(cat -- {lock}/expires 2>/dev/null)"; echo "now=$(date +%s)"; fi
echo '@@funops end'
"""


@dataclass
class LiveFacts:
    """What one node looks like now, for the resources in play."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # node path → sha256/mode/owner/group/type
    units: dict[str, dict[str, str]] = field(default_factory=dict)  # unit → systemctl show properties
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → inspect fields
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)  # current link → release/sha256
    systemd: bool = True
    docker: bool = True
    disk_free_pct: float | None = None
    container_count: int | None = None
    nginx: str | None = None
    state: dict[str, Any] | None = None  # the node's funops state file, if any
    state_error: str | None = None
    lock: dict[str, Any] | None = None  # the apply lock, if held: holder info, expires, the node's now
    # The node's fingerprint key (see redact.py): secret-derived digests are shown only keyed with it.
    # Held in memory, never printed; None until the first apply created it.
    fingerprint_key: bytes | None = field(default=None, repr=False)


def build_script(resource_ids: Iterable[str], state_path: str, path: Callable[[str], str]) -> str:
    """The probe for the resources with these ids (`file:/etc/x`, `unit:web.service`, …)."""
    by_kind: dict[str, set[str]] = {"file": set(), "unit": set(), "container": set(), "artifact": set()}
    for rid in resource_ids:
        kind, name = rid.split(":", 1)
        by_kind[kind].add(name)
    files, units, containers = (sorted(by_kind[k]) for k in ("file", "unit", "container"))
    parts = ["export LC_ALL=C"]
    if files:
        parts.append(_FILES.format(paths=" ".join(shlex.quote(path(f)) for f in files)))
    if units:
        parts.append(_UNITS.format(units=" ".join(shlex.quote(u) for u in units)))
    if containers:
        parts.append(
            _CONTAINERS.format(
                fmt=shlex.quote(_CONTAINER_FORMAT), names=" ".join(shlex.quote(c) for c in containers)
            )
        )
    if by_kind["artifact"]:
        parts.append(
            _ARTIFACTS.format(
                calls="\n".join(
                    f"funops_artifact {shlex.quote(path(a))}" for a in sorted(by_kind["artifact"])
                )
            )
        )
    state_dir = state_path.rsplit("/", 1)[0]
    lock, key = state_dir + "/lock", state_dir + "/" + KEY_FILE  # beside the state file (apply/lock.py)
    parts.append(
        _NODE.format(
            root=shlex.quote(path("/")),
            state=shlex.quote(path(state_path)),
            lock=shlex.quote(path(lock)),
            key=shlex.quote(path(key)),
        )
    )
    return "\n".join(parts)


def parse(output: str, path: Callable[[str], str]) -> LiveFacts:
    """Turn the probe's output back into facts; node paths are un-prefixed with `path`."""
    sections = _sections(output)
    if "end" not in sections:
        raise ValueError("the probe did not finish (no end marker)")
    facts = LiveFacts()
    unmap = _unprefix(path)
    for line in sections.get("stat", []):
        mode, owner, group, ftype, name = line.split("|", 4)
        facts.files[unmap(name)] = {
            "mode": mode.rjust(4, "0"),
            "owner": owner,
            "group": group,
            "type": "file" if ftype.startswith("regular") else ftype,
        }
    for line in sections.get("sha256", []):
        digest, _, name = line.partition("  ")
        entry = facts.files.get(unmap(name))
        if entry is not None:
            entry["sha256"] = digest
    units = sections.get("units", [])
    if units[:1] == ["nosystemd"]:
        facts.systemd = False
    else:
        facts.units = _unit_blocks(units)
    containers = sections.get("containers", [])
    if containers[:1] == ["nodocker"]:
        facts.docker = False
    else:
        for line in containers:
            data = json.loads(line)
            facts.containers[data["name"].lstrip("/")] = data
    for line in sections.get("artifacts", []):
        link, target, sha = [*line.split("|"), "", ""][:3]
        facts.artifacts[unmap(link)] = {"release": target.rstrip("/").rsplit("/", 1)[-1], "sha256": sha}
    df = sections.get("df", [])
    if df:
        fields = df[0].split()
        try:
            facts.disk_free_pct = round(100.0 * int(fields[3]) / int(fields[1]), 1)
        except (IndexError, ValueError, ZeroDivisionError):
            facts.disk_free_pct = None
    nginx = " ".join(sections.get("nginx", []))
    facts.nginx = None if nginx in ("", "absent") else nginx.split("/", 1)[-1]
    try:
        facts.container_count = int((sections.get("dockerps") or ["0"])[0])
    except ValueError:
        facts.container_count = None
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


def _unit_blocks(lines: list[str]) -> dict[str, dict[str, str]]:
    """`systemctl show` of several units: blank-line separated blocks (blank lines were dropped,
    so a new block starts whenever a property repeats)."""
    units: dict[str, dict[str, str]] = {}
    block: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition("=")
        if key in block:
            units[block.get("Id", "")] = block
            block = {}
        block[key] = value
    if block:
        units[block.get("Id", "")] = block
    return units


def _unprefix(path: Callable[[str], str]) -> Callable[[str], str]:
    prefix = path("/")[:-1]
    return (lambda p: p[len(prefix) :] if p.startswith(prefix) else p) if prefix else (lambda p: p)
