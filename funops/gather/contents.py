"""File contents for diffs: the ReadFiles task prints each asked file (bounded, base64-framed so any
bytes survive); this is its pure parser. Asked only for files a plan or drift report will change or show,
so a node with nothing to change never pays for it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from ..node.shell import CONTENT_END, CONTENT_MARK
from ..tasks.model import ReadFiles
from ..transports import Transport, TransportError

MARK, END = CONTENT_MARK, CONTENT_END


@dataclass(frozen=True)
class Content:
    """A live file's bytes as read back for a diff."""

    size: int  # the file's full size in bytes
    data: bytes | None  # None: larger than the limit, not fetched


def parse(output: str, count: int) -> list[Content | None]:
    """The contents in the order asked; raises ValueError when the output was cut."""
    found: dict[int, list[str]] = {}
    current: list[str] | None = None
    ended = False
    for line in output.splitlines():
        if line.startswith(MARK):
            current = found.setdefault(int(line[len(MARK) :].strip()), [])
        elif line.strip() == END:
            ended = True
            current = None
        elif current is not None and line.strip():
            current.append(line.strip())
    if not ended:
        raise ValueError("the content fetch did not finish (no end marker)")
    out: list[Content | None] = []
    for i in range(count):
        lines = found.get(i) or ["missing"]
        if lines[0] == "missing" or not lines[0].isdigit():
            out.append(None)
            continue
        size = int(lines[0])
        try:
            data = base64.b64decode("".join(lines[1:]), validate=True) if len(lines) > 1 else None
        except (binascii.Error, ValueError):
            data = None
        if data is None and size == 0:
            data = b""
        out.append(Content(size, data))
    return out


def fetch(
    transport: Transport, node_paths: Iterable[str], limit: int, timeout: float = 60
) -> dict[str, Content | None]:
    """One round trip: the contents of `node_paths` on this node (None where a file is not there)."""
    paths = sorted(set(node_paths))
    if not paths:
        return {}
    result = transport.call(ReadFiles(tuple(paths), limit), timeout=timeout)
    try:
        return dict(zip(paths, parse(result.text(), len(paths)), strict=True))
    except ValueError as exc:
        raise TransportError(str(exc)) from exc
