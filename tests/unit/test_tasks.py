"""Apply tasks are data: the bundle runs them in order, stops at the first failure, and keeps data
(secrets included) off the command line — tested with a real sh, no node needed."""

from __future__ import annotations

import subprocess

from funops.apply.tasks import BUNDLE_RUNNER, Task, bundle, parse_bundle


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
