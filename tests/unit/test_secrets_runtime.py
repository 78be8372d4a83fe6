"""Issue 11, secrets at runtime: unreadable secret sources are located errors (never a hang), render
--out never lets a secret file be readable by others, the drift webhook URL can stay off argv, and
the container spec hash holds no secret material."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from funops.compile.compiler import compile_project
from funops.load.loader import load_project
from tests.conftest import webhook
from tests.unit.test_drift_cli import drifted


def funops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env={**base, **(env or {})},
    )  # fmt: skip


def test_a_fifo_as_secret_file_is_a_located_error_not_a_hang(example: Path) -> None:
    token = example / "secrets/api-token"
    token.unlink()
    os.mkfifo(token)
    done = funops("validate", "-C", str(example))  # the 60 s timeout would raise on a hang
    assert done.returncode == 1, done.stderr
    assert "manifests/api.yaml:" in done.stderr and "fromFile" in done.stderr
    assert "cannot read secret file secrets/api-token: not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_non_utf8_secret_file_is_a_located_error(example: Path) -> None:
    (example / "secrets/api-token").write_bytes(b"ok\xff\xfe")
    done = funops("validate", "-C", str(example))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot read secret file secrets/api-token: not UTF-8 text (byte 2)" in done.stderr


def test_render_out_creates_secret_files_0600_whatever_the_umask(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # A file left by an earlier render with a wide mode is narrowed before the secret is written.
    (out / "etc/funops/apps").mkdir(parents=True)
    (out / "etc/funops/apps/api.env").write_text("old")
    (out / "etc/funops/apps/api.env").chmod(0o666)
    render = f'exec "{sys.executable}" -m funops render -n node2 -C "{example}" --out "{out}"'
    done = subprocess.run(
        ["sh", "-c", f"umask 000; {render}"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = out / "etc/funops/apps/api.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and "API_TOKEN=" in env.read_text()
    assert stat.S_IMODE((out / "srv/web/index.html").stat().st_mode) == 0o644


def test_the_drift_webhook_can_come_from_the_environment_or_a_file(example: Path, tmp_path: Path) -> None:
    url_file = tmp_path / "hook"
    with webhook() as (url, got):
        url_file.write_text(url + "\n")
        drifted(example)
        assert funops("drift", "-C", str(example), env={"FUNOPS_NOTIFY_URL": url}).returncode == 2
        assert funops("drift", "-C", str(example), "--notify-file", str(url_file)).returncode == 2
        assert len(got) == 2 and json.loads(got[1])["summary"]["drift"] == 1
    missing = funops("drift", "-C", str(example), "--notify-file", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "--notify-file" in missing.stderr


def test_the_container_spec_hash_does_not_depend_on_secrets(example: Path) -> None:
    def spec_hash() -> str:
        desired = compile_project(load_project(example))
        return next(r.desired["specHash"] for r in desired.nodes["node2"].resources if r.kind == "container")

    before = spec_hash()
    (example / "secrets/api-token").write_text("another-token\n")
    assert spec_hash() == before  # the env file changes (and recreates the container), not the label
