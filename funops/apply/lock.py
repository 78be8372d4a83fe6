"""A per-node lock in the node's funops state dir. The lock directory is built aside (holder, token,
expiry) and renamed into place (`mv -T`), so it never exists without its expiry; `rename` onto an
existing, non-empty directory fails, so exactly one acquirer wins. It expires unless the running
apply renews it (so a crashed controller never blocks for good); a renewal that finds another
holder's token raises LockLost, and the apply stops touching that node."""

from __future__ import annotations

import json

from ..errors import FunopsError
from ..gather.probe import KEY_FILE
from ..state.lock import LockInfo, dead_here, held  # noqa: F401 (held: re-exported for apply)
from ..tasks.shell import q
from ..transports import Transport

HELD_EXIT = 3
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
    under the breakers' mutex (see _try_acquire): check and removal are one step for other breakers."""
    d = transport.path(lock_dir(state_dir))
    transport.run(
        f'd={q(d)}; mkdir -- "$d.break" 2>/dev/null || exit 0\n'
        f'[ "$(cat -- "$d/token" 2>/dev/null)" = {q(holder.token)} ] && rm -rf -- "$d"; rmdir -- "$d.break"',
        timeout=30,
    )


def _try_acquire(transport: Transport, state_dir: str, info: LockInfo, ttl: int) -> None:
    d = transport.path(lock_dir(state_dir))
    key = transport.path(f"{state_dir.rstrip('/')}/{KEY_FILE}")  # made once, by the first lock holder
    # An expired lock is broken only under a second, short-lived mutex (`$d.break`, mkdir): two
    # acquirers that both saw it expire must not both break it (the second would break the lock
    # the first just took). A breaker killed mid-way leaves a mutex that goes after a minute.
    script = f"""d={q(d)}; now=$(date +%s); t="$d.new.$$"; b="$d.break"; k={q(key)}
mkdir -p -- "$(dirname -- "$d")" && rm -rf -- "$t" && mkdir -m 0700 -- "$t" && cat > "$t/info" \\
  && echo {q(info.token)} > "$t/token" && echo $((now + {ttl})) > "$t/expires" || exit 1
i=0
while [ $i -lt 20 ]; do
  i=$((i + 1))
  if mv -T -- "$t" "$d" 2>/dev/null; then
    [ -s "$k" ] || {{ (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > "$k.$$") \\
      && mv -f -- "$k.$$" "$k"; }}
    exit 0
  fi
  [ -d "$d" ] || continue
  if mkdir -- "$b" 2>/dev/null; then
    exp=$(cat -- "$d/expires" 2>/dev/null)
    case "$exp" in ''|*[!0-9]*) exp=0;; esac
    [ -s "$d/token" ] || exp=0
    [ "$exp" -lt "$now" ] && rm -rf -- "$d"
    rmdir -- "$b"
    [ "$exp" -lt "$now" ] || break
  else
    find "$b" -maxdepth 0 -mmin +1 -exec rmdir -- {{}} \\; 2>/dev/null; sleep 0.1
  fi
done
rm -rf -- "$t"; cat -- "$d/info" 2>/dev/null; exit {HELD_EXIT}
"""
    body = json.dumps({"holder": info.holder, "pid": info.pid, "started": info.started, "token": info.token})
    result = transport.run(script, stdin=body.encode(), timeout=30)
    if result.exit_code == HELD_EXIT:
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
    removed by hand). The new expiry is written aside and renamed: a reader never sees it empty."""
    d = transport.path(lock_dir(state_dir))
    result = transport.run(
        f'd={q(d)}; [ "$(cat -- "$d/token" 2>/dev/null)" = {q(info.token)} ] || exit {HELD_EXIT}\n'
        f'echo $(( $(date +%s) + {ttl} )) > "$d/expires.$$" && mv -f -- "$d/expires.$$" "$d/expires"',
        timeout=30,
    )
    if result.exit_code == HELD_EXIT:
        raise LockLost(transport.node.name, "another holder's token is in the lock, or it is gone")
    if not result.ok:
        why = result.stderr.decode(errors="replace").strip()[:200]
        raise LockLost(transport.node.name, why or "renewal failed")


def release(transport: Transport, state_dir: str, info: LockInfo) -> None:
    d = transport.path(lock_dir(state_dir))
    transport.run(
        f'd={q(d)}; [ "$(cat -- "$d/token" 2>/dev/null)" = {q(info.token)} ] && rm -rf -- "$d"', timeout=30
    )
