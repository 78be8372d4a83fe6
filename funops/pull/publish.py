"""`funops publish`: the repo at a revision, compiled into one sealed bundle and one signed index per
pull-mode node, written to the store (bundles first, indexes last: an index never names a bundle that
is not there yet).

A generation is the signer's clock at signing, in milliseconds: one number for the whole run, above
every generation in the store too (index.generation_at). It is not counted from the store, so a store
restored from an older copy, or wiped, cannot make a publish reuse a generation a node already took:
the next publish is newer than anything signed before, and the nodes converge it. Every publish gives
each of its nodes the new generation; a node whose bundle did not change keeps its bundle, and its
index is only signed again (a cron publish keeps a quiet fleet from expiring): the node sees the same
content digest and takes it without converging."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import FunopsError
from ..load.project import Project
from ..node import MAX_BUNDLE_BYTES, bundle_key, index_key
from ..node import index as idx
from ..transports.agent import read_pin
from . import bundle as bundles
from . import keys
from .seal import seal
from .store import Store

if TYPE_CHECKING:
    from ..certs.phase import Order
    from ..transports import Transport

CERTS_DIR = "certs/agents"  # each pull node's agent certificate, recorded by `funops agent install`


@dataclass
class Published:
    node: str
    generation: int
    changed: bool  # a new bundle (else: the same one, signed again)
    cohort: str


def pull_nodes(project: Project, cohort: str | None = None) -> list[str]:
    return sorted(
        name
        for name, node in project.nodes.items()
        if node.pull is not None and (cohort is None or node.pull.cohort == cohort)
    )


def certificate_file(project: Project, node: str) -> Path:
    return project.root / CERTS_DIR / f"{node}.pem"


def publish(
    project: Project,
    store: Store,
    cohort: str | None = None,
    apply_after: float = 0,
    now: dt.datetime | None = None,
    connect: Callable[[str], Transport] | None = None,
    order: Order | None = None,
) -> list[Published]:
    """Publish the project to its pull-mode nodes (those of `cohort` only, with one). A certificate
    one of them serves is ordered here when due (`connect`: how its nodes are read; `order`: the
    ACME order, tests put another) and sealed into its bundles."""
    from ..certs.publish import certificates_for_publish
    from ..compile.compiler import compile_project

    names = pull_nodes(project, cohort)
    if not names:
        which = f" in cohort {cohort!r}" if cohort else ""
        raise FunopsError(f"no node{which} is in pull mode (an inventory node's pull: section)")
    certificates = {name: _certificate(project, name) for name in names}
    key = keys.load_private(project)
    verify = keys.verifier(keys.nodes_public_key(project, key))
    digest_key = keys.digest_key(key)
    every = pull_nodes(project)
    with ThreadPoolExecutor(max_workers=8) as pool:  # the store's indexes read while the repo compiles
        reading = pool.map(lambda name: _previous(store, name, verify), every)
        desired = compile_project(project)
        certificates_for_publish(project, desired, names, connect, None, order)
        previous = dict(zip(every, reading, strict=True))
    now = now or dt.datetime.now(dt.UTC)
    published_at = now.isoformat(timespec="seconds")
    not_after = (now + dt.timedelta(hours=project.settings.pull.not_after_hours)).isoformat(
        timespec="seconds"
    )
    earliest = (
        (now + dt.timedelta(seconds=apply_after)).isoformat(timespec="seconds") if apply_after else None
    )
    rev = project.revision

    top = max((p.generation for p in previous.values() if p is not None), default=0)
    generation = idx.generation_at(now, top)
    contents = {name: bundles.to_json(bundles.of_node(project, desired.nodes[name])) for name in names}
    digests = {name: sealed_digest(digest_key, certificates[name], c) for name, c in contents.items()}
    changed = [n for n in names if (p := previous[n]) is None or p.digest != digests[n]]
    changed += _lost_bundles(store, [n for n in names if n not in changed], previous)
    sealed = {name: seal(certificates[name], contents[name]) for name in changed}  # in-process: ≈ 0.2 ms each
    for name, data in sealed.items():
        if len(data) > MAX_BUNDLE_BYTES:
            raise FunopsError(
                f"node {name}: its sealed bundle is {len(data)} bytes, above the {MAX_BUNDLE_BYTES} a node "
                "reads from the store (large artifacts: give them a url: the node fetches)"
            )
    plans: list[tuple[idx.Index, bytes | None]] = []
    for name in names:
        before, node_cohort = previous[name], project.nodes[name].pull.cohort  # type: ignore[union-attr]
        if name not in sealed:  # unchanged: the same bundle, signed again
            assert before is not None
            renewed = _renewed(before, generation, node_cohort, published_at, not_after, earliest)
            plans.append((renewed, None))
            continue
        sha = hashlib.sha256(sealed[name]).hexdigest()
        index = idx.Index(
            node=name, project=project.settings.project, generation=generation, revision=rev.commit,
            ref=rev.ref, bundle=bundle_key(name, sha), bundle_sha256=sha, digest=digests[name],
            cohort=node_cohort, published_at=published_at, not_after=not_after, earliest_apply_at=earliest,
        )  # fmt: skip
        plans.append((index, sealed[name]))
    _write_all(store, [(index.bundle, data) for index, data in plans if data is not None])
    _write_all(store, [(index_key(index.node), idx.signed(index, key.sign)) for index, _ in plans])
    return [Published(i.node, i.generation, s is not None, i.cohort) for i, s in plans]


def sealed_digest(digest_key: bytes, certificate_pem: bytes, content: bytes) -> str:
    """The index's `digest`: keyed, of the bundle's content, the certificate it is sealed to and the
    funops that wrote it. The same digest in the store means the bundle there is still right for the
    node, so it is not sealed again; a new secret or template (the content), a new agent key (the
    certificate: the node could not open the old seal) or another funops version seals a new one."""
    mac = hmac.new(digest_key, f"funops {__version__}\n".encode(), hashlib.sha256)
    mac.update(hashlib.sha256(certificate_pem).digest())
    mac.update(content)
    return mac.hexdigest()


def _write_all(store: Store, items: list[tuple[str, bytes]]) -> None:
    """Every write done before this returns (bundles before the indexes naming them), many at once: each
    is durable on its own (a directory store fsyncs each file before its rename), and the filesystem's
    journal commits concurrent fsyncs together (5,000 in a row took ≈ 4 ms each here)."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(32, len(items))) as pool:
        for done in [pool.submit(store.write, k, data) for k, data in items]:
            done.result()  # the first failure raises, after every write under way ended


def _renewed(
    before: idx.Index, generation: int, cohort: str, published_at: str, not_after: str, earliest: str | None
) -> idx.Index:
    return replace(
        before, generation=generation, cohort=cohort, published_at=published_at, not_after=not_after,
        earliest_apply_at=earliest,
    )  # fmt: skip


def _lost_bundles(store: Store, names: list[str], previous: dict[str, idx.Index | None]) -> list[str]:
    """Of the nodes whose bundle would be kept, those whose bundle the store no longer holds (deleted,
    or a store restored without it): their index would name a missing file, so they are sealed anew."""
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        held = pool.map(lambda name: store.has(previous[name].bundle), names)  # type: ignore[union-attr]
        return [name for name, there in zip(names, held, strict=True) if not there]


def _previous(store: Store, node: str, verify: keys.Verify) -> idx.Index | None:
    """The node's index in the store, if this key signed it (another's is replaced, not trusted)."""
    data = store.read(index_key(node))
    if data is None:
        return None
    try:
        return idx.read(data, verify)
    except idx.IndexRefused:
        return None


def _certificate(project: Project, node: str) -> bytes:
    """The node's agent certificate as recorded by `agent install`, checked against its pin."""
    path = certificate_file(project, node)
    try:
        pem = path.read_bytes()
        der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    except (OSError, ValueError) as exc:
        raise FunopsError(
            f"node {node}: no agent certificate at {path} ({exc}): run `funops agent install {node}` "
            "(it records the certificate the bundles are sealed to)"
        ) from exc
    pin = read_pin(project.root, project.nodes[node])
    if pin is None or not hmac.compare_digest(hashlib.sha256(der).hexdigest(), pin):
        raise FunopsError(
            f"node {node}: {path} is not the certificate pinned for its agent: run "
            f"`funops agent install {node}` again"
        )
    return pem
