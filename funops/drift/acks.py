"""Acknowledged drift: `drift-ack.yaml` at the repo root, a reviewed file like the manifests.

An acknowledgement covers the drift of one resource on one node while that drift stays the same
(its fingerprint) and until its date has passed; then the drift fails the check again. A check that
always alarms gets ignored (hashicorp/terraform#39172); one that can be silenced forever hides rot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, Problem
from ..kinds import NAMES
from ..load.loader import _validate  # the loader's pydantic → file:line:field problems
from ..load.project import Origin, Project
from ..load.yaml_marks import YamlError, load_documents
from .document import AckDoc, NodeDriftDoc

ACK_FILE = "drift-ack.yaml"
ACK_KIND = "DriftAcknowledgements"
RESOURCE_PATTERN = rf"^(({'|'.join(NAMES)}):\S.*|handler:\S+|nginx:config)$"
FINGERPRINT_PATTERN = r"^sha256:[0-9a-f]{16}$"
HEADER = """\
# Known drift, acknowledged (written by `funops drift ack`; review it like any change).
# An entry stops NODE's drift of RESOURCE from failing `funops drift` while the drift stays the same
# (fingerprint) and until the end of its date (UTC). Then the drift counts again.
"""


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str = Field(min_length=1)
    resource: str = Field(
        pattern=RESOURCE_PATTERN, description=f"<kind>:<name> ({', '.join(NAMES)}), handler:<h>, nginx:config"
    )
    reason: str = Field(min_length=1)
    until: dt.date = Field(description="YYYY-MM-DD: covered through this day (UTC)")
    by: str = Field(min_length=1, description="who acknowledged it")
    fingerprint: str = Field(pattern=FINGERPRINT_PATTERN, description="of the drift acknowledged")


class AckFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: Literal["funops/v1"] = Field(alias="apiVersion")
    kind: Literal["DriftAcknowledgements"]
    acknowledgements: list[Ack] = []


@dataclass(frozen=True)
class LocatedAck:
    ack: Ack
    line: int | None


def load_acks(project: Project) -> list[LocatedAck]:
    """The repo's acknowledgements (at the project's revision); InputError lists every problem."""
    text = project.source.read(ACK_FILE)
    if text is None:
        return []
    return parse_acks(text, set(project.nodes))


def parse_acks(text: str, nodes: set[str]) -> list[LocatedAck]:
    problems: list[Problem] = []
    try:
        docs = load_documents(text)
    except YamlError as exc:
        raise InputError([Problem(ACK_FILE, exc.line, "", str(exc))]) from exc
    if len(docs) != 1:
        line = docs[1].line if len(docs) > 1 else None
        raise InputError([Problem(ACK_FILE, line, "", f"{ACK_FILE} must hold one document")])
    doc = docs[0]
    origin = Origin(ACK_FILE, doc)
    parsed = _validate(AckFile, doc.data, origin, problems)
    if parsed is None:
        raise InputError(problems)
    seen: dict[tuple[str, str], int] = {}
    located = []
    for i, ack in enumerate(parsed.acknowledgements):
        line = doc.line_of(("acknowledgements", i))
        if ack.node not in nodes:
            problems.append(origin.problem(("acknowledgements", i, "node"), f"unknown node {ack.node!r}"))
        key = (ack.node, ack.resource)
        if key in seen:
            problems.append(
                origin.problem(
                    ("acknowledgements", i, "resource"),
                    f"{ack.resource} on {ack.node} is already acknowledged at {ACK_FILE}:{seen[key]}",
                )
            )
        seen.setdefault(key, line)
        located.append(LocatedAck(ack, line))
    if problems:
        raise InputError(problems)
    return located


def apply_acks(nodes: list[NodeDriftDoc], acks: list[LocatedAck], today: dt.date) -> list[str]:
    """Mark the drift the acknowledgements cover; return the ones that match no drift (stale)."""
    by_key = {(a.ack.node, a.ack.resource): a for a in acks}
    used = set()
    checked = {n.name for n in nodes if n.reachable}
    for node in nodes:
        for item in node.drift:
            located = by_key.get((node.name, item.id))
            if located is None:
                continue
            used.add((node.name, item.id))
            ack = located.ack
            expired = today > ack.until
            matches = ack.fingerprint == item.fingerprint
            item.ack = AckDoc(
                reason=ack.reason, until=ack.until.isoformat(), by=ack.by, expired=expired, matches=matches,
                line=located.line,
            )  # fmt: skip
            item.acknowledged = matches and not expired
    return sorted(f"{n} {r}" for n, r in by_key if (n, r) not in used and n in checked)


def record_ack(root: Path, existing: list[LocatedAck], ack: Ack) -> Path:
    """Write the working tree's file with `ack` added (replacing an older one for the same resource)."""
    acks = [a.ack for a in existing if (a.ack.node, a.ack.resource) != (ack.node, ack.resource)] + [ack]
    acks.sort(key=lambda a: (a.node, a.resource))
    body = {
        "apiVersion": "funops/v1",
        "kind": ACK_KIND,
        "acknowledgements": [a.model_dump(mode="json") for a in acks],
    }
    path = root / ACK_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
    return path
