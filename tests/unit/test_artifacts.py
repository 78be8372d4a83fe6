"""Artifacts of systemd apps (issue 15): the resource compile makes, what the probe reads back, and
the place task under a real sh with a root prefix (tests/lab/test_artifacts.py runs it on nodes)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

from funops.compile import artifacts
from funops.diff.differ import live_attributes
from funops.gather.probe import parse
from funops.ids import Handler
from funops.load.source import WorkingTree
from funops.model.manifests import Artifact
from funops.node.probe import build_script
from tests.unit.shell_tasks import place_artifact, remove_artifact

LINK = "/opt/funops/apps/site/current"


def site_dir(root: Path, text: str) -> None:
    (root / "art" / "www").mkdir(parents=True, exist_ok=True)
    (root / "art" / "www" / "index.html").write_text(text)
    (root / "art" / "run.sh").write_text("#!/bin/sh\n")
    (root / "art" / "run.sh").chmod(0o755)


def resource(repo: Path, version: str, keep: int = 5):
    res, error = artifacts.resource(
        "site",
        version,
        Artifact(path="art"),
        WorkingTree(repo),
        keep,
        Handler.restart("unit", "site.service"),
    )
    assert error is None and res is not None
    return res


def test_a_repo_directory_is_a_reproducible_tar_and_its_sha_follows_the_content(tmp_path: Path) -> None:
    site_dir(tmp_path, "one\n")
    first, again = resource(tmp_path, "1"), resource(tmp_path, "1")
    assert first.content == again.content and first.desired == again.desired
    assert first.id == f"artifact:{LINK}" and first.handlers == ("restart:unit:site.service",)
    assert first.desired == {"release": "1", "sha256": hashlib.sha256(first.content or b"").hexdigest()}
    with tarfile.open(fileobj=io.BytesIO(first.content or b"")) as tar:
        assert {m.name: m.mode for m in tar.getmembers()} == {"run.sh": 0o755, "www/index.html": 0o644}
    site_dir(tmp_path, "two\n")
    assert resource(tmp_path, "1").desired["sha256"] != first.desired["sha256"]


def test_a_url_artifact_is_fetched_on_the_node_under_its_own_name() -> None:
    sha = "a" * 64
    res, _ = artifacts.resource(
        "site",
        "2",
        Artifact(url="http://127.0.0.1:5000/x/app.jar?t=1", sha256=sha),
        None,
        3,
        "r",  # type: ignore[arg-type]
    )
    assert res is not None and res.content is None
    assert res.run_spec == {
        "url": "http://127.0.0.1:5000/x/app.jar?t=1", "dir": "/opt/funops/apps/site/releases/2",
        "file": "app.jar", "keep": 3,
    }  # fmt: skip


def test_the_probe_reads_the_link_and_the_marker(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rel = root / "opt/funops/apps/site/releases/4"
    rel.mkdir(parents=True)
    (rel / ".funops-artifact").write_text("b" * 64 + "\n")
    (root / "opt/funops/apps/site/current").symlink_to("releases/4")

    def path(p: str) -> str:
        return f"{root}{p}"

    script = build_script(
        [f"artifact:{LINK}", "artifact:/opt/funops/apps/gone/current"], "/s/state.json", path
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    facts = parse(out, path)
    assert live_attributes(f"artifact:{LINK}", facts) == {"release": "4", "sha256": "b" * 64}
    assert live_attributes("artifact:/opt/funops/apps/gone/current", facts) is None


def run(task, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", task.script], input=task.stdin, capture_output=True, cwd=root)


def test_place_switches_only_a_complete_release_keeps_k_and_reuses_a_kept_dir(tmp_path: Path) -> None:
    repo, root = tmp_path / "repo", tmp_path / "root"
    repo.mkdir()
    root.mkdir()

    def path(p: str) -> str:
        return f"{root}{p}"

    releases = root / "opt/funops/apps/site/releases"
    for version in ("1", "2", "3"):
        site_dir(repo, f"v{version}\n")
        done = run(place_artifact(resource(repo, version, keep=2), path), root)
        assert done.returncode == 0, done.stdout
        assert (root / "opt/funops/apps/site/current/www/index.html").read_text() == f"v{version}\n"
    assert sorted(p.name for p in releases.iterdir()) == ["2", "3"]  # keep 2
    assert (root / "opt/funops/apps/site/current").readlink() == Path("releases/3")

    # A corrupt upload (content not matching the sha256 it was planned with): nothing switched.
    bad = resource(repo, "4")
    corrupt = place_artifact(bad, path)
    done = subprocess.run(["sh", "-c", corrupt.script], input=b"tampered", capture_output=True, cwd=root)
    assert done.returncode == 1 and b"sha256 mismatch" in done.stdout
    assert (root / "opt/funops/apps/site/current").readlink() == Path("releases/3")
    assert sorted(p.name for p in releases.iterdir()) == ["2", "3"]  # no temp dir left

    # Back to 2 from a release record (no content): the kept dir is reused, nothing fetched.
    site_dir(repo, "v2\n")
    kept = resource(repo, "2", keep=2)
    restored = place_artifact(type(kept)(**{**kept.__dict__, "content": None}), path)
    assert restored.stdin is None
    inode = (releases / "2" / "www" / "index.html").stat().st_ino
    done = run(restored, root)
    assert done.returncode == 0 and b"nothing to fetch" in done.stdout
    assert (root / "opt/funops/apps/site/current").readlink() == Path("releases/2")
    assert (releases / "2" / "www" / "index.html").stat().st_ino == inode

    # A pruned upload cannot come back from a record: a clear error, nothing switched.
    site_dir(repo, "v1\n")
    gone = resource(repo, "1", keep=2)
    done = run(place_artifact(type(gone)(**{**gone.__dict__, "content": None}), path), root)
    assert done.returncode == 1 and b"is no longer on this node" in done.stdout
    assert (root / "opt/funops/apps/site/current").readlink() == Path("releases/2")

    assert run(remove_artifact(LINK, path), root).returncode == 0
    assert not (root / "opt/funops/apps/site").exists()


def test_a_commit_tree_gives_the_same_artifact_as_the_working_tree(example: Path) -> None:
    from funops.compile.compiler import compile_project
    from funops.load.loader import load_project

    subprocess.run(["git", "-C", str(example), "init", "-q"], check=True)
    subprocess.run(["git", "-C", str(example), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(example), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        check=True,
    )
    link = "artifact:/opt/funops/apps/docs/current"
    tree = compile_project(load_project(example)).nodes["node2"].resource(link)
    head = compile_project(load_project(example, revision="HEAD")).nodes["node2"].resource(link)
    assert tree is not None and head is not None
    assert tree.desired == head.desired and tree.content == head.content
