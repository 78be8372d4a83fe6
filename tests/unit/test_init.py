"""Issue 12: `funops init` scaffolds a repo that validates; it refuses an existing repo and bad --host."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from funops.hostkeys import HostKeyError, HostSpec, fingerprint, parse_host


def funops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip


def test_init_makes_a_repo_that_validates(tmp_path: Path) -> None:
    repo = tmp_path / "new repo"
    done = funops("init", str(repo))
    assert done.returncode == 0, done.stderr
    for path in ("funops.yaml", "inventory/nodes.yaml", "manifests/hello.yaml", ".gitignore"):
        assert (repo / path).is_file(), path
    assert ".funops/" in (repo / ".gitignore").read_text().splitlines()
    assert "transport: local" in (repo / "inventory/nodes.yaml").read_text()
    valid = funops("validate", "-C", str(repo))
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "1 node(s), 1 app(s)" in valid.stdout


def test_init_in_a_git_checkout_keeps_its_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc")
    assert funops("init", str(tmp_path)).returncode == 0
    assert (tmp_path / ".gitignore").read_text().splitlines() == [
        "*.pyc",
        "# funops's local state: the apply journal and the local nodes' files",
        ".funops/",
    ]


def test_init_refuses_an_existing_repo(tmp_path: Path) -> None:
    (tmp_path / "funops.yaml").write_text("project: mine\n")
    done = funops("init", str(tmp_path))
    assert done.returncode == 1
    assert "already a funops repo" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["funops.yaml"]
    assert (tmp_path / "funops.yaml").read_text() == "project: mine\n"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("web1", "expected NAME=[USER@]HOST[:PORT]"),
        ("Web 1=10.0.0.5", "not a safe name"),
        ("web1=10.0.0.5:99999", "port"),
        ("web1=Root@10.0.0.5", "user"),
    ],
)
def test_a_bad_host_is_a_clear_error_and_nothing_is_written(tmp_path: Path, value: str, message: str) -> None:
    done = funops("init", str(tmp_path / "repo"), "--host", value, "--yes")
    assert done.returncode == 1
    assert message in done.stderr and repr(value) in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "repo").exists()


def test_host_specs() -> None:
    assert parse_host("web1=10.0.0.5") == HostSpec("web1", "10.0.0.5", 22, "root")
    assert parse_host("web1=deploy@h.example:2222") == HostSpec("web1", "h.example", 2222, "deploy")
    assert parse_host("v6=[::1]:2200") == HostSpec("v6", "::1", 2200, "root")
    with pytest.raises(HostKeyError):
        parse_host("web1=")


def test_fingerprint_is_ssh_keygens() -> None:
    blob = b"\x00\x00\x00\x0bssh-ed25519" + bytes(36)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert fingerprint(base64.b64encode(blob).decode()) == f"SHA256:{digest}"
    assert "=" not in fingerprint(base64.b64encode(blob).decode())


def test_init_names_the_editor_schemas_and_its_files_and_the_example_fit_them(tmp_path: Path) -> None:
    """Each YAML file init writes names its schema (yaml-language-server) by a path that exists; the
    schemas carry an $id and no per-field titles; init's files and the bundled example validate."""
    import json

    import jsonschema
    import yaml

    repo = tmp_path / "repo"
    assert funops("init", str(repo)).returncode == 0
    example = Path(__file__).resolve().parents[2]
    for path, what in (("funops.yaml", "settings"), ("inventory/nodes.yaml", "inventory"),
                       ("manifests/hello.yaml", "manifest")):  # fmt: skip
        first = (repo / path).read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        schema_path = (repo / path).parent / first.split("=", 1)[1]
        schema = json.loads(schema_path.read_text())
        assert (
            schema_path.name == f"{what}.schema.json"
            and schema["$id"] == f"https://funops.dev/schemas/{what}-v1.json"
        )
        assert '"title": "Capadd"' not in schema_path.read_text()
        validator = jsonschema.Draft202012Validator(schema)
        theirs = (
            [example / "funops.yaml"]
            if what == "settings"
            else sorted((example / ("inventory" if what == "inventory" else "manifests")).glob("*.yaml"))
        )
        for file in [repo / path, *theirs]:
            for doc in yaml.safe_load_all(file.read_text()):
                errors = [e.message for e in validator.iter_errors(doc)]
                assert not errors, (file, errors)
