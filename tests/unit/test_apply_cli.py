"""`funops apply` refuses to run unattended without --auto-approve (a CI job must opt in)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_apply_without_a_tty_and_without_auto_approve_refuses(example: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "funops", "apply", "-C", str(example)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert done.returncode == 1
    assert "pass --auto-approve" in done.stderr
    assert not (example / ".funops" / "nodes").exists()  # nothing was written on any node
