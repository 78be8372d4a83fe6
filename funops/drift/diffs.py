"""What a hand edit changed: for each file drifted as `modified`, the diff from the content funops
applied to what is live, with the plan's limits and redaction.

The applied side is the repo's rendering when the repo still declares what was applied (no fetch),
else the node's artifact store (by sha256, kept for the releases' files). Both fetches ride on the
drift check's one extra round trip (drift/extras.py), so the diffs cost no round trip of their own.
"""

from __future__ import annotations

from dataclasses import replace

from ..diff.differ import live_attributes
from ..gather.probe import LiveFacts
from ..kinds import is_file_kind
from ..kinds.file import artifact_path
from ..plan.diffs import OFF, DiffOptions, Want, node_secrets, redaction
from ..plan.document import FileDiffDoc
from ..plan.filediff import render
from ..resources import NodeDesired

LABELS = ("applied", "live")


def drift_wants(
    desired: NodeDesired, facts: LiveFacts, state_dir: str
) -> tuple[dict[str, Want], dict[str, FileDiffDoc]]:
    """Per file id whose live content differs from what funops applied: what its diff needs to fetch
    (wants), or its diff already (settled: off, hidden)."""
    state = facts.node_state
    secrets = node_secrets(desired.resources)
    wants: dict[str, Want] = {}
    settled: dict[str, FileDiffDoc] = {}
    for res in desired.resources:
        managed = state.managed.get(res.id)
        if not is_file_kind(res.kind) or managed is None or not managed.applied:
            continue
        live = live_attributes(res.id, facts, res.desired)
        applied_sha = managed.applied.get("sha256")
        if live is None or "type" in live or not applied_sha or live.get("sha256") == applied_sha:
            continue
        red = redaction(res, state, res.id)
        if not res.diff or red.hidden:
            settled[res.id] = OFF if not res.diff else render(res.name, None, None, red)
            continue
        same = res.content is not None and res.desired.get("sha256") == applied_sha
        old = res.content if same else artifact_path(state_dir, applied_sha)
        wants[res.id] = Want(res.name, replace(red, scrub=secrets), old, res.name, LABELS)
    return wants, settled


def with_diffs(
    items: list,
    wants: dict[str, Want],
    settled: dict[str, FileDiffDoc],
    contents: dict,
    error: str | None,
    options: DiffOptions,
) -> None:
    """Set `diff` on the `modified` file items."""
    for item in items:
        if item.drift_class != "modified" or not is_file_kind(item.kind):
            continue
        if item.id in settled:
            item.diff = settled[item.id]
        elif item.id in wants:
            item.diff = wants[item.id].render(contents, error, options)
