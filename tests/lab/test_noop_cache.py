"""The no-op cache over the agent on real nodes (funops/cache): a no-op plan or apply answered from
the cache prints exactly what the full path prints, and a change on a node or in the repo is seen."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import FUNOPS, apply, make_repo, reset

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("noop") / "repo", transport="agent")
    # The cache leaves apps placed by `replicas` to the full path (placement reads the free disk).
    (repo / "manifests" / "api.yaml").unlink()
    ingress = repo / "manifests" / "ingress.yaml"
    ingress.write_text(
        "\n".join(line for line in ingress.read_text().splitlines() if "service: api" not in line) + "\n"
    )
    code, _, err = apply(repo)
    assert code == 0, err
    yield repo
    reset(lab)


def run(repo: Path, *args: str, cache: bool = True) -> tuple[int, str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    if not cache:
        env["FUNOPS_NO_CACHE"] = "1"
    done = subprocess.run(
        [*FUNOPS, *args, "-C", str(repo)], capture_output=True, text=True, env=env, timeout=300
    )
    return done.returncode, done.stdout, done.stderr


def entries(repo: Path) -> dict[str, int]:
    folder = repo / ".funops" / "cache" / "noop"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} if folder.exists() else {}


@pytest.mark.parametrize("command", [("plan", "--no-diff"), ("apply", "--auto-approve")])
def test_a_cached_noop_prints_what_the_full_path_prints(repo: Path, command: tuple[str, ...]) -> None:
    uncached = run(repo, *command, cache=False)
    assert uncached[0] == 0, uncached
    recorded = run(repo, *command)  # a miss: the full path, recorded
    written = entries(repo)
    assert recorded == uncached and written, recorded
    replayed = run(repo, *command)
    assert replayed == uncached
    assert entries(repo) == written  # answered from the entry: the full path would have written it again


def test_a_change_on_a_node_is_seen(lab: Lab, repo: Path) -> None:
    assert run(repo, "plan", "--no-diff")[0] == 0
    assert run(repo, "plan", "--no-diff")[0] == 0  # cached
    lab.exec("node1", "echo tampered >> /srv/web/health", check=True)
    code, out, err = run(repo, "plan", "--no-diff")
    assert code == 2, out + err
    assert "file:/srv/web/health" in out and "node1" in out
    code, _, err = apply(repo)
    assert code == 0, err
    lab.exec("node2", "systemctl stop web.service", check=True)
    code, out, err = run(repo, "plan", "--no-diff")
    assert code == 2 and "unit:web.service" in out, out + err
    assert apply(repo)[0] == 0
    assert run(repo, "plan", "--no-diff") == run(repo, "plan", "--no-diff", cache=False)


def test_a_changed_template_is_seen(repo: Path) -> None:
    assert run(repo, "plan", "--no-diff")[0] == 0
    assert run(repo, "plan", "--no-diff")[0] == 0  # cached
    template = repo / "templates" / "web" / "version.json.j2"
    before = template.read_text()
    template.write_text(before + "\n")
    try:
        code, out, err = run(repo, "plan", "--no-diff")
        assert code == 2 and "file:/srv/web/version.json" in out, out + err
    finally:
        template.write_text(before)
    assert run(repo, "plan", "--no-diff")[0] == 0  # the recorded entry again
