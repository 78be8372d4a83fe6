"""Reading a node's apply lock as gathered (the probe prints it): who holds it, and whether that apply
is still running. Taking, renewing and releasing it is apply's (apply/lock.py)."""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LockInfo:
    """Who holds a node's apply lock: shown to whoever finds it taken."""

    holder: str = field(default_factory=lambda: f"{getpass.getuser()}@{socket.gethostname()}")
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"{self.holder} (pid {self.pid}, since {when})"


def held(lock: dict | None) -> bool:
    """From a gathered lock (see gather/probe.py): is an apply still running on the node?"""
    if not lock:
        return False
    if lock.get("expires", 0) < lock.get("now", 0):
        return False
    try:
        info = LockInfo(lock["holder"], lock["pid"], lock["started"], lock.get("token", ""))
    except KeyError:
        return True  # being taken right now
    return not dead_here(info)


def dead_here(holder: LockInfo) -> bool:
    """The holder is a process of this machine that no longer runs."""
    if holder.holder.rsplit("@", 1)[-1] != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
