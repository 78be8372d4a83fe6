"""What `--node` and `--app` name: one resolver for every command that targets nodes or apps.

A `--node` value is a node name, a shell glob over names (`'web*'`) or a label selector
(`role=app,zone=a`: every label must match). Values are OR-ed; a value that matches nothing is an
error listing the known nodes, with the closest name when one is near (a typo)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from typing import Protocol

from ..errors import FunopsError

GLOB_CHARS = frozenset("*?[")


class Labelled(Protocol):
    labels: dict[str, str]


def select_nodes(nodes: Mapping[str, Labelled], wanted: Iterable[str] | None) -> list[str]:
    """The names `wanted` selects, sorted; every node when `wanted` is None or empty."""
    wanted = list(wanted or [])
    if not wanted:
        return sorted(nodes)
    chosen: set[str] = set()
    for value in wanted:
        found = _matches(nodes, value)
        if not found:
            raise FunopsError(_nothing_matches("node", value, nodes))
        chosen |= found
    return sorted(chosen)


def select_apps(apps: Iterable[str], wanted: Iterable[str]) -> set[str]:
    """`--app` values: exact app names (each must exist)."""
    known = sorted(apps)
    chosen = set()
    for name in wanted:
        if name not in known:
            raise FunopsError(_nothing_matches("app", name, known))
        chosen.add(name)
    return chosen


def _matches(nodes: Mapping[str, Labelled], value: str) -> set[str]:
    if "=" in value:
        selector = _selector(value)
        return {n for n, node in nodes.items() if all(node.labels.get(k) == v for k, v in selector.items())}
    if GLOB_CHARS & set(value):
        return set(fnmatch.filter(nodes, value))
    return {value} if value in nodes else set()


def _selector(value: str) -> dict[str, str]:
    selector = {}
    for part in value.split(","):
        key, sep, label = part.partition("=")
        if not sep or not key.strip():
            raise FunopsError(f"--node {value!r}: a label selector is KEY=VALUE[,KEY=VALUE…] (got {part!r})")
        selector[key.strip()] = label.strip()
    return selector


def _nothing_matches(what: str, value: str, known: Iterable[str]) -> str:
    names = sorted(known)
    message = f"unknown {what}(s): {value}"
    if what == "node":
        message += " (no node name, glob or label selector matches it)"
    close = difflib.get_close_matches(value, names, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message + f" Known: {', '.join(names) or '(none)'}."
