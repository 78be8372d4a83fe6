"""`funops lock status|release`: each node's apply lock as the probe reads it (holder, age, expiry),
and releasing one by hand. Taking and renewing it is apply's (apply/lock.py); a release by hand
goes through the same BreakLock task a dead holder's lock is broken with (only if the lock still
holds the token read, so a lock taken again in between is left alone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..apply.lock import lock_dir
from ..errors import FunopsError
from ..gather.probe import parse
from ..load.project import Project
from ..state.lock import held
from ..state.node_state import state_path
from ..tasks import model as m
from ..transports import Transport, TransportError


@dataclass
class LockStatus:
    node: str
    reachable: bool = False
    error: str | None = None
    locked: bool = False  # a lock directory is there (fresh or not)
    fresh: bool = False  # its holder still counts: not expired, not a dead process of this host
    holder: str | None = None
    pid: int | None = None
    started: float | None = None  # the holder's clock, seconds since the epoch
    age_seconds: int | None = None
    expires_in_seconds: int | None = None  # by the node's clock; negative: expired
    token: str | None = None  # never shown: it is what a release must match

    def to_json(self) -> dict[str, Any]:
        keys = {"age_seconds": "ageSeconds", "expires_in_seconds": "expiresInSeconds"}
        return {keys.get(k, k): v for k, v in self.__dict__.items() if k != "token"}

    def state(self) -> str:
        if not self.reachable:
            return "unreachable"
        if not self.locked:
            return "free"
        return "held" if self.fresh else "stale"


def lock_status(project: Project, name: str, connect: Callable[[str], Transport]) -> LockStatus:
    status = LockStatus(name)
    try:
        transport = connect(name)
        probe = transport.call(m.Probe((), state_path(project.settings.state_dir), False), timeout=60)
        facts = parse(probe.text(), transport.path)
    except (TransportError, ValueError) as exc:
        status.error = str(exc)
        return status
    status.reachable = True
    lock = facts.lock
    if not lock:
        return status
    status.locked, status.fresh = True, held(lock)
    status.holder, status.pid, status.token = lock.get("holder"), lock.get("pid"), lock.get("token")
    status.started = lock.get("started")
    if isinstance(status.started, int | float):
        status.age_seconds = max(0, int(time.time() - status.started))
    if lock.get("expires") and lock.get("now"):
        status.expires_in_seconds = lock["expires"] - lock["now"]
    return status


def lock_statuses(
    project: Project, names: list[str], connect: Callable[[str], Transport]
) -> list[LockStatus]:
    with ThreadPoolExecutor(max_workers=max(1, min(project.settings.parallel, len(names) or 1))) as pool:
        return list(pool.map(lambda n: lock_status(project, n, connect), names))


def release(project: Project, name: str, connect: Callable[[str], Transport], force: bool) -> LockStatus:
    """Remove `name`'s lock; refused while its holder still counts, unless `force`. The status as
    it was before (what the journal records)."""
    status = lock_status(project, name, connect)
    if not status.reachable:
        raise FunopsError(f"node {name}: unreachable ({status.error})")
    if not status.locked:
        raise FunopsError(f"node {name} holds no lock: nothing to release")
    if not status.token:
        raise FunopsError(f"node {name}: its lock is being taken right now (no holder yet); look again")
    if status.fresh and not force:
        raise FunopsError(
            f"node {name} is locked by {status.holder} (pid {status.pid}), which may still be applying: "
            f"the lock expires in {status.expires_in_seconds}s. Release it anyway with --force, only if "
            "that apply is dead (a release under a running apply lets another one run beside it)."
        )
    connect(name).call(m.BreakLock(lock_dir(project.settings.state_dir), status.token), timeout=30)
    after = lock_status(project, name, connect)
    if after.locked and after.token == status.token:
        raise FunopsError(
            f"node {name}: the lock is still there after the release ({after.error or 'unknown'})"
        )
    return status
