"""The locks of one rollout: take them all before touching any node, confirm each locked node is
still as planned, keep them renewed (a heartbeat thread, so a long batch never outlives its TTL),
and release them. A node whose lock could not be taken, or was lost, is never converged."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import FunopsError
from ..gather.gatherer import NodeGather, probe_node
from ..plan.planner import Plan, observed_digest
from ..transports import Transport, TransportError
from . import lock


class PlanStale(FunopsError):
    """A node changed between the plan and taking its lock (another apply ran, someone edited it)."""

    def __init__(self, changed: list[str]) -> None:
        self.changed = changed
        super().__init__(
            f"{', '.join(changed)} changed since the plan was made (another apply, or a hand edit)"
        )


class NodeLocks:
    def __init__(
        self, connect: Callable[[str], Transport], state_dir: str, ttl: int = lock.TTL_SECONDS
    ) -> None:
        self.connect, self.state_dir, self.ttl = connect, state_dir, ttl
        self.info = lock.LockInfo()
        self.taken: list[str] = []
        self.failed: dict[str, str] = {}  # node → why its lock could not be taken or was lost
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._taken_at: float | None = None  # when take() got them (monotonic)

    def take(self, names: list[str], confirm: Plan | None = None, timeout: float = 60) -> None:
        """Lock every node; on a held lock release ours and raise LockHeld. A node that cannot be
        reached is left out (in `failed`): it is reported, never converged without its lock.
        `confirm`: each node, once locked, is also re-read against that plan (`confirm`), in the
        same worker: one wait for every node less than taking them all, then confirming them all."""

        def one(name: str) -> tuple[str, Exception | None]:
            try:
                lock.acquire(self.connect(name), self.state_dir, self.info, self.ttl)
                return name, None
            except (lock.LockHeld, TransportError) as exc:
                return name, exc

        def locked_and_read(name: str) -> tuple[str, Exception | None, bool]:
            taken = results[0] if name == ordered[0] else one(name)
            stale = taken[1] is None and confirm is not None and self._stale(confirm, planned, name, timeout)
            return (*taken, stale)

        # The first node (in name order) alone, then the rest in parallel: two applies of the same
        # nodes meet on that one, so exactly one goes on — taken all in parallel, each could win
        # some nodes and both would refuse.
        ordered = sorted(names)
        planned = {n.name: n.observed for n in confirm.doc.nodes} if confirm is not None else {}
        results = [one(ordered[0])] if ordered else []
        stale: list[str] = []
        if not isinstance(results[0][1] if results else None, lock.LockHeld):
            with ThreadPoolExecutor(max_workers=max(1, min(16, len(ordered) or 1))) as pool:
                # The first node is confirmed with the others (its lock is already taken).
                done = list(pool.map(locked_and_read, ordered))
            results = [(n, e) for n, e, _ in done]
            stale = [n for n, _, s in done if s]
        self.taken = [n for n, e in results if e is None]
        self._taken_at = time.monotonic()
        held = [e for _, e in results if isinstance(e, lock.LockHeld)]
        if held:
            self.release()
            raise held[0]
        self.failed.update({n: f"its lock could not be taken: {e}" for n, e in results if e is not None})
        if stale:
            self.release()
            raise PlanStale(sorted(stale))

    def _stale(self, plan: Plan, planned: dict[str, str | None], name: str, timeout: float) -> bool:
        """Whether the locked node `name` is no longer exactly as the plan saw it (the `observed`
        digest saved plans use): two applies started together must not both run. Unreachable: in
        `failed`, not stale. Nodes a partial plan did not gather (ingress nodes a drain locks) have
        nothing to compare."""
        g = plan.gathered.get(name)
        if g is None:
            return False
        try:
            # The container count is not in the digest: not counted again.
            facts = probe_node(self.connect(name), g.probed, self.state_dir, timeout, containers=False)
        except TransportError as exc:
            self.failed[name] = f"unreachable after locking: {exc}"
            return False
        # Keyed as the plan was: the first lock on a node also creates its fingerprint key.
        facts.fingerprint_key = g.facts.fingerprint_key if g.facts else None
        now = observed_digest(NodeGather(node=name, facts=facts, probed=g.probed))
        return now != planned.get(name)

    def usable(self, name: str) -> str | None:
        """None when the rollout may touch `name`; else why not."""
        if name in self.failed:
            return self.failed[name]
        return None if name in self.taken else "not locked"

    def renew(self, names: list[str], unless_within: float = 0) -> None:
        """Push each lock's expiry out; a lost one goes to `failed`. `unless_within`: nothing when
        the locks were taken less than that many seconds ago (the first batch, just confirmed)."""
        if self._taken_at is not None and time.monotonic() - self._taken_at < unless_within:
            return

        def one(name: str) -> None:
            if name in self.failed:
                return
            try:
                lock.renew(self.connect(name), self.state_dir, self.info, self.ttl)
            except lock.LockLost as exc:
                self.failed[name] = str(exc)
            except TransportError:
                pass  # reported when its tasks run; the lock is renewed at the next beat

        _each(names, one)

    def start_heartbeat(self, interval: float | None = None) -> None:
        every = interval or max(1.0, self.ttl / 3)

        def beat() -> None:
            while not self._stop.wait(every):
                self.renew(list(self.taken))

        self._heartbeat = threading.Thread(target=beat, name="funops-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=60)

        def one(name: str) -> None:
            with contextlib.suppress(TransportError):  # else the lock expires on its own
                lock.release(self.connect(name), self.state_dir, self.info)

        _each(self.taken, one)
        self.taken = []


def _each(names: list[str], one: Callable[[str], None]) -> None:
    """`one` for every node, in parallel as taking the locks is: one round trip each, so a fleet of
    500 took ~5 s one after the other (and a heartbeat's renewal waited behind every slow node)."""
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(names) or 1))) as pool:
        list(pool.map(one, names))
