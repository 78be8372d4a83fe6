"""The probe fragments and fact parsers of the directory and job kinds: a real sh for directories,
captured `systemctl show` output for jobs (the lab runs both on nodes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from funops.diff.differ import live_attributes
from funops.gather.probe import parse
from funops.node.probe import build_script


def test_a_directory_is_read_with_its_owner_group_mode_and_type(tmp_path: Path) -> None:
    (tmp_path / "var/lib/report").mkdir(parents=True, mode=0o750)
    os.chmod(tmp_path / "var/lib/report", 0o750)
    (tmp_path / "var/lib/plain").write_text("not a dir\n")

    def path(p: str) -> str:
        return f"{tmp_path}{p}"

    ids = ["directory:/var/lib/report", "directory:/var/lib/plain", "directory:/var/lib/gone"]
    out = subprocess.run(["sh", "-c", build_script(ids, "/var/lib/funops/state.json", path)],
                         capture_output=True, text=True).stdout  # fmt: skip
    facts = parse(out, path)
    live = live_attributes("directory:/var/lib/report", facts)
    assert live is not None and live["mode"] == "0750" and set(live) == {"owner", "group", "mode"}
    assert live_attributes("directory:/var/lib/plain", facts) == {"type": "regular file"}
    assert live_attributes("directory:/var/lib/gone", facts) is None

    # An app whose user is a uid owns its directories by number: compared by number, not by name.
    uid, gid = str(os.getuid()), str(os.getgid())
    desired = {"owner": uid, "group": gid, "mode": "0750"}
    assert live_attributes("directory:/var/lib/report", facts, desired) == desired
    by_name = {**live, "mode": "0750"}
    assert live_attributes("directory:/var/lib/report", facts, by_name) == live


CAPTURED_JOB = """\
@@funops jobs
Id=report.timer
LoadState=loaded
ActiveState=active
UnitFileState=enabled
NextElapseUSecRealtime=Wed 2026-11-25 05:00:00 UTC
Result=success
ExecMainStatus=0
ExecMainExitTimestamp=
Id=report.service
LoadState=loaded
ActiveState=inactive
UnitFileState=static
NextElapseUSecRealtime=
Result=exit-code
ExecMainStatus=3
ExecMainExitTimestamp=Wed 2026-11-25 04:00:01 UTC
@@funops end
"""


def test_a_job_compares_its_timer_and_reports_its_last_run() -> None:
    from funops.kinds.job import KIND

    script = build_script(["job:report"], "/var/lib/funops/state.json", lambda p: p)
    assert "report.timer report.service" in script
    facts = parse(CAPTURED_JOB, lambda p: p)
    assert live_attributes("job:report", facts) == {"enabled": "enabled", "active": "active"}
    assert KIND.reported(facts) == {
        "jobs": {
            "report": {
                "lastRun": {"result": "exit-code", "exitStatus": "3", "at": "Wed 2026-11-25 04:00:01 UTC"},
                "next": "Wed 2026-11-25 05:00:00 UTC",
            }
        }
    }
    assert live_attributes("job:other", facts) is None


STUB_DOCKER = """#!/bin/sh
# A docker CLI stand-in: $ENGINE says whether the engine answers; it knows the container `api`.
echo "$1" >> "$CALLS"
[ "$ENGINE" = up ] || { echo 'Cannot connect to the Docker daemon' >&2; echo; exit 1; }
case "$1" in
  version) echo 27.5.1 ;;
  inspect) shift 6; rc=0; for name in "$@"; do
      if [ "$name" = api ]; then echo '{"name":"/api","image":"i:1","status":"running","labels":{}}'
      else echo "Error: No such container: $name" >&2; rc=1; fi; done; exit $rc ;;
esac
"""


def test_containers_are_read_with_one_docker_run_and_the_engine_asked_only_after_a_miss(
    tmp_path: Path,
) -> None:
    (tmp_path / "docker").write_text(STUB_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    calls = tmp_path / "calls"

    def probe(engine: str, *names: str) -> tuple[dict, bool, list[str]]:
        calls.write_text("")
        script = build_script([f"container:{n}" for n in names], "/nonexistent/state.json", lambda p: p,
                              containers=False)  # fmt: skip
        path = f"{tmp_path}:{os.environ['PATH']}"
        env = {**os.environ, "PATH": path, "ENGINE": engine, "CALLS": str(calls)}
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env).stdout
        facts = parse(out, lambda p: p)
        return facts.containers, facts.docker, calls.read_text().split()

    found, docker, ran = probe("up", "api")  # a converged node: the inspect alone
    assert set(found) == {"api"} and docker is not False and ran == ["inspect"]
    found, docker, ran = probe("up", "api", "web")  # one missing: the engine does run
    assert set(found) == {"api"} and docker is not False and ran == ["inspect", "version"]
    found, docker, ran = probe("down", "api")
    assert found == {} and docker is False and ran == ["inspect", "version"]
