"""The node lock's tasks, run for real on this machine under a root directory, by both runners: the
sh (/bin/sh, as ssh and local nodes run it) and the agent's in-process one (node/native.py):
acquisition is atomic, a renewal notices a lost lock, a stale lock is broken once."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from funops.apply import lock
from funops.apply.locking import NodeLocks
from funops.model.inventory import Node
from funops.node.host import NodeShell
from funops.transports.local import LocalTransport

STATE_DIR = "/var/lib/funops"


RUNNER = "sh"


@pytest.fixture(autouse=True, params=["sh", "agent"])
def runner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "RUNNER", request.param)


class AgentRunner(NodeShell):
    """The agent's runner (node/host.py: the lock's tasks in-process) with its paths under `root`."""

    def __init__(self, root: Path) -> None:
        self.root, self.node = root, Node(name="n1", address="127.0.0.1", transport="local")

    def path(self, node_path: str) -> str:
        return f"{self.root}{node_path}"


def local(root: Path) -> LocalTransport | AgentRunner:
    if RUNNER == "agent":
        return AgentRunner(root)
    return LocalTransport(Node(name="n1", address="127.0.0.1", transport="local", root=str(root)), root)


def lock_path(root: Path) -> Path:
    return root / STATE_DIR.lstrip("/") / "lock"


def race(root: Path, n: int) -> list[lock.LockInfo]:
    """`n` acquirers at once; the ones that got the lock."""
    winners: list[lock.LockInfo] = []
    start = threading.Barrier(n)

    def one() -> None:
        info = lock.LockInfo(token=f"t{threading.get_ident()}")
        start.wait()
        try:
            lock.acquire(local(root), STATE_DIR, info)
            winners.append(info)
        except lock.LockHeld:
            pass

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return winners


def test_exactly_one_of_many_acquirers_wins_and_the_lock_is_complete(tmp_path: Path) -> None:
    for attempt in range(3):
        root = tmp_path / f"r{attempt}"
        winners = race(root, 8)
        assert len(winners) == 1
        d = lock_path(root)
        assert (d / "token").read_text().strip() == winners[0].token
        assert int((d / "expires").read_text()) > 0
        assert sorted(p.name for p in d.parent.iterdir()) == ["fingerprint.key", "lock"]  # no temp dirs
        key = d.parent / "fingerprint.key"
        assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_text()) == 64


def test_an_expired_lock_is_broken_by_exactly_one_of_many(tmp_path: Path) -> None:
    # A breaker once judged a lock another had just removed (missing: "expired") and removed the
    # lock a third took meanwhile: two winners, about 1 race in 40 under load. Several races here.
    for attempt in range(4):
        root = tmp_path / f"r{attempt}"
        d = lock_path(root)
        d.mkdir(parents=True)
        (d / "info").write_text('{"holder": "x@elsewhere", "pid": 1, "started": 0, "token": "old"}')
        (d / "token").write_text("old\n")
        (d / "expires").write_text("1\n")
        winners = race(root, 6)
        assert len(winners) == 1
        assert (d / "token").read_text().strip() == winners[0].token


def test_an_empty_lock_directory_is_taken(tmp_path: Path) -> None:
    """Left empty (a removal cut short): an acquirer's rename replaces it, or it is removed as empty."""
    lock_path(tmp_path).mkdir(parents=True)
    (winner,) = race(tmp_path, 3)
    assert (lock_path(tmp_path) / "token").read_text().strip() == winner.token


def test_a_lock_dir_without_expiry_from_an_older_funops_counts_as_stale(tmp_path: Path) -> None:
    lock_path(tmp_path).mkdir(parents=True)
    lock.acquire(local(tmp_path), STATE_DIR, lock.LockInfo())


def test_a_live_lock_is_held_and_names_its_holder(tmp_path: Path) -> None:
    first = lock.LockInfo(holder="ci@elsewhere", pid=42)
    lock.acquire(local(tmp_path), STATE_DIR, first)
    with pytest.raises(lock.LockHeld, match="ci@elsewhere"):
        lock.acquire(local(tmp_path), STATE_DIR, lock.LockInfo())


def test_renewal_raises_when_the_lock_is_no_longer_ours(tmp_path: Path) -> None:
    info = lock.LockInfo()
    lock.acquire(local(tmp_path), STATE_DIR, info)
    lock.renew(local(tmp_path), STATE_DIR, info)  # ours: fine
    (lock_path(tmp_path) / "token").write_text("someone-else\n")
    with pytest.raises(lock.LockLost):
        lock.renew(local(tmp_path), STATE_DIR, info)


def test_node_locks_stop_touching_a_node_whose_lock_was_lost(tmp_path: Path) -> None:
    locks = NodeLocks(lambda _: local(tmp_path), STATE_DIR)
    locks.take(["n1"])
    assert locks.usable("n1") is None
    (lock_path(tmp_path) / "token").write_text("someone-else\n")
    locks.renew(["n1"])
    assert "lost its apply lock" in (locks.usable("n1") or "")
    locks.release()
    assert lock_path(tmp_path).exists()  # not ours any more: left alone


def test_the_first_batch_does_not_renew_locks_just_taken(tmp_path: Path) -> None:
    """The rollout renews a batch's locks before it runs, unless they were taken moments ago (the
    first batch's: taken and confirmed just before); a later renewal still notices a lost lock."""
    locks = NodeLocks(lambda _: local(tmp_path), STATE_DIR)
    locks.take(["n1"])
    (lock_path(tmp_path) / "token").write_text("someone-else\n")
    locks.renew(["n1"], unless_within=3600)
    assert locks.usable("n1") is None  # not asked
    locks.renew(["n1"])
    assert "lost its apply lock" in (locks.usable("n1") or "")
    locks.release()


def test_the_heartbeat_renews_and_stops_on_release(tmp_path: Path) -> None:
    locks = NodeLocks(lambda _: local(tmp_path), STATE_DIR, ttl=600)
    locks.take(["n1"])
    (lock_path(tmp_path) / "expires").write_text("5\n")
    locks.start_heartbeat(interval=0.05)
    for _ in range(200):  # waits for an event, not a duration
        if int((lock_path(tmp_path) / "expires").read_text()) > 5:
            break
        threading.Event().wait(0.05)
    assert int((lock_path(tmp_path) / "expires").read_text()) > 5
    locks.release()
    assert not lock_path(tmp_path).exists()


def test_a_node_whose_lock_could_not_be_taken_is_not_usable(tmp_path: Path) -> None:
    from funops.transports import TransportError

    def connect(name: str) -> LocalTransport | AgentRunner:
        if name == "n2":
            raise TransportError("node n2: connection refused")
        return local(tmp_path)

    locks = NodeLocks(connect, STATE_DIR)
    locks.take(["n1", "n2"])
    assert locks.taken == ["n1"] and locks.usable("n1") is None
    assert "its lock could not be taken" in (locks.usable("n2") or "")
    locks.release()


def test_a_killed_local_holders_lock_is_broken_at_once(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs on this host
    lock.acquire(local(tmp_path), STATE_DIR, lock.LockInfo(pid=dead.pid, token="dead"))
    mine = lock.LockInfo()
    lock.acquire(local(tmp_path), STATE_DIR, mine)
    assert (lock_path(tmp_path) / "token").read_text().strip() == mine.token
    assert not (lock_path(tmp_path).parent / "lock.break").exists()


def test_taking_with_a_plan_confirms_each_node_it_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each node is re-read against the plan as soon as its lock is taken (in the same worker): every
    locked node once, the first one too; one that could not be locked never; a changed one is
    PlanStale, and every lock taken is released."""
    from types import SimpleNamespace

    from funops.apply.locking import PlanStale
    from funops.transports import TransportError

    roots = {name: tmp_path / name for name in ("n1", "n2", "n3")}

    def connect(name: str) -> LocalTransport | AgentRunner:
        if name == "n3":
            raise TransportError("node n3: connection refused")
        return local(roots[name])

    read: list[str] = []
    plan = SimpleNamespace(doc=SimpleNamespace(nodes=[]))
    monkeypatch.setattr(NodeLocks, "_stale", lambda self, p, planned, name, t: read.append(name) or False)
    locks = NodeLocks(connect, STATE_DIR)
    locks.take(["n3", "n2", "n1"], confirm=plan)  # type: ignore[arg-type]
    assert sorted(read) == ["n1", "n2"] and locks.taken == ["n1", "n2"]
    assert "its lock could not be taken" in (locks.usable("n3") or "")
    locks.release()

    monkeypatch.setattr(NodeLocks, "_stale", lambda self, p, planned, name, t: name == "n2")
    locks = NodeLocks(connect, STATE_DIR)
    with pytest.raises(PlanStale, match="n2 changed since the plan"):
        locks.take(["n1", "n2"], confirm=plan)  # type: ignore[arg-type]
    assert not lock_path(roots["n1"]).exists() and not lock_path(roots["n2"]).exists()
