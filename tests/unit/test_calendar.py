"""Job schedules: funops's checker agrees with `systemd-analyze calendar` (issue 12)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from funops.model.calendar import calendar_problem

CORPUS = [
    "daily", "hourly", "minutely", "weekly", "monthly", "yearly", "annually", "quarterly", "semiannually",
    "*:0/5", "*:00", "*-*-* 02:00:00", "02:30", "Mon..Fri 09:00", "Mon,Wed,Fri *-*-* 12:00:00",
    "Sat,Sun 10:00", "*-*-01 00:00:00", "2026-12-24 18:00", "*-02~01 00:00", "12-25 08:00",
    "*-*-* *:*:0/15", "*-*-* 06:00:00 UTC", "*-*-* 06:00 Europe/Berlin", "*:0/15:30.5", "Mon",
    "1..5:00", "*-1,4,7,10-1 00:00",
    "", "never", "daily daily", "25:00", "12:60", "*-13-01 00:00", "*-*-32 00:00", "Funday 10:00",
    "*:0/0", "10:00 Mars/Olympus", "Mon..Xyz 10:00", "*-*-* 1:2:3:4", "abc",
]  # fmt: skip
# The edges systemd draws (v252): zones, two-digit years, steps, ranges, `~`, blanks, epoch times.
EDGES = [
    "hourly utc", "10:00 Utc", "12:00 EET", "12:00 posix/Europe/Berlin", "10:00 europe/berlin",
    "*-*-* 10:00 Europe/Berlin UTC", "UTC", "@1700000000", "@1700000000 UTC", "@1700000000.5", "@abc",
    "69-01-01", "1..3-*-*", "100-01-01", "1969-12-31", "2199-01-01", "2200-01-01", "2026/173-01-01",
    "2026/174-01-01", "2026..2030/229-01-01", "*:30/29", "*:30/45", "*-6/6-01", "*-7/6-01", "*:*/5",
    "*..5:00", "5..1:00", "*-*-5..5", "*-*-* 00:00:10..5", "*-*-* 00:00:5.5..10", "*-*-* 00:00:0/0",
    "*-*-* 00:00:0/59.999999", "*-*-* 00:00:60", "1.5:00", "*-*~28", "*-*~29", "*-02~30", "*-*~10/9",
    "*-*~10/10", "*-*~20/10", "*~1", "*-*-~1", "Mon-Wed,Fri 10:00", "Fri..Mon 10:00", "Fri-Mon 10:00",
    "Mon..Mon 10:00", "Mon,Tue,", "Mon,,Tue", "Mon  10:00", " daily", "daily ", "weekly Mon",
    "*-*-* 00:00:00 Mon", "2026-01-01 Mon", "Mon 2026-01-01 10:00 UTC", "2026-1-1 1:1:1", "Mon\n10:00",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("expr", CORPUS + EDGES)
def test_the_checker_agrees_with_systemd(expr: str) -> None:
    done = subprocess.run(["systemd-analyze", "calendar", expr], capture_output=True, text=True)
    assert (calendar_problem(expr) is None) == (done.returncode == 0), (calendar_problem(expr), done.stderr)
