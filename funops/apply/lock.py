"""A per-node lock in the node's funops state dir. The lock directory is built aside (holder, token,
expiry) and renamed into place (`mv -T`), so it never exists without its expiry; `rename` onto an
existing, non-empty directory fails, so exactly one acquirer wins. It expires unless the running
apply renews it (so a crashed controller never blocks for good); a renewal that finds another
holder's token raises LockLost, and the apply stops touching that node. An expired lock is removed
under a second mutex (`lock.break`), and only while it is non-empty: a rename can replace a missing
or empty one at any moment, and removing that would remove a lock just taken (node/shell.py)."""

from __future__ import annotations

import json

from ..errors import FunopsError
from ..gather.probe import KEY_FILE
from ..state.lock import LockInfo, dead_here, held  # noqa: F401 (held: re-exported for apply)
from ..tasks import model as m
from ..transports import Transport

TTL_SECONDS = 900


class LockLost(FunopsError):
    def __init__(self, node: str, why: str) -> None:
        self.node = node
        super().__init__(f"node {node}: lost its apply lock ({why})")


class LockHeld(FunopsError):
    def __init__(self, node: str, holder: str, holder_info: LockInfo | None = None) -> None:
        self.node, self.holder, self.holder_info = node, holder, holder_info
        super().__init__(f"node {node} is locked by another apply: {holder}")


def lock_dir(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/lock"


def acquire(transport: Transport, state_dir: str, info: LockInfo, ttl: int = TTL_SECONDS) -> None:
    """Take the node's lock or raise LockHeld naming its holder. A lock is stale once it expired, or
    at once when its holder was a process on this very host that no longer runs (a killed apply)."""
    try:
        _try_acquire(transport, state_dir, info, ttl)
    except LockHeld as exc:
        if exc.holder_info is None or not dead_here(exc.holder_info):
            raise
        _break(transport, state_dir, exc.holder_info)
        _try_acquire(transport, state_dir, info, ttl)


def _break(transport: Transport, state_dir: str, holder: LockInfo) -> None:
    """Remove a dead holder's lock, but only if it is still that holder's (its token unchanged),
    under the breakers' mutex: check and removal are one step for other breakers."""
    transport.call(m.BreakLock(lock_dir(state_dir), holder.token), timeout=30)


def _try_acquire(transport: Transport, state_dir: str, info: LockInfo, ttl: int) -> None:
    body = json.dumps({"holder": info.holder, "pid": info.pid, "started": info.started, "token": info.token})
    key = f"{state_dir.rstrip('/')}/{KEY_FILE}"  # made once, by the first lock holder
    result = transport.call(m.TakeLock(lock_dir(state_dir), key, info.token, ttl, body.encode()), timeout=30)
    if result.exit_code == m.LOCK_HELD:
        try:
            data = json.loads(result.text() or "{}")
            holder = LockInfo(data["holder"], data["pid"], data["started"], data.get("token", ""))
        except (ValueError, KeyError, TypeError):
            raise LockHeld(transport.node.name, "an unknown holder (unreadable lock info)") from None
        raise LockHeld(transport.node.name, holder.describe(), holder)
    if not result.ok:
        raise LockHeld(
            transport.node.name, f"(lock failed: {result.stderr.decode(errors='replace').strip()})"
        )


def renew(transport: Transport, state_dir: str, info: LockInfo, ttl: int = TTL_SECONDS) -> None:
    """Push the expiry out; LockLost when the lock is no longer ours (it expired and was taken, or
    removed by hand)."""
    result = transport.call(m.RenewLock(lock_dir(state_dir), info.token, ttl), timeout=30)
    if result.exit_code == m.LOCK_HELD:
        raise LockLost(transport.node.name, "another holder's token is in the lock, or it is gone")
    if not result.ok:
        why = result.stderr.decode(errors="replace").strip()[:200]
        raise LockLost(transport.node.name, why or "renewal failed")


def release(transport: Transport, state_dir: str, info: LockInfo) -> None:
    transport.call(m.ReleaseLock(lock_dir(state_dir), info.token), timeout=30)
