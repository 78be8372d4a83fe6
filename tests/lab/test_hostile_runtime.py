"""Issue 11, runtime side, against real nodes: the node state file's framing, locks under a race,
and secrets that no output may let anyone confirm by guessing.

The tests run in file order on one repo (the bundled example with the lab's inventory).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import FUNOPS, apply, edit_yaml, funops, make_repo, reset

STATE = "/var/lib/funops/state.json"


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    yield make_repo(lab, tmp_path_factory.mktemp("hostile") / "repo")
    reset(lab)


def releases_on(repo: Path, node: str) -> list[str]:
    done = funops(repo, "history", "-o", "json")
    assert done.returncode == 0, done.stderr
    return sorted(r["id"] for r in json.loads(done.stdout)["releases"] if node in r["nodes"])


def test_a_state_file_without_a_final_newline_keeps_the_nodes_history(lab: Lab, repo: Path) -> None:
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1:])
    before = releases_on(repo, "node1")
    assert before
    # Rewritten by hand, as compact JSON with no newline at the end.
    lab.exec("node1", f"python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); "
                      f"open(sys.argv[1],\"w\").write(json.dumps(s))' {STATE}", check=True)  # fmt: skip
    assert not lab.exec("node1", f"tail -c 1 {STATE}").stdout.endswith("\n")
    plan = funops(repo, "plan", "-o", "json")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # nothing to do: the history was read
    assert releases_on(repo, "node1") == before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"formatVersion": 1, "managed": {', "state file is not valid JSON"),
        ('{"managed": 5}', "state file does not fit the state format"),
        ("\\377\\376", "state file is not UTF-8 text"),
    ],
)
def test_a_state_file_that_cannot_be_read_refuses_the_node(
    lab: Lab, repo: Path, content: str, reason: str
) -> None:
    lab.exec("node1", f"cp -p {STATE} /root/state.keep && printf '{content}' > {STATE}", check=True)
    digest = lab.exec("node1", f"sha256sum {STATE}").stdout
    try:
        for args in (("plan",), ("apply", "--auto-approve")):
            done = funops(repo, *args)
            assert done.returncode == 1, done.stdout + done.stderr
            assert "node1:" in done.stderr and reason in done.stderr and "refusing" in done.stderr
        assert lab.exec("node1", f"sha256sum {STATE}").stdout == digest  # untouched
    finally:
        lab.exec("node1", f"mv /root/state.keep {STATE}", check=True)
    assert funops(repo, "plan").returncode == 0


def web_releases(repo: Path) -> list[dict]:
    done = funops(repo, "history", "web", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["releases"]


def journal_entries(repo: Path) -> list[dict]:
    path = repo / ".funops" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_applies_started_together_change_each_node_once(lab: Lab, repo: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    for round_ in range(1, 4):
        version = f"race{round_}"

        def bump(docs: list[dict], version: str = version) -> None:
            docs[0]["spec"]["version"] = version
            docs[0]["spec"]["strategy"] = {"batchSize": "100%", "maxFailures": 0}

        edit_yaml(repo / "manifests" / "web.yaml", bump)
        releases_before, journal_before = len(web_releases(repo)), len(journal_entries(repo))
        argv = [*FUNOPS, "apply", "--auto-approve", "--allow-dirty", "-o", "json", "-C", str(repo)]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]  # fmt: skip
        done = [(p, *p.communicate(timeout=300)) for p in procs]
        changed = [d for d in done if d[0].returncode == 0 and '"event": "done"' in d[1]]
        others = [d for d in done if d not in changed]
        assert len(changed) == 1, [(p.returncode, err) for p, _, err in done]
        for proc, out, err in others:  # refused (locked, or the plan went stale) or nothing to do
            refused = proc.returncode == 1 and (
                "locked by another apply" in err or "changed since the plan was made" in err
            )
            assert refused or (proc.returncode == 0 and "Nothing to do" in out + err), (proc.returncode, err)
        rels = web_releases(repo)
        assert len(rels) == releases_before + 1  # one release per change, not two
        assert rels[0]["versions"] == [version] and rels[0]["status"] == "succeeded"
        assert sorted(rels[0]["nodes"]) == [n.name for n in lab.nodes]
        new = journal_entries(repo)[journal_before:]
        assert [e["releases"] for e in new] == [{"web": rels[0]["id"]}]
        for node in lab.nodes:
            assert lab.exec(node.name, "cat /srv/web/index.html").stdout.startswith(f"<h1>web {version} on")
