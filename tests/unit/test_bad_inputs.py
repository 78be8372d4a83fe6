"""Every bad input is rejected with file:line and field named, and nothing is touched.

Each fixture in tests/fixtures/bad/ is one YAML file whose header says where it goes in a copy of
the example repo and which problem lines the error output must contain:

    # target: manifests/zz-bad.yaml
    # expect: manifests/zz-bad.yaml:9: spec.port: Input should be less than or equal to 65535

Inputs that are not text are made by more header lines: `# symlink: PATH -> TARGET`, `# fifo: PATH`,
`# mkdir: PATH` (paths in the repo copy). A fixture may hold bytes that are not UTF-8 (copied as is).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_example

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "bad").glob("*.yaml"))


def _header(text: str, key: str) -> list[str]:
    prefix = f"# {key}: "
    return [line[len(prefix) :].rstrip() for line in text.splitlines() if line.startswith(prefix)]


def test_there_are_at_least_30_fixtures() -> None:
    assert len(FIXTURES) >= 30


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_bad_input_is_rejected_with_location(fixture: Path, tmp_path: Path) -> None:
    raw = fixture.read_bytes()
    text = raw.decode("utf-8", "surrogateescape")
    (target,) = _header(text, "target")
    expected = _header(text, "expect")
    assert expected, f"{fixture.name} has no '# expect:' line"
    repo = copy_example(tmp_path / "repo")
    for removed in _header(text, "remove"):
        (repo / removed).unlink()
    (repo / target).parent.mkdir(parents=True, exist_ok=True)
    (repo / target).write_bytes(raw)
    for link in _header(text, "symlink"):
        path, points_to = link.split(" -> ")
        (repo / path).symlink_to(points_to)
    for path in _header(text, "fifo"):
        os.mkfifo(repo / path)
    for path in _header(text, "mkdir"):
        (repo / path).mkdir()
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))

    done = subprocess.run(
        [sys.executable, "-m", "funops", "validate", "-C", str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )

    assert done.returncode == 1, done.stdout + done.stderr
    for line in expected:
        assert line in done.stderr, f"expected {line!r} in:\n{done.stderr}"
    # validate cannot change a node: its errors do not say "nothing was changed" as if it could have
    assert "Nothing was changed on any node." not in done.stderr
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
