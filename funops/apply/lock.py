"""A per-node lock in the node's funops state dir: `mkdir` is atomic, the holder is recorded, and the
lock expires unless the running apply renews it (so a crashed controller never blocks for good)."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from ..transports import Transport
from .tasks import q

HELD_EXIT = 3
TTL_SECONDS = 900


@dataclass
class LockInfo:
    holder: str = field(default_factory=lambda: f"{os.environ.get('USER', 'unknown')}@{socket.gethostname()}")
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"{self.holder} (pid {self.pid}, since {when})"


class LockHeld(Exception):
    def __init__(self, node: str, holder: str) -> None:
        self.node, self.holder = node, holder
        super().__init__(f"node {node} is locked by another apply: {holder}")


def lock_dir(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/lock"


def acquire(transport: Transport, state_dir: str, info: LockInfo, ttl: int = TTL_SECONDS) -> None:
    d = transport.path(lock_dir(state_dir))
    script = f"""d={q(d)}; now=$(date +%s)
mkdir -p -- "$(dirname -- "$d")"
if ! mkdir -- "$d" 2>/dev/null; then
  exp=$(cat -- "$d/expires" 2>/dev/null || echo 0)
  if [ "$exp" -lt "$now" ] && mv -- "$d" "$d.stale.$$" 2>/dev/null; then
    rm -rf -- "$d.stale.$$"
    mkdir -- "$d" 2>/dev/null || {{ cat -- "$d/info" 2>/dev/null; exit {HELD_EXIT}; }}
  else cat -- "$d/info" 2>/dev/null; exit {HELD_EXIT}; fi
fi
cat > "$d/info"; echo {q(info.token)} > "$d/token"; echo $((now + {ttl})) > "$d/expires"
"""
    body = json.dumps({"holder": info.holder, "pid": info.pid, "started": info.started}).encode()
    result = transport.run(script, stdin=body, timeout=30)
    if result.exit_code == HELD_EXIT:
        try:
            data = json.loads(result.text() or "{}")
            holder = LockInfo(holder=data["holder"], pid=data["pid"], started=data["started"]).describe()
        except (ValueError, KeyError):
            holder = "an unknown holder (unreadable lock info)"
        raise LockHeld(transport.node.name, holder)
    if not result.ok:
        raise LockHeld(
            transport.node.name, f"(lock failed: {result.stderr.decode(errors='replace').strip()})"
        )


def renew(transport: Transport, state_dir: str, info: LockInfo, ttl: int = TTL_SECONDS) -> None:
    d = transport.path(lock_dir(state_dir))
    transport.run(
        f'd={q(d)}; [ "$(cat -- "$d/token" 2>/dev/null)" = {q(info.token)} ] && '
        f'echo $(( $(date +%s) + {ttl} )) > "$d/expires"',
        timeout=30,
    )


def release(transport: Transport, state_dir: str, info: LockInfo) -> None:
    d = transport.path(lock_dir(state_dir))
    transport.run(
        f'd={q(d)}; [ "$(cat -- "$d/token" 2>/dev/null)" = {q(info.token)} ] && rm -rf -- "$d"', timeout=30
    )
