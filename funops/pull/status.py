"""`funops status`: where each pull-mode node stands against what the store holds for it — read from
the node's agent (`status` carries what its last polls found and did) and the node's signed index.
Converged means the node applied the published content (the index's keyed content digest), not only a
generation of the same number; a store holding an index older than what the node applied is a replay
(or a store restored from an older copy) and shows as failed until the next publish."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..load.project import Project
from ..node import index as idx
from ..node import index_key
from ..transports import TransportError
from ..transports.agent import AgentTransport
from . import keys
from .store import Store

# A node's state against what is published for it, worst first.
FAILED, NOT_REPORTING, STALE, PENDING, CONVERGED = "failed", "not-reporting", "stale", "pending", "converged"


@dataclass
class PullStatus:
    node: str
    cohort: str
    state: str
    published: int | None  # the generation the store holds for the node
    applied: int | None  # the generation the node last converged
    revision: str | None  # of the applied generation
    last_contact: str | None  # the node's last poll that reached the store
    detail: str | None = None
    published_digest: str | None = None  # the content digest of the published index
    applied_digest: str | None = None  # of what the node applied (its last converged index)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


def read_statuses(project: Project, names: list[str], store: Store | None) -> list[PullStatus]:
    verify = keys.verifier(keys.public_key_file(project).read_bytes()) if store is not None else None

    def one(name: str) -> PullStatus:
        published = None
        if store is not None and verify is not None and (data := store.read(index_key(name))):
            try:
                published = idx.read(data, verify)
            except idx.IndexRefused:
                published = None
        agent = AgentTransport(project.nodes[name], project.settings, project.root)
        try:
            doc = agent.status().get("pull")
        except TransportError as exc:
            return _status(project, name, NOT_REPORTING, published, None, f"agent: {exc}")
        finally:
            agent.close()
        return judge(project, name, published, doc)

    with ThreadPoolExecutor(max_workers=max(1, min(project.settings.parallel, len(names)))) as pool:
        return list(pool.map(one, names))


def judge(
    project: Project, name: str, published: idx.Index | None, doc: Any, now: dt.datetime | None = None
) -> PullStatus:
    """The node's state from its agent's pull status and the index published for it."""
    if not isinstance(doc, dict) or not doc.get("lastPoll"):
        return _status(project, name, NOT_REPORTING, published, None, "it has not polled the store yet")
    now = now or dt.datetime.now(dt.UTC)
    applied = doc.get("generation")
    found = _status(project, name, CONVERGED, published, doc, None)
    interval, splay = float(doc.get("intervalSeconds") or 60), float(doc.get("splaySeconds") or 0)
    contact = doc.get("lastContact")
    age = (now - idx.moment(contact)).total_seconds() if contact else None
    if doc.get("result") in ("failed", "refused"):
        found.state, found.detail = FAILED, f"{doc['result']}: {doc.get('error')}"
    elif age is None or age > 2 * interval + splay:
        since = f"last reached the store {contact}" if contact else "never reached the store"
        found.state, found.detail = STALE, f"{since}; {doc.get('storeError') or 'no poll since'}"
    elif published is not None and (off := _against(published, applied, doc)) is not None:
        found.state, found.detail = off
    return found


def _against(published: idx.Index, applied: Any, doc: dict[str, Any]) -> tuple[str, str] | None:
    """What the node applied (generation and content digest) against the published index, when they
    differ: a replay, a generation signed twice, or a publish the node has not taken yet."""
    digest = doc.get("digest")
    if isinstance(applied, int) and published.generation < applied:
        return FAILED, (
            f"replay: the store holds generation {published.generation}, older than the applied "
            f"{applied} (an older index put back, or a store restored from an older copy): publish again"
        )
    if applied == published.generation and digest not in (None, published.digest):
        return FAILED, (
            f"generation {applied} was applied with other content than the store's: a generation "
            "signed twice (the signer's clock went back?): publish again"
        )
    if digest != published.digest:
        waiting = doc.get("result") == "waiting"
        return PENDING, doc.get("error") if waiting else "not polled since the publish"
    return None


def _status(
    project: Project,
    name: str,
    state: str,
    published: idx.Index | None,
    doc: dict[str, Any] | None,
    detail: str | None,
) -> PullStatus:
    node = project.nodes[name]
    return PullStatus(
        node=name,
        cohort=node.pull.cohort if node.pull else "",
        state=state,
        published=published.generation if published else None,
        applied=(doc or {}).get("generation"),
        revision=(doc or {}).get("revision"),
        last_contact=(doc or {}).get("lastContact"),
        detail=detail,
        published_digest=published.digest if published else None,
        applied_digest=(doc or {}).get("digest"),
    )


def settled(statuses: list[PullStatus]) -> bool:
    """Nothing more to wait for: all converged, or one failed (a wave stops at the first failure)."""
    return all(s.state == CONVERGED for s in statuses) or any(s.state == FAILED for s in statuses)
