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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("expr", CORPUS)
def test_the_checker_agrees_with_systemd(expr: str) -> None:
    done = subprocess.run(["systemd-analyze", "calendar", expr], capture_output=True, text=True)
    assert (calendar_problem(expr) is None) == (done.returncode == 0), (calendar_problem(expr), done.stderr)
