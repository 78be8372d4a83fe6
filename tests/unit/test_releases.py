"""Release records, their history over nodes, the rollback target, the bad-revision rule, and the
artifact tasks under a real sh (the lab tests run the same paths on real nodes)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from funops.cli.output import worst
from funops.errors import FunopsError
from funops.release.history import bad_revisions, releases
from funops.release.restore import is_release_ref, pick_target
from funops.resources import Resource
from funops.state.node_state import NodeState
from funops.state.records import ReleaseRecord, RevisionRef
from tests.unit import shell_tasks as tasks


def rec(
    number: int, status: str, commit: str = "c1", kind: str = "deploy", version: str = "1"
) -> ReleaseRecord:
    return ReleaseRecord(
        id=f"web-{number}", app="web", number=number, kind=kind, status=status,  # type: ignore[arg-type]
        revision=RevisionRef(commit=commit), version=version,
        started=f"2026-11-23T10:0{number}:00+00:00", finished=f"2026-11-23T10:0{number}:30+00:00",
    )  # fmt: skip


def states(**nodes: list[ReleaseRecord]) -> dict[str, NodeState]:
    out = {}
    for name, recs in nodes.items():
        state = NodeState()
        for r in recs:
            state.record(r, keep=5)
        out[name] = state
    return out


def test_a_release_status_over_its_nodes_tells_the_worst() -> None:
    rels = releases(
        states(
            node1=[rec(1, "succeeded"), rec(2, "succeeded", "c2")],
            node2=[rec(1, "succeeded"), rec(2, "failed", "c2")],
        )
    )
    assert [(r.id, r.status, r.nodes) for r in rels] == [
        ("web-2", "failed", {"node1": "succeeded", "node2": "failed"}),
        ("web-1", "succeeded", {"node1": "succeeded", "node2": "succeeded"}),
    ]
    assert rels[1].seconds == 30


def test_a_node_keeps_only_the_last_k_releases() -> None:
    state = NodeState()
    for n in range(1, 8):
        state.record(rec(n, "succeeded"), keep=3)
    assert [r.number for r in state.releases["web"]] == [5, 6, 7]


def test_an_unfinished_release_is_settled_as_failed() -> None:
    state = states(node1=[rec(1, "running")])["node1"]
    state.settle_interrupted()
    only = state.releases["web"][0]
    assert only.status == "failed" and only.error is not None and "interrupted" in only.error


def test_the_default_rollback_target_is_the_last_succeeded_before_the_current() -> None:
    rels = releases(
        states(node1=[rec(1, "succeeded"), rec(2, "rolled_back", "c2"), rec(3, "succeeded", "c3")])
    )
    assert pick_target(rels, "web", None).id == "web-1"
    assert pick_target(rels, "web", "web-2").id == "web-2"
    assert pick_target(rels, "web", "2").id == "web-2"
    with pytest.raises(FunopsError, match="web-9 is not kept"):
        pick_target(rels, "web", "9")
    with pytest.raises(FunopsError, match="no succeeded release before web-1"):
        pick_target(releases(states(node1=[rec(1, "succeeded")])), "web", None)


def test_release_ids_and_git_revisions_are_told_apart() -> None:
    assert is_release_ref("web", "web-3") and is_release_ref("web", "3")
    assert not is_release_ref("web", "HEAD~2") and not is_release_ref("web", "api-3")
    assert not is_release_ref("web", "1a2b3c4d5e")


def test_a_rolled_back_commit_is_bad_until_deployed_again_on_purpose() -> None:
    nodes = states(
        node1=[rec(1, "succeeded"), rec(2, "rolled_back", "c2"), rec(3, "succeeded", kind="rollback")]
    )
    assert bad_revisions(nodes) == {"web": {"c2": "web-2"}}
    nodes["node1"].record(rec(4, "succeeded", "c2"), keep=5)  # apply --force, and it held
    assert bad_revisions(nodes) == {}


def test_exit_codes_combine_by_severity() -> None:
    assert worst(0, 2) == 2 and worst(2, 4) == 4 and worst(4, 3) == 3 and worst(3, 1) == 1


def sh(script: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, check=False)


def test_artifacts_are_kept_and_restored_and_unneeded_ones_go(tmp_path: Path) -> None:
    state_dir, live = str(tmp_path / "state"), tmp_path / "etc" / "app.conf"
    live.parent.mkdir()
    data = b"v1\n"
    live.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    stale = tmp_path / "state" / "artifacts" / ("0" * 64)
    stale.parent.mkdir(parents=True)
    stale.write_text("old")

    keep = tasks.keep_artifacts(state_dir, [(sha, str(live))], {sha}, lambda p: p)
    assert sh(keep.script).returncode == 0
    assert (tmp_path / "state" / "artifacts" / sha).read_bytes() == data and not stale.exists()

    live.write_bytes(b"v2\n")
    res = Resource(
        id=f"file:{live}", kind="file", owner="app/web", order=10,
        desired={"sha256": sha, "mode": "0640", "owner": "root", "group": "root"},
    )  # fmt: skip
    write = tasks.write_file(res, state_dir, lambda p: p)  # no content: from the artifact store
    assert write.stdin is None
    done = sh(write.script)
    assert done.returncode == 0, done.stdout
    assert live.read_bytes() == data

    (tmp_path / "state" / "artifacts" / sha).write_bytes(b"tampered\n")
    done = sh(write.script)
    assert done.returncode == 1 and b"damaged" in done.stdout


def test_a_saved_plan_past_its_age_is_refused(tmp_path: Path) -> None:
    import json

    from funops.plan.saved import read_saved_plan

    doc = {
        "formatVersion": 1, "kind": "plan", "project": "demo",
        "revision": {"commit": "c1", "dirty": False, "ref": "working tree"},
        "createdAt": "2026-01-01T00:00:00+00:00", "targets": [],
        "summary": {"create": 0, "update": 0, "delete": 0, "unchanged": 0, "owed": 0, "nodes": 0,
                    "nodesChanged": 0, "nodesUnreachable": 0},
        "placements": {}, "versions": {}, "nodes": [],
    }  # fmt: skip
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    saved = read_saved_plan(path)
    assert saved.revision_to_load(None) == "c1"
    with pytest.raises(FunopsError, match="min old"):
        saved.check_still_valid(None, max_age_seconds=3600)  # type: ignore[arg-type]
    path.write_text('{"kind": "drift"}')
    with pytest.raises(FunopsError, match="not a saved plan"):
        read_saved_plan(path)
