"""Issue 11, runtime side, against real nodes: the node state file's framing, locks under a race,
and secrets that no output may let anyone confirm by guessing.

The tests run in file order on one repo (the bundled example with the lab's inventory).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import apply, funops, make_repo, reset

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
