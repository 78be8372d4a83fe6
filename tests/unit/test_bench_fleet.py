"""The simulated fleet of the benchmark (bench/fleet) still serves, converges and plans: five
simulated agent nodes in one process on loopback, the real `funops apply` and `funops plan`."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from bench.fleet import repo, run, shims
from funops.kinds import unit

FIRST = "127.0.210.1"  # not the bench's own addresses (127.0.200-207.x): a bench may be running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((FIRST, 0))
        return int(s.getsockname()[1])


def test_a_simulated_fleet_converges_then_plans_no_changes(tmp_path: Path) -> None:
    fingerprint, token = repo.credentials(tmp_path)
    port = _free_port()
    with run.NodeProcesses(tmp_path, 5, port=port, workers=2, first=FIRST) as fleet:
        assert fleet.addresses == [f"127.0.210.{i}" for i in range(1, 6)]
        assert len(fleet.procs) == 1
        the_repo = tmp_path / "repo"
        names = repo.write_repo(the_repo, fleet.addresses, port, fingerprint, token)
        apply = subprocess.run(
            run.funops(the_repo, "apply", "--auto-approve"), capture_output=True, text=True
        )
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert "5 succeeded" in apply.stdout
        plan = subprocess.run(run.funops(the_repo, "plan"), capture_output=True, text=True)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "0 to create, 0 to update, 0 to delete" in plan.stdout
    assert names[0] == "n001"
    root = tmp_path / "roots" / FIRST
    assert (root / "etc/systemd/system/fleet.service").is_file()
    assert (root / "run/fleet-sim/fleet.service.active").is_file()  # the simulated systemd started it
    assert (root / "etc/nginx/conf.d/funops-fleet.conf").is_file()  # n001 is an ingress node


def test_the_simulated_systemd_reads_in_process_what_its_systemctl_shows(tmp_path: Path) -> None:
    """The simulated node answers a probe's units in-process (shims.show) and its tasks through the
    systemctl shim: both must tell the same state."""
    bin_dir = shims.install(tmp_path)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for name in ("running.service", "stopped.service", "disabled.service"):
        (tmp_path / "etc/systemd/system" / name).write_text("[Service]\n")

    def systemctl(*args: str) -> str:
        done = subprocess.run([bin_dir / "systemctl", *args], capture_output=True, text=True, check=True)
        return done.stdout

    systemctl("enable", "running.service", "stopped.service")
    systemctl("start", "running.service")
    units = ["disabled.service", "missing.service", "running.service", "stopped.service"]
    for properties in (unit.PROPERTIES, ("Id", "ActiveState", "Result")):
        props = [arg for p in properties for arg in ("-p", p)]
        assert shims.show(tmp_path, units, properties) == systemctl("show", *props, "--", *units)
    assert "ActiveState=active" in shims.show(tmp_path, ["running.service"], unit.PROPERTIES)
