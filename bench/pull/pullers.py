"""The simulated nodes' side: a few worker processes, each polling its share of the nodes on each
node's own schedule, as funops-pull.timer would (the next poll `interval` + a random 0…`splay` s
after the last one ended: OnUnitInactiveSec= with RandomizedDelaySec=). Each poll is the product's
(funops.node.poll.poll: HTTP with If-None-Match, openssl, the push engine) with the node's files
under its root and its services the fleet's shims (bench/fleet/simlocal.py)."""

from __future__ import annotations

import collections
import heapq
import json
import random
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.fleet.simlocal import SimulatedNode
from funops.model.inventory import Node
from funops.node.poll import PullConfig, poll
from funops.pull.converge import converge_index

from .store import proc_cpu


def work(roots: Path, nodes: list[str], store: str, interval: float, splay: float, threads: int,
         seed: int) -> dict[str, int]:  # fmt: skip
    """Poll `nodes` (roots/<node>) until stdin closes; the count of each poll outcome."""
    rng = random.Random(seed)
    transports = {n: SimulatedNode(Node(name=n, address="127.0.0.1"), roots / n) for n in nodes}
    configs = {n: PullConfig(node=n, store=store, interval=interval, splay=splay, root=str(roots / n))
               for n in nodes}  # fmt: skip
    outcomes: collections.Counter[str] = collections.Counter()
    lock, stop = threading.Lock(), threading.Event()
    start = time.monotonic()
    due = [(start + rng.uniform(0, interval + splay), n) for n in nodes]  # the timers' first runs
    heapq.heapify(due)

    def one(node: str) -> None:
        try:
            report = poll(configs[node], transport=transports[node], converge=converge_index)
            what = "store-error" if report.get("storeError") else report["lastPollFetch"]
            what = f"{what}:{report.get('result')}"
        except Exception:  # a bug in the product or the bench: said, and the node polls again
            traceback.print_exc()
            what = "exception"
        with lock:
            outcomes[what] += 1
            heapq.heappush(due, (time.monotonic() + interval + rng.uniform(0, splay), node))

    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with ThreadPoolExecutor(threads, thread_name_prefix="puller") as pool:
        while not stop.is_set():
            with lock:
                at, node = heapq.heappop(due) if due and due[0][0] <= time.monotonic() else (None, "")
                wait = (due[0][0] - time.monotonic()) if due else 0.2
            if at is None:
                stop.wait(min(max(wait, 0.005), 0.2))
                continue
            pool.submit(one, node)
    return dict(outcomes)


class Pullers:
    """`processes` worker processes sharing N nodes; stopped (and their outcome counts read) on exit."""

    def __init__(self, roots: Path, nodes: list[str], store: str, interval: float, splay: float,
                 processes: int = 4, threads: int = 8) -> None:  # fmt: skip
        self.procs: list[subprocess.Popen[str]] = []
        self.outcomes: collections.Counter[str] = collections.Counter()
        for i in range(min(processes, len(nodes))):
            share = nodes[i::processes]
            argv = [sys.executable, "-m", "bench.pull", "pullers", "--roots", str(roots), "--store", store,
                    "--interval", str(interval), "--splay", str(splay), "--threads", str(threads),
                    "--seed", str(i), ",".join(share)]  # fmt: skip
            self.procs.append(
                subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )

    def cpu(self) -> float:
        """CPU seconds of the worker processes so far, with the sh and openssl they ran and waited for."""
        return sum(proc_cpu(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()  # the worker's signal: finish the polls under way, then exit
        for proc in self.procs:
            assert proc.stdout is not None
            lines = proc.stdout.read().strip().splitlines()
            proc.wait(120)
            if lines:
                self.outcomes.update(json.loads(lines[-1]))

    def __enter__(self) -> Pullers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(args: Any) -> int:
    done = work(Path(args.roots), args.nodes.split(","), args.store, args.interval, args.splay, args.threads,
                args.seed)  # fmt: skip
    print(json.dumps(done), flush=True)
    return 0
