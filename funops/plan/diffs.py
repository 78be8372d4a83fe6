"""The `diff` of each file change in a plan: where each side's content comes from, then filediff.

The desired side is rendered here (or, for a resource restored from a release record, read from the
node's artifact store). The live side is fetched only for files that will be updated or deleted, in
one extra round trip for those nodes only: a plan with nothing to change on a node costs no more
than its one gather.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..compile.compiler import APPS_DIR, TLS_DIR
from ..compile.resources import Resource
from ..gather.contents import Content, fetch
from ..state.node_state import NodeState, applied_secrecy
from ..state.records import artifact_path
from ..transports import Transport, TransportError
from .document import ChangeDoc, FileDiffDoc
from .filediff import MAX_BYTES, Redaction, render

OFF = FileDiffDoc(format="off", note="not shown (diff: false in the manifest)")


@dataclass(frozen=True)
class DiffOptions:
    context: int = 3
    max_bytes: int = MAX_BYTES


def redaction(res: Resource | None, state: NodeState, rid: str) -> Redaction:
    """What may be shown of a file: as the repo declares it now, and as it was when funops applied it
    (a value that was a secret then stays hidden). Files no record describes (deleted, or applied by
    an older funops) are judged by funops's own places: env files and TLS keys."""
    was_secret, old_keys = applied_secrecy(state, rid)
    path = rid.split(":", 1)[1]
    is_env = (res is not None and res.secret_keys is not None) or bool(old_keys)
    if res is None and path.startswith(f"{APPS_DIR}/") and path.endswith(".env"):
        is_env = True
    if is_env:
        now = frozenset(res.secret_keys or ()) if res is not None else frozenset()
        return Redaction(env=True, secret_keys=now | old_keys)
    if (
        (res is not None and res.secret)
        or was_secret
        or (path.startswith(f"{TLS_DIR}/") and path.endswith(".key"))
    ):
        return Redaction(hidden=True)
    return Redaction()


@dataclass
class _Want:
    """One file change's diff, waiting for the contents it needs."""

    change: ChangeDoc
    path: str
    redaction: Redaction
    old: str | None  # node path to fetch for the old side; None: absent
    new: str | bytes | None  # bytes: known here; str: a node path to fetch; None: absent
    labels: tuple[str, str] = ("live", "desired")


def attach(
    plan_nodes: dict[str, tuple[list[ChangeDoc], dict[str, Resource], NodeState]],
    connect: Callable[[str], Transport],
    options: DiffOptions,
    state_dir: str,
    parallel: int,
    timeout: float = 60,
) -> int:
    """Set `diff` on every file change of `plan_nodes` (node → its change docs, its desired resources
    by id, its state file). Returns how many nodes needed a round trip."""
    wants: dict[str, list[_Want]] = {}
    for node, (changes, resources, state) in plan_nodes.items():
        for change in changes:
            if change.kind != "file":
                continue
            res = resources.get(change.id)
            want = _want(change, res, state, state_dir)
            if want is not None:
                wants.setdefault(node, []).append(want)
    fetching = {n: ws for n, ws in wants.items() if any(_paths(w) for w in ws)}

    def one(node: str) -> tuple[dict[str, Content | None], str | None]:
        try:
            paths = [p for w in fetching[node] for p in _paths(w)]
            return fetch(connect(node), paths, options.max_bytes, timeout), None
        except TransportError as exc:
            return {}, str(exc)

    fetched: dict[str, tuple[dict[str, Content | None], str | None]] = {}
    if fetching:
        names = sorted(fetching)
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names)))) as pool:
            fetched = dict(zip(names, pool.map(one, names), strict=True))
    for node, ws in wants.items():
        contents, error = fetched.get(node, ({}, None))
        for w in ws:
            w.change.diff = _render(w, contents, error, options)
    return len(fetching)


def _want(change: ChangeDoc, res: Resource | None, state: NodeState, state_dir: str) -> _Want | None:
    path = change.id.split(":", 1)[1]
    if res is not None and not res.diff:
        change.diff = OFF
        return None
    if change.action == "update" and not any(f.field in ("sha256", "type") for f in change.fields):
        return None  # mode or owner only: the content does not change
    red = redaction(res, state, change.id)
    if red.hidden:
        change.diff = render(path, None, None, red)
        return None
    old = None if change.action == "create" else path
    new: str | bytes | None = None
    if res is not None and change.action != "delete":
        new = res.content if res.content is not None else artifact_path(state_dir, res.desired["sha256"])
    return _Want(change, path, red, old, new)


def _paths(w: _Want) -> list[str]:
    return [p for p in (w.old, w.new) if isinstance(p, str)]


def _render(
    w: _Want, contents: dict[str, Content | None], error: str | None, options: DiffOptions
) -> FileDiffDoc:
    sides: list[tuple[bytes | None, int | None]] = []
    for side, name in ((w.old, "the live file"), (w.new, "the stored artifact")):
        if side is None or isinstance(side, bytes):
            sides.append((side, None))
            continue
        got = contents.get(side)
        if got is None:
            why = error or f"{name} could not be read (gone, or not a regular file)"
            return FileDiffDoc(format="unavailable", note=f"no diff: {why}")
        sides.append((got.data if got.data is not None else b"", got.size))
    (old, old_size), (new, new_size) = sides
    return render(
        w.path, old, new, w.redaction, context=options.context, old_size=old_size, new_size=new_size,
        max_bytes=options.max_bytes, labels=w.labels,
    )  # fmt: skip
