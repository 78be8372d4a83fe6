"""Shell completion is typer's own (issue 12): it installs, and it completes funops's commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

FUNOPS = str(Path(__file__).parents[2] / ".venv" / "bin" / "funops")


def test_completion_installs_for_bash(tmp_path: Path) -> None:
    # typer detects the shell from the process tree, as when a user types it in bash; the trailing
    # `; exit $?` keeps bash from exec-ing funops in its place (CI's own parent is `sh`).
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = subprocess.run(
        ["bash", "-c", f"{FUNOPS} --install-completion; exit $?"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    script = (tmp_path / ".bash_completions" / "funops.sh").read_text()
    assert "_FUNOPS_COMPLETE" in script
    assert "funops.sh" in (tmp_path / ".bashrc").read_text()


def test_completion_offers_the_commands() -> None:
    env = {**os.environ, "_FUNOPS_COMPLETE": "complete_bash", "COMP_WORDS": "funops pl", "COMP_CWORD": "1"}
    done = subprocess.run([FUNOPS], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["plan"]
