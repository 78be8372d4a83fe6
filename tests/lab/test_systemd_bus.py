"""The agent reads units from systemd's bus (funops/kinds/systemd_bus.py) instead of running
`systemctl show`: on a real node, for units in every state the kinds meet, both must print the same."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from funops.kinds import job, systemd_bus, unit
from funops.node.shell import RELOAD_PROPERTIES
from lab import Lab

UNITS = """
printf '[Service]\\nExecStart=/bin/false\\n' > /etc/systemd/system/busfail.service
printf '[Service]\\nExecStart=/bin/sleep 600\\n[Install]\\nWantedBy=multi-user.target\\n' \
  > /etc/systemd/system/1bus-x_y@.service
printf '[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' > /etc/systemd/system/bustick.service
printf '[Timer]\\nOnCalendar=*-*-* 03:00:00\\n' > /etc/systemd/system/bustick.timer
systemctl daemon-reload
systemctl enable --now 1bus-x_y@a-b.service
systemctl start busfail.service bustick.timer bustick.service || true
printf '[Service]\\nExecStart=/bin/false\\n# changed on disk\\n' > /etc/systemd/system/busfail.service
"""
CLEAN = """systemctl disable --now 1bus-x_y@a-b.service bustick.timer 2>/dev/null
systemctl reset-failed busfail.service 2>/dev/null
rm -f /etc/systemd/system/busfail.service /etc/systemd/system/1bus-x_y@.service \
  /etc/systemd/system/bustick.service /etc/systemd/system/bustick.timer
systemctl daemon-reload"""
SERVICES = ["ssh.service", "busfail.service", "1bus-x_y@a-b.service", "bustick.service", "nosuch.service"]
TIMERS = ["bustick.timer", "nosuch.timer", "apt-daily.timer"]  # apt-daily.timer is masked in the image
COMPARE = """
import json, os, subprocess, sys
cases = json.loads(sys.argv[1])
out = []
for units, props in cases:
    bus = show(units, tuple(props))
    argv = ["systemctl", "show", *[a for p in props for a in ("-p", p)], "--", *units]
    ctl = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout
    out.append([bus, ctl])
print(json.dumps(out))
"""


def _blocks(text: str) -> list[list[str]]:
    """Unit by unit, its lines in any order (systemctl prints them in the bus's property order)."""
    return [sorted(block.splitlines()) for block in text.strip().split("\n\n")]


def test_the_bus_reads_what_systemctl_show_prints(lab: Lab) -> None:
    node = lab.nodes[-1].name
    lab.exec(node, UNITS, check=True)
    try:
        source = Path(systemd_bus.__file__).read_text() + COMPARE
        cases = [
            (SERVICES, unit.PROPERTIES),
            (SERVICES + TIMERS, job._PROPERTIES),
            (SERVICES + TIMERS, RELOAD_PROPERTIES),  # what a daemon-reload is decided on
        ]
        done = lab.exec(node, ["python3", "-", json.dumps(cases)], input=source, check=True)
        for bus, ctl in json.loads(done.stdout):
            assert _blocks(bus) == _blocks(ctl)
        (_, units), (_, jobs), (_, reload) = json.loads(done.stdout)
        assert "ActiveState=failed" in units and "NextElapseUSecRealtime=" in jobs
        assert "LoadState=masked" in jobs and "LoadState=not-found" in jobs
        assert "NeedDaemonReload=yes" in reload and "NeedDaemonReload=no" in reload
        assert "FragmentPath=/etc/systemd/system/busfail.service" in reload
    finally:
        lab.exec(node, CLEAN)


KEPT = """
import subprocess
first = show(["ssh.service"], ("Id", "ActiveState"))
sock = _BUS.sock
same = all(show(["ssh.service"], ("Id", "ActiveState")) == first for _ in range(50))
kept = _BUS.sock is sock
subprocess.run(["systemctl", "daemon-reexec"], check=True)
after = show(["ssh.service"], ("Id", "ActiveState"))
print(same, kept, after == first, _BUS.sock is not sock)
"""


def test_the_bus_connection_is_kept_and_replaced_when_systemd_reexecutes(lab: Lab) -> None:
    """One connection for the agent's life: PID 1 sets up its objects for each new one (~3 ms of its
    CPU, ten times a probe's Gets). When systemd re-executes, the next read connects anew."""
    node = lab.nodes[-1].name
    done = lab.exec(node, ["python3", "-"], input=Path(systemd_bus.__file__).read_text() + KEPT, check=True)
    same, kept, same_after, replaced = done.stdout.split()
    assert (same, kept) == ("True", "True")
    assert (same_after, replaced) == ("True", "True")


JOBS = """
import json, subprocess
from funops.kinds import systemd_bus
from funops.node import native
ctl = "/bin/systemctl"
def enabled(unit):
    return subprocess.run([ctl, "is-enabled", unit], capture_output=True, text=True).stdout.strip()
out = {"before": enabled("busjob.service")}
out["enable"] = native._enable(ctl, "busjob.service", 30)
out["after"] = enabled("busjob.service")
out["start"] = native._job(ctl, "start", "busjob.service", 30)
out["active"] = systemd_bus.active_state("busjob.service")
out["restart"] = native._job(ctl, "restart", "busjob.service", 30)
out["failed"] = native._job(ctl, "restart", "busfail.service", 30)
out["missing"] = native._job(ctl, "start", "nosuch.service", 30)
out["reload"] = native._job(ctl, "reload", "nginx.service", 30)
print(json.dumps(out))
"""
JOB_UNITS = """printf '[Service]\\nExecStart=/bin/sleep 600\\n[Install]\\nWantedBy=multi-user.target\\n' \
  > /etc/systemd/system/busjob.service
printf '[Service]\\nType=exec\\nExecStart=/nonexistent\\n' > /etc/systemd/system/busfail.service
systemctl daemon-reload"""
JOB_CLEAN = """systemctl disable --now busjob.service 2>/dev/null; systemctl reset-failed busfail.service
rm -f /etc/systemd/system/busjob.service /etc/systemd/system/busfail.service; systemctl daemon-reload"""


def test_jobs_over_the_bus_do_what_systemctl_does(lab: Lab) -> None:
    """A unit's enable, start, restart and nginx's reload queued on the bus and waited for
    (node/native.py): done as systemctl does them, a failure told as systemctl tells it."""
    node = lab.nodes[-1].name
    lab.exec(node, JOB_UNITS, check=True)
    try:
        root = Path(systemd_bus.__file__).parents[2]  # the funops package, to the node as base64
        tar = subprocess.run(["tar", "-C", str(root), "-cz", "funops"], capture_output=True, check=True)
        unpack = "rm -rf /tmp/busjobs && mkdir /tmp/busjobs && base64 -d | tar -C /tmp/busjobs -xz"
        lab.exec(node, unpack, input=base64.b64encode(tar.stdout).decode(), check=True)
        done = lab.exec(node, "cd /tmp/busjobs && python3 -", input=JOBS, check=True)
        out = json.loads(done.stdout)
        assert (out["before"], out["enable"], out["after"]) == ("disabled", [0, ""], "enabled")
        assert out["start"] == out["restart"] == out["reload"] == [0, ""]
        assert out["active"] == "active"
        code, why = out["failed"]
        assert code == 1 and why.startswith("Job for busfail.service failed because")
        code, why = out["missing"]  # refused by systemd: systemctl runs and says why
        assert code != 0 and "nosuch.service not found" in why
    finally:
        lab.exec(node, JOB_CLEAN)
