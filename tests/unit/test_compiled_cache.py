"""The compiled-state cache (funops/cache/compiled.py): an unchanged repo is taken from it, and any
input of the compile that changed — a template, a secret file (in the repo or outside it), a secret
variable, funops itself — or a --revision is loaded and compiled anew. Its entries are private and
signed; a plan through it prints exactly what a plan without it prints."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from funops.cache import compiled, store
from funops.cache import key as keys
from funops.compile import compiler
from funops.load.loader import load_project

from ..conftest import copy_example


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")


def through_cache(repo: Path, revision: str | None = None) -> tuple[bool, compiler.DesiredState]:
    """(whether the project came from the cache, the compiled state) for one run's load and compile."""
    cached = compiled.lookup(repo, revision, None)
    assert cached is not None
    hit = cached.project is not None
    project = cached.project or load_project(repo)
    return hit, cached.compile(project)


def file_content(desired: compiler.DesiredState, node: str, path: str) -> bytes | None:
    res = next(r for r in desired.nodes[node].resources if r.id == f"file:{path}")
    return res.content


@pytest.fixture
def no_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit must not compile: compile_project fails the test if called."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although the cache had it")

    monkeypatch.setattr(compiler, "compile_project", refuse)


def test_an_unchanged_repo_is_taken_from_the_cache(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hit, first = through_cache(repo)
    assert not hit
    calls = []
    real = compiler.compile_project
    monkeypatch.setattr(compiler, "compile_project", lambda *a, **k: calls.append(1) or real(*a, **k))
    hit, again = through_cache(repo)
    assert hit and not calls
    assert {n: [(r.id, r.desired, r.content) for r in d.resources] for n, d in again.nodes.items()} == {
        n: [(r.id, r.desired, r.content) for r in d.resources] for n, d in first.nodes.items()
    }


def test_a_changed_template_is_compiled_anew(repo: Path) -> None:
    through_cache(repo)
    template = next((repo / "templates").rglob("*.j2"))
    template.write_text(template.read_text() + "\n# changed\n")
    hit, _ = through_cache(repo)
    assert not hit


def test_a_changed_secret_file_in_the_repo_is_compiled_anew(repo: Path) -> None:
    _, before = through_cache(repo)
    (repo / "secrets" / "api-token").write_text("another-token\n")
    hit, after = through_cache(repo)
    assert not hit
    assert file_content(after, "node2", "/etc/funops/apps/api.env") != file_content(
        before, "node2", "/etc/funops/apps/api.env"
    )


def test_a_secret_file_outside_the_repo_is_read_again(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "vault" / "api-token"
    outside.parent.mkdir()
    outside.write_text("first\n")
    manifest = repo / "manifests" / "api.yaml"
    manifest.write_text(manifest.read_text().replace("secrets/api-token", str(outside)))
    _, before = through_cache(repo)
    assert through_cache(repo)[0]  # unchanged: from the cache
    outside.write_text("second\n")  # the repo's files are as they were: only the secret changed
    hit, after = through_cache(repo)
    assert not hit
    env = file_content(after, "node2", "/etc/funops/apps/api.env")
    assert (
        env is not None
        and b"second" in env
        and env != file_content(before, "node2", "/etc/funops/apps/api.env")
    )
    outside.unlink()
    cached = compiled.lookup(repo, None, None)
    assert cached is not None and cached.project is None  # gone: loaded anew (and reported by compile)


def test_a_secret_variable_is_part_of_the_key(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = repo / "manifests" / "api.yaml"
    manifest.write_text(
        manifest.read_text().replace("{fromFile: secrets/api-token}", "{fromEnv: API_SECRET_TOKEN}")
    )
    monkeypatch.setenv("API_SECRET_TOKEN", "one")
    assert not through_cache(repo)[0]
    assert through_cache(repo)[0]
    monkeypatch.setenv("API_SECRET_TOKEN", "two")
    hit, desired = through_cache(repo)
    assert not hit
    env = file_content(desired, "node2", "/etc/funops/apps/api.env")
    assert env is not None and b"two" in env


def test_another_funops_is_compiled_anew(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    through_cache(repo)
    monkeypatch.setattr(keys, "code_identity", lambda: "another funops")
    assert not through_cache(repo)[0]


def test_a_revision_or_an_inventory_is_never_cached(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    through_cache(repo)
    assert compiled.lookup(repo, "HEAD", None) is None
    assert compiled.lookup(repo, None, [repo / "inventory" / "nodes.yaml"]) is None
    monkeypatch.setenv("FUNOPS_NO_CACHE", "1")
    assert compiled.lookup(repo, None, None) is None
    monkeypatch.setenv("FUNOPS_NO_CACHE", "noop")  # the no-op cache only
    assert compiled.lookup(repo, None, None) is not None


def test_entries_are_private_and_signed(repo: Path) -> None:
    through_cache(repo)
    folder = repo / compiled.FOLDER
    (entry,) = folder.glob("*.pickle")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert through_cache(repo)[0]
    entry.chmod(0o640)  # readable by others: it holds secrets, so it is not ours to trust
    assert not through_cache(repo)[0]
    (entry,) = folder.glob("*.pickle")  # written again, private
    data = bytearray(entry.read_bytes())
    data[-1] ^= 1  # not what this cache wrote
    entry.write_bytes(bytes(data))
    assert not through_cache(repo)[0]
    (entry,) = folder.glob("*.pickle")
    (repo / store.FOLDER / "key").chmod(0o644)
    assert not through_cache(repo)[0]


def test_a_repo_changed_while_compiling_is_not_kept(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = compiled.lookup(repo, None, None)
    assert cached is not None and cached.project is None
    project = load_project(repo)
    (repo / "manifests" / "web.yaml").write_text((repo / "manifests" / "web.yaml").read_text() + "\n")
    cached.compile(project)
    assert not list((repo / compiled.FOLDER).glob("*.pickle"))


def funops(repo: Path, *args: str, cache: str = "noop") -> tuple[int, str, str]:
    env = {**os.environ, "NO_COLOR": "1", "FUNOPS_NO_CACHE": cache}
    done = subprocess.run(
        [sys.executable, "-m", "funops", *args, "-C", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_plan_through_the_cache_prints_what_a_plan_without_it_prints(repo: Path) -> None:
    uncached = funops(repo, "plan", cache="1")
    assert uncached[0] == 2, uncached  # the example's nodes are empty: changes pending
    assert funops(repo, "plan") == uncached  # compiled, kept
    assert list((repo / compiled.FOLDER).glob("*.pickle"))
    assert funops(repo, "plan") == uncached  # from the cache
    template = repo / "templates" / "web" / "version.json.j2"
    template.write_text(template.read_text().replace("{", "{\n", 1))
    changed = funops(repo, "plan", cache="1")
    assert changed != uncached
    assert funops(repo, "plan") == changed


def test_a_project_from_the_cache_imports_no_yaml_parser(tmp_path: Path) -> None:
    """Its documents forgot their marks (load/document.py) and can read them again, but loading the
    pickled project must not import PyYAML for that."""
    import pickle

    from funops.load.loader import load_project

    repo = copy_example(tmp_path / "repo")
    data = pickle.dumps(load_project(repo, None, None))
    check = (
        "import pickle, sys; p = pickle.loads(sys.stdin.buffer.read()); "
        "assert 'yaml' not in sys.modules, 'yaml imported'; "
        "o = next(iter(p.origins.values())); assert o.doc.forgotten; o.doc.line_of(('x',)); "
        "assert 'yaml' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", check], input=data, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
