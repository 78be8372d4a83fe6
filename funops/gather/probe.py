"""The gather probe's pure parser: the probe's output (node/probe.py builds the script) back into
the facts of one node, by the parsers of the resource kinds (funops/kinds/)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable
from typing import Any

from .. import kinds
from ..kinds.facts import LiveFacts
from ..node.probe import KEY_FILE, MARK

__all__ = ["KEY_FILE", "MARK", "LiveFacts", "parse", "parse_state", "unprefix"]


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
