"""A node's signed index (`nodes/<node>/latest.json`): which bundle to converge and under what terms.

    {"index": {"node", "generation", "revision", "bundle", "bundleSha256", "notAfter", ...},
     "signature": base64(ed25519(canonical JSON of "index"))}

The generation is the signer's clock at signing, in milliseconds (never below the store's newest + 1),
not a count kept in the store: a store restored from an older copy or wiped still gets, at the next
publish, a generation above everything signed before. The node refuses an index not signed by the
project's key, meant for another node, older than the newest generation it accepted (a replay; a
rollback is published as a new generation) or past its notAfter (a frozen store cannot hold a node on
old code forever). Standard library only (the node reads it)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

FORMAT = 1


class IndexRefused(Exception):
    """The index is not one this node may act on; the message says why."""


@dataclasses.dataclass(frozen=True)
class Index:
    node: str
    project: str
    generation: int
    revision: str | None  # the commit published
    ref: str | None
    bundle: str  # the bundle's key in the store
    bundle_sha256: str  # of the sealed bundle, checked before it is opened
    digest: str  # keyed digest of the bundle's content: `publish` keeps the generation when it is unchanged
    cohort: str
    published_at: str  # UTC, ISO 8601
    not_after: str
    earliest_apply_at: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "node": self.node,
            "project": self.project,
            "generation": self.generation,
            "revision": self.revision,
            "ref": self.ref,
            "bundle": self.bundle,
            "bundleSha256": self.bundle_sha256,
            "digest": self.digest,
            "cohort": self.cohort,
            "publishedAt": self.published_at,
            "notAfter": self.not_after,
            "earliestApplyAt": self.earliest_apply_at,
        }

    @classmethod
    def of_doc(cls, doc: dict[str, Any]) -> Index:
        if doc.get("format") != FORMAT:
            raise IndexRefused(f"index format {doc.get('format')!r}, this funops reads {FORMAT}")
        try:
            index = cls(
                node=doc["node"], project=doc["project"], generation=doc["generation"],
                revision=doc["revision"], ref=doc["ref"], bundle=doc["bundle"],
                bundle_sha256=doc["bundleSha256"], digest=doc["digest"], cohort=doc["cohort"],
                published_at=doc["publishedAt"], not_after=doc["notAfter"],
                earliest_apply_at=doc.get("earliestApplyAt"),
            )  # fmt: skip
            for when in (index.not_after, index.published_at, index.earliest_apply_at or index.not_after):
                moment(when)  # ISO 8601, or refused here
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexRefused(f"malformed index: {type(exc).__name__}: {exc}") from exc
        if not isinstance(index.generation, int) or index.generation < 1:
            raise IndexRefused(f"malformed index: generation {index.generation!r}")
        return index


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes signed: one JSON text for one document, on every machine."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def signed(index: Index, sign: Callable[[bytes], bytes]) -> bytes:
    doc = index.to_doc()
    signature = base64.b64encode(sign(canonical(doc))).decode()
    return json.dumps({"index": doc, "signature": signature}, indent=1, sort_keys=True).encode() + b"\n"


def read(data: bytes, verify: Callable[[bytes, bytes], bool]) -> Index:
    """The index in `data` if its signature holds (`verify(data, signature)`), else IndexRefused."""
    try:
        outer = json.loads(data)
        doc, signature = outer["index"], base64.b64decode(outer["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise IndexRefused(f"not a signed index: {type(exc).__name__}: {exc}") from exc
    if not isinstance(doc, dict) or not verify(canonical(doc), signature):
        raise IndexRefused("bad signature: not signed by this project's publishing key")
    return Index.of_doc(doc)


def generation_at(now: dt.datetime, newest: int = 0) -> int:
    """The generation of a publish signed at `now`: the clock in ms, above `newest` (the store's)."""
    return max(int(now.timestamp() * 1000), newest + 1)


def check(index: Index, node: str, floor: int, now: dt.datetime) -> None:
    """May `node`, whose newest accepted generation is `floor` (0: none), act on this index?"""
    if index.node != node:
        raise IndexRefused(f"the index is for node {index.node!r}, not {node!r}")
    if index.generation < floor:
        raise IndexRefused(
            f"replay: generation {index.generation} is older than {floor}, the newest this node "
            "accepted (an older index put back, or a store restored from an older copy): publish again"
        )
    if moment(index.not_after) < now:
        raise IndexRefused(f"the index expired at {index.not_after} (notAfter): publish again")


def due(index: Index, now: dt.datetime) -> bool:
    """Past its earliestApplyAt (or without one)."""
    return index.earliest_apply_at is None or moment(index.earliest_apply_at) <= now


def moment(text: str) -> dt.datetime:
    """An ISO 8601 time (UTC when it names no zone)."""
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)  # noqa: UP017 (dt.UTC: 3.11; nodes run 3.9)
