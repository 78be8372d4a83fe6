"""Apply tasks are data: the bundle runs them in order, stops at the first failure, and keeps data
(secrets included) off the command line — tested with a real sh, no node needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.unit.shell_tasks import BUNDLE_RUNNER, Task, bundle, parse_bundle


def run(tasks: list[Task]) -> list:
    done = subprocess.run(["sh", "-c", BUNDLE_RUNNER], input=bundle(tasks).encode(), capture_output=True)
    return parse_bundle(done.stdout.decode("utf-8", errors="replace"))


def test_bundle_runs_in_order_and_gives_each_task_its_data() -> None:
    results = run([Task("a", "cat", b"first\x00\n"), Task("b", "echo two >&2"), Task("c", "cat")])
    assert [(r.index, r.exit_code) for r in results] == [(0, 0), (1, 0), (2, 0)]
    assert results[0].output == "first\x00" and results[1].output == "two" and results[2].output == ""


def test_bundle_stops_at_the_first_failure_and_set_e_holds_inside_a_task() -> None:
    results = run([Task("a", "set -e\nfalse\necho after"), Task("b", "echo never")])
    assert [(r.index, r.exit_code, r.output) for r in results] == [(0, 1, "")]


def test_task_data_is_not_on_any_command_line() -> None:
    script = bundle([Task("a", "cat > /dev/null", b"s3cret-value")])
    assert "s3cret-value" not in script  # base64 in a here-doc on stdin, never an argument
    assert BUNDLE_RUNNER == "exec sh -s"


def test_directories_a_write_creates_get_their_own_mode_not_the_bundles_umask(tmp_path: Path) -> None:
    import hashlib
    import stat

    from funops.resources import Resource
    from tests.unit.shell_tasks import write_file

    def file(name: str, secret: bool) -> Resource:
        data = b"x=1\n"
        desired = {"sha256": hashlib.sha256(data).hexdigest(), "mode": "0640", "owner": "nobody",
                   "group": "nogroup"}  # fmt: skip
        return Resource(id=f"file:{name}", kind="file", owner="app/a", desired=desired, order=10,
                        secret=secret, content=data)  # fmt: skip

    (tmp_path / "etc").mkdir(mode=0o711)
    prefixed = lambda p: f"{tmp_path}{p}"  # noqa: E731
    tasks = [write_file(file("/etc/app/conf/a.yaml", False), "/var/lib/funops", prefixed),
             write_file(file("/etc/app-secret/s/token", True), "/var/lib/funops", prefixed)]  # fmt: skip
    assert [r.exit_code for r in run(tasks)] == [0, 0]

    def mode(p: str) -> int:
        return stat.S_IMODE((tmp_path / p).stat().st_mode)

    assert (mode("etc/app"), mode("etc/app/conf")) == (0o755, 0o755)  # an app user can reach its config
    assert (mode("etc/app-secret"), mode("etc/app-secret/s")) == (0o700, 0o700)
    assert (tmp_path / "etc/app-secret/s").stat().st_uid == (
        tmp_path / "etc/app-secret/s/token"
    ).stat().st_uid
    assert mode("etc") == 0o711  # an existing directory is left as it is
