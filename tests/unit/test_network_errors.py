"""A node that accepts the TCP connection and closes it (a firewall's proxy, a wrong port) is one line
of the report, never paramiko's traceback; --debug / FUNOPS_LOG=debug shows the detail again. Real
paramiko against a real loopback socket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import copy_example

GREETING = "closed the connection before the SSH greeting"


def _repo(tmp_path: Path, port: int) -> Path:
    repo = copy_example(tmp_path / "repo")
    for manifest in (repo / "manifests").glob("*.yaml"):
        manifest.unlink()
    (repo / "inventory" / "demo.yaml").write_text(
        f"nodes:\n  - name: node1\n    address: 127.0.0.1\n    port: {port}\n"
        "    ssh: {strictHostKeyChecking: false, connectTimeout: 5}\n"
    )
    return repo


def _funops(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "NO_COLOR": "1", **env},
    )


def test_a_host_that_closes_the_connection_is_one_line(tmp_path: Path, closing_port: int) -> None:
    repo = _repo(tmp_path, closing_port)
    done = _funops(tmp_path, "nodes", "-C", str(repo))
    out = done.stdout + done.stderr
    assert "Traceback" not in out and "paramiko" not in out, out
    assert out.count(GREETING) == 1, out
    assert f"127.0.0.1:{closing_port} {GREETING}" in out


def test_debug_shows_the_detail(tmp_path: Path, closing_port: int) -> None:
    repo = _repo(tmp_path, closing_port)
    for args, env in ((("--debug", "nodes"), {}), (("nodes",), {"FUNOPS_LOG": "debug"})):
        done = _funops(tmp_path, *args, "-C", str(repo), **env)
        assert "Traceback" in done.stderr and "paramiko" in done.stderr
        assert GREETING in done.stdout + done.stderr
