"""`funops audit`: the journal (journal.py) read as who / when / what / result, one row per run of
apply, rollback, drift --fix, restart, exec and lock release."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ..errors import FunopsError

RESULTS = {0: "ok", 1: "error", 2: "changes", 3: "failed", 4: "unreachable"}


@dataclass
class AuditRow:
    when: str
    who: str
    event: str
    what: str
    result: str
    nodes: dict[str, str]  # node → its status in that run
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def since_cutoff(value: str, now: dt.datetime | None = None) -> dt.datetime:
    """`--since`: a duration back from now (30m, 2h, 7d) or a UTC date or time (2026-11-25T08:00)."""
    now = now or dt.datetime.now(dt.UTC)
    if m := re.fullmatch(r"(\d+)([smhd])", value.strip()):
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return now - dt.timedelta(**{unit: int(m.group(1))})
    try:
        when = dt.datetime.fromisoformat(value.strip().removesuffix("Z"))
    except ValueError:
        raise FunopsError(
            f"--since {value!r}: expected a duration such as 30m, 2h or 7d, or a UTC time such as "
            "2026-11-25T08:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def rows(entries: list[dict[str, Any]], since: dt.datetime | None = None) -> list[AuditRow]:
    out = []
    for e in entries:
        when = str(e.get("when", ""))
        if since is not None and _parsed(when) < since:
            continue
        nodes = {
            n: str(o.get("status", "?")) for n, o in (e.get("nodes") or {}).items() if isinstance(o, dict)
        }
        code = e.get("exitCode")
        result = RESULTS.get(code, f"exit {code}") if isinstance(code, int) else "?"
        if e.get("halted"):
            result += " (halted)"
        out.append(AuditRow(when, str(e.get("who", "?")), str(e.get("event", "?")), _what(e), result, nodes,
                            e.get("id")))  # fmt: skip
    return out


def _what(e: dict[str, Any]) -> str:
    event = e.get("event")
    if event == "apply":
        rev = e.get("revision") or {}
        commit = (rev.get("commit") or "")[:12] or "working tree"
        what = f"{e.get('kind', 'deploy')} of {commit}" + (" (dirty)" if rev.get("dirty") else "")
        if str(e.get("trigger", "")).startswith("restart "):
            return e["trigger"]
        if e.get("trigger"):
            what += f", {e['trigger']}"
        releases = e.get("releases") or {}
        ids = sorted(releases.values() if isinstance(releases, dict) else releases)
        return what + (f": {', '.join(map(str, ids))}" if ids else "")
    if event == "exec":
        return f"exec {e.get('app') or ''} -- {' '.join(e.get('command') or [])}".replace("  ", " ")
    if event == "lock-release":
        return "lock release" + (" --force" if e.get("forced") else "")
    return str(event)


def _parsed(when: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
