"""The `diff` of each file change in a plan: where each side's content comes from, then filediff.

The desired side is rendered here (or, for a resource restored from a release record, read from the
node's artifact store). The live side is fetched only for files that will be updated or deleted, in
one extra round trip for those nodes only: a plan with nothing to change on a node costs no more
than its one gather.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..gather.contents import Content, fetch
from ..ids import ResourceId
from ..kinds import is_file_kind
from ..kinds.file import artifact_path
from ..resources import APPS_DIR, TLS_DIR, Resource
from ..state.node_state import NodeState, applied_secrecy
from ..transports import Transport, TransportError
from .document import ChangeDoc, FileDiffDoc
from .filediff import MAX_BYTES, Redaction, render, secret_values

OFF = FileDiffDoc(format="off", note="not shown (diff: false in the manifest)")


@dataclass(frozen=True)
class DiffOptions:
    """How much of a changed file a plan shows."""

    context: int = 3
    max_bytes: int = MAX_BYTES


def redaction(res: Resource | None, state: NodeState, rid: str) -> Redaction:
    """What may be shown of a file: as the repo declares it now, and as it was when funops applied it
    (a value that was a secret then stays hidden). Files no record describes (deleted, or applied by
    an older funops) are judged by funops's own places: env files and TLS keys."""
    was_secret, old_keys = applied_secrecy(state, rid)
    path = ResourceId(rid).name
    is_env = (res is not None and res.secret_keys is not None) or bool(old_keys)
    if res is None and path.startswith(f"{APPS_DIR}/") and path.endswith(".env"):
        is_env = True
    if is_env:
        now = frozenset(res.secret_keys or ()) if res is not None else frozenset()
        return Redaction.for_env(now | old_keys, res.content if res is not None else None)
    if (
        (res is not None and res.secret)
        or was_secret
        or (path.startswith(f"{TLS_DIR}/") and path.endswith(".key"))
    ):
        return Redaction(hidden=True)
    return Redaction()


def node_secrets(resources: Iterable[Resource]) -> frozenset[str]:
    """Every secret value the node's desired files hold (env secrets, TLS keys)."""
    found: set[str] = set()
    for res in resources:
        if is_file_kind(res.kind) and res.secret:
            keys = frozenset(res.secret_keys) if res.secret_keys is not None else None
            found |= secret_values(res.content, keys)
    return frozenset(found)


@dataclass
class Want:
    """One file's diff, waiting for the contents it needs."""

    path: str
    redaction: Redaction
    old: str | bytes | None  # bytes: known here; str: a node path to fetch; None: absent
    new: str | bytes | None
    labels: tuple[str, str] = ("live", "desired")

    def paths(self) -> list[str]:
        return [p for p in (self.old, self.new) if isinstance(p, str)]

    def render(
        self, contents: dict[str, Content | None], error: str | None, options: DiffOptions
    ) -> FileDiffDoc:
        sides: list[tuple[bytes | None, int | None]] = []
        for side, label in zip((self.old, self.new), self.labels, strict=True):
            if side is None or isinstance(side, bytes):
                sides.append((side, None))
                continue
            got = contents.get(side)
            if got is None:
                # Not the error's text: a transport error may quote the script, whose artifact paths
                # name content digests.
                why = (
                    "the node did not answer the content fetch"
                    if error
                    else f"the {label} content could not be read (not kept, gone, or not a regular file)"
                )
                return FileDiffDoc(format="unavailable", note=f"no diff: {why}")
            sides.append((got.data if got.data is not None else b"", got.size))
        (old, old_size), (new, new_size) = sides
        return render(
            self.path, old, new, self.redaction, context=options.context, old_size=old_size,
            new_size=new_size, max_bytes=options.max_bytes, labels=self.labels,
        )  # fmt: skip


def fetch_all(
    paths: dict[str, list[str]], connect: Callable[[str], Transport], options: DiffOptions, parallel: int
) -> dict[str, tuple[dict[str, Content | None], str | None]]:
    """One round trip per node that has something to fetch, nodes in parallel; a failure is kept as
    the node's error (its diffs say so), never raised."""

    def one(node: str) -> tuple[dict[str, Content | None], str | None]:
        try:
            return fetch(connect(node), paths[node], options.max_bytes), None
        except TransportError as exc:
            return {}, str(exc)

    names = sorted(n for n, ps in paths.items() if ps)
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names)))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def attach(
    plan_nodes: dict[str, tuple[list[ChangeDoc], dict[str, Resource], NodeState]],
    connect: Callable[[str], Transport],
    options: DiffOptions,
    state_dir: str,
    parallel: int,
) -> int:
    """Set `diff` on every file change of `plan_nodes` (node → its change docs, its desired resources
    by id, its state file). Returns how many nodes needed a round trip."""
    wants: dict[str, list[tuple[ChangeDoc, Want]]] = {}
    for node, (changes, resources, state) in plan_nodes.items():
        secrets = node_secrets(resources.values())
        for change in changes:
            if is_file_kind(change.kind):
                want = _want(change, resources.get(change.id), state, state_dir)
                if want is not None:
                    want.redaction = replace(want.redaction, scrub=secrets)
                    wants.setdefault(node, []).append((change, want))
    fetched = fetch_all(
        {n: [p for _, w in ws for p in w.paths()] for n, ws in wants.items()}, connect, options, parallel
    )
    for node, ws in wants.items():
        contents, error = fetched.get(node, ({}, None))
        for change, w in ws:
            change.diff = w.render(contents, error, options)
    return len(fetched)


def _want(change: ChangeDoc, res: Resource | None, state: NodeState, state_dir: str) -> Want | None:
    """What the change's diff needs; None when it is settled here (off, hidden, no content change)."""
    path = ResourceId(change.id).name
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
    return Want(path, red, old, new)
