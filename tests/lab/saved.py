"""What the saved-plan lab tests share: the example repo in git, applied; the apply job's keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab import Lab

from .fleet import apply, make_repo
from .test_releases import commit, git


def applied_example(lab: Lab, path: Path) -> Path:
    """The example in a git repo of its own (`.funops/` ignored), committed and applied."""
    make_repo(lab, path)
    (path / ".gitignore").write_text(".funops/\n")
    git(path, "init", "-q")
    commit(path, "example")
    code, _, err = apply(path)
    assert code == 0, err
    return path


def apply_job_keys(where: Path) -> tuple[Path, str]:
    """The apply job's certificate (the plan job seals to it) and its private key (PEM)."""
    cert, key = where / "apply.crt", where / "apply.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=funops apply job"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key.read_text()
