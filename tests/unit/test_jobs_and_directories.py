"""Scheduled jobs and app directories (issue 12) from manifests to resources, and their errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from funops.compile.compiler import compile_project
from funops.errors import InputError
from funops.load.loader import load_project

REPORT = Path(__file__).parents[2] / "manifests" / "report.yaml"


def with_report(example: Path, edit: str = "") -> Path:
    (example / "manifests" / "report.yaml").write_text(REPORT.read_text() + edit)
    return example


def test_a_job_is_its_units_and_a_timer_and_its_directory_comes_first(example: Path) -> None:
    desired = compile_project(load_project(with_report(example))).nodes["node1"]
    mine = [r for r in desired.resources if r.owner == "app/report"]
    assert [r.id for r in mine] == [
        "directory:/var/lib/report",
        "file:/etc/systemd/system/report.service",
        "file:/etc/systemd/system/report.timer",
        "job:report",
    ]
    assert mine[0].desired == {"owner": "report", "group": "report", "mode": "0750"}
    assert mine[1].handlers == ("daemon-reload", "restart:job:report")
    service, timer = mine[1].content.decode(), mine[2].content.decode()  # type: ignore[union-attr]
    assert "Type=oneshot" in service and "Restart=" not in service and "[Install]" not in service
    assert "ReadWritePaths=/var/lib/report" in service  # ProtectSystem=strict: its directory stays writable
    assert "OnCalendar=*:0/15" in timer and "Unit=report.service" in timer and "Persistent=true" in timer
    placement = desired.apps["report"]
    assert (placement.type, placement.unit, placement.container, placement.port) == (
        "job",
        "report.timer",
        None,
        None,
    )
    assert desired.apps["report"].create_user == "report"
    assert "report" not in compile_project(load_project(example)).nodes["node2"].apps  # edge nodes only


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_rendered_timer_passes_systemd_analyze(example: Path, tmp_path: Path) -> None:
    desired = compile_project(load_project(with_report(example))).nodes["node1"]
    timer = next(r for r in desired.resources if r.name.endswith("report.timer"))
    (tmp_path / "report.timer").write_bytes(timer.content or b"")
    (tmp_path / "report.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "report.timer")],
                          capture_output=True, text=True)  # fmt: skip
    assert "report.timer" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ('  schedule: "25:00"\n', "spec.schedule: '25:00' is not a systemd calendar expression"),
        ("  port: 8099\n", "spec.port: not valid for a job app"),
    ],
)
def test_bad_job_fields_are_located(example: Path, edit: str, message: str) -> None:
    text = REPORT.read_text().replace(
        '  schedule: "*:0/15"            # every quarter hour (systemd calendar syntax)\n', ""
    )
    (example / "manifests" / "report.yaml").write_text(text + edit)
    with pytest.raises(InputError) as err:
        load_project(example)
    assert any(
        message in str(p) and p.file == "manifests/report.yaml" and p.line for p in err.value.problems
    ), [str(p) for p in err.value.problems]


def test_a_plan_shows_the_job_and_its_directory(example: Path) -> None:
    done = subprocess.run(
        [str(Path(__file__).parents[2] / ".venv" / "bin" / "funops"), "plan", "-C", str(with_report(example)),
         "-o", "json", "--node", "node1"],
        capture_output=True, text=True,
    )  # fmt: skip
    changes = {c["id"]: c for c in json.loads(done.stdout)["nodes"][0]["changes"]}
    assert changes["job:report"]["kind"] == "job" and changes["job:report"]["action"] == "create"
    assert changes["directory:/var/lib/report"]["kind"] == "directory"
