"""What compile makes of jobs and directories (issue 12), beyond the bundled report example: handlers of
a job's files, a randomized delay, directories shared by apps, a container's user:group, ReadWritePaths
with an override, and the rendered job units as systemd itself reads them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from funops.compile.compiler import DesiredState, compile_project
from funops.load.loader import load_project
from funops.resources import ORDER_DIRECTORY, ORDER_FILE

JOBS = """\
apiVersion: funops/v1
kind: Application
metadata: {name: report}
spec:
  type: job
  selector: {nodes: [node1]}
  version: "2"
  schedule: "Mon..Fri *-*-* 06:30:00 UTC"
  randomizedDelay: 300
  persistent: false
  command: /bin/sh -c 'date -u > /var/lib/report/last-run'
  user: report
  createUser: true
  env: {REPORT_TO: ops@example.com}
  configFiles:
    - {path: /var/lib/report/report.conf, content: "to={{ node.name }}\\n", owner: report}
  directories:
    - {path: /var/lib/report, mode: "0750"}
    - {path: /srv/shared, owner: root}
---
apiVersion: funops/v1
kind: Application
metadata: {name: archive}
spec:
  type: systemd
  selector: {nodes: [node1]}
  version: "1"
  command: /usr/bin/python3 -m http.server --bind {{ node.bind }} 8097
  port: 8097
  user: root
  hardeningOverrides: {ReadWritePaths: /var/cache/archive}
  directories:
    - {path: /srv/shared, owner: root, group: root}
    - {path: /var/lib/archive}
---
apiVersion: funops/v1
kind: Application
metadata: {name: box}
spec:
  type: container
  selector: {nodes: [node2]}
  image: 127.0.0.1:5000/funops/testapp
  version: v1
  user: "65534:65534"
  vars: {userId: 1, appId: 3}
  directories:
    - {path: /srv/box}
"""


@pytest.fixture
def jobs(example: Path) -> Path:
    (example / "manifests" / "report.yaml").write_text(JOBS)  # in place of the example's job
    return example


def _state(repo: Path) -> DesiredState:
    return compile_project(load_project(repo))


def test_every_file_of_a_job_restarts_the_job_not_a_unit(jobs: Path) -> None:
    node1 = _state(jobs).nodes["node1"]
    mine = {r.id: r for r in node1.resources if r.owner == "app/report"}
    assert mine["file:/etc/funops/apps/report.env"].handlers == ("restart:job:report",)
    assert mine["file:/var/lib/report/report.conf"].handlers == ("restart:job:report",)
    for unit in ("service", "timer"):
        assert mine[f"file:/etc/systemd/system/report.{unit}"].handlers == (
            "daemon-reload",
            "restart:job:report",
        )
    assert mine["job:report"].desired == {"enabled": "enabled", "active": "active"}
    assert not any(r.id.startswith("unit:report") for r in node1.resources)  # the job resource drives it


def test_directories_come_before_the_files_that_go_inside_them(jobs: Path) -> None:
    node1 = _state(jobs).nodes["node1"]
    ids = [r.id for r in node1.resources]
    assert ids.index("directory:/var/lib/report") < ids.index("file:/var/lib/report/report.conf")
    assert ORDER_DIRECTORY < ORDER_FILE
    assert node1.resource("directory:/var/lib/report").desired == {  # type: ignore[union-attr]
        "owner": "report",
        "group": "report",
        "mode": "0750",
    }


def test_the_timer_carries_schedule_delay_and_persistence(jobs: Path) -> None:
    timer = _state(jobs).nodes["node1"].resource("file:/etc/systemd/system/report.timer")
    text = (timer.content or b"").decode()  # type: ignore[union-attr]
    assert "OnCalendar=Mon..Fri *-*-* 06:30:00 UTC\n" in text
    assert "RandomizedDelaySec=300\n" in text and "Persistent=false\n" in text
    assert "Unit=report.service\n" in text and "WantedBy=timers.target" in text


def test_a_timer_without_a_delay_has_no_delay_line(example: Path) -> None:
    (example / "manifests" / "report.yaml").write_text(  # in place of the example's job
        JOBS.split("---")[0].replace("  randomizedDelay: 300\n", "").replace("  persistent: false\n", "")
    )
    timer = _state(example).nodes["node1"].resource("file:/etc/systemd/system/report.timer")
    text = (timer.content or b"").decode()  # type: ignore[union-attr]
    assert "RandomizedDelaySec" not in text and "Persistent=true" in text


def test_a_job_placement_is_health_checked_through_its_timer(jobs: Path) -> None:
    placement = _state(jobs).nodes["node1"].apps["report"]
    assert (placement.type, placement.unit, placement.port, placement.health) == (
        "job",
        "report.timer",
        None,
        None,
    )
    assert placement.create_user == "report"


def test_apps_sharing_a_directory_with_the_same_attributes_make_one_resource(jobs: Path) -> None:
    node1 = _state(jobs).nodes["node1"]
    shared = [r for r in node1.resources if r.id == "directory:/srv/shared"]
    assert len(shared) == 1
    assert shared[0].owner == "app/archive"  # the first app by name; both want root:root 0755
    assert shared[0].desired == {"owner": "root", "group": "root", "mode": "0755"}


def test_a_container_user_and_group_own_its_directories(jobs: Path) -> None:
    box = _state(jobs).nodes["node2"].resource("directory:/srv/box")
    assert box.desired == {"owner": "65534", "group": "65534", "mode": "0755"}  # type: ignore[union-attr]


def test_declared_directories_join_read_write_paths_even_with_an_override(jobs: Path) -> None:
    node1 = _state(jobs).nodes["node1"]
    archive = (node1.resource("file:/etc/systemd/system/archive.service").content or b"").decode()  # type: ignore[union-attr]
    assert re.findall(r"^ReadWritePaths=.*$", archive, re.M) == [
        "ReadWritePaths=/var/cache/archive /srv/shared /var/lib/archive"
    ]
    report = (node1.resource("file:/etc/systemd/system/report.service").content or b"").decode()  # type: ignore[union-attr]
    assert "ReadWritePaths=/srv/shared /var/lib/report\n" in report
    assert "Type=oneshot" in report and "Restart=" not in report and "User=report" in report
    assert "EnvironmentFile=/etc/funops/apps/report.env" in report


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_rendered_job_units_pass_systemd_analyze_verify(jobs: Path, tmp_path: Path) -> None:
    """The service and timer as rendered, side by side as on a node (the timer names its service):
    `systemd-analyze verify` parses both, checks every directive and that ExecStart is executable."""
    node1 = _state(jobs).nodes["node1"]
    units = [tmp_path / f"report.{kind}" for kind in ("service", "timer")]
    for unit in units:
        unit.write_bytes(node1.resource(f"file:/etc/systemd/system/{unit.name}").content or b"")  # type: ignore[union-attr]
    done = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_a_job_service_keeps_the_strict_sandbox(jobs: Path, tmp_path: Path) -> None:
    unit = tmp_path / "report.service"
    unit.write_bytes(
        _state(jobs).nodes["node1"].resource(f"file:/etc/systemd/system/{unit.name}").content or b""
    )  # type: ignore[union-attr]
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert match and float(match.group(1)) <= 2.5, done.stdout + done.stderr  # "OK", as app units
