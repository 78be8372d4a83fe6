"""One measurement: the example on the lab's nodes (its web app on every node, the ingress on node1),
8 clients through the ingress, first the steady state, then a rolling restart of web under the same
load. The backend is the zero-downtime tests' (tests/lab/files/loadweb.py: GET, POST /echo)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lab
from lab.load import Load, Target

from .batches import Batch, batches, when

KINDS = ("keepalive", "fresh", "post")  # not the tests' `slow` kind: its 1-2 s are the backend's own


def make_repo(the_lab: lab.Lab, dest: Path, backlog: int | None) -> Path:
    """The example with the load tests' backends, committed (its plan shows the revision)."""
    from tests.lab.fleet import apply, make_repo, reset
    from tests.lab.test_releases import commit, git
    from tests.lab.test_zero_downtime import backends

    reset(the_lab)
    repo = make_repo(the_lab, dest)
    backends(repo)
    if backlog is not None:  # the backend's listen backlog, for an A/B of its effect
        server = repo / "files" / "loadweb.py"
        text = re.sub(r"(?m)^ThreadingHTTPServer.request_queue_size = .*\n", "", server.read_text())
        line = "ThreadingHTTPServer.daemon_threads = True\n"
        server.write_text(text.replace(line, f"{line}ThreadingHTTPServer.request_queue_size = {backlog}\n"))
    (repo / ".gitignore").write_text(".funops/\n")
    git(repo, "init", "-q")
    commit(repo, "example")
    code, _, err = apply(repo)
    if code != 0:
        raise SystemExit(f"the first apply failed ({code}):\n{err}")
    return repo


@dataclass
class Result:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    retries: int = 0
    steady: list[float] = field(default_factory=list)  # seconds per request
    rollout: list[float] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    seconds: float = 0.0  # the rollout's, as its done event says
    worst: dict[str, Any] = field(default_factory=dict)  # the rollout's slowest request
    events: list[dict[str, Any]] = field(default_factory=list)  # the rollout's, as apply printed them

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": len(self.failures),
            "retries": self.retries,
            "steady": {"n": len(self.steady), "worst": worst(self.steady), "p99": p99(self.steady)},
            "rollout": {"n": len(self.rollout), "worst": worst(self.rollout), "p99": p99(self.rollout)},
            "rolloutSeconds": self.seconds,
            "worstRequest": self.worst,
            "batches": [b.row() for b in self.batches],
            "events": self.events,
        }


def worst(xs: list[float]) -> float:
    return round(max(xs), 3) if xs else 0.0


def p99(xs: list[float]) -> float:
    if not xs:
        return 0.0
    ordered = sorted(xs)
    return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3)


def funops_command(src: Path | None) -> tuple[list[str], dict[str, str]]:
    """`python -m funops`, from `src` (another checkout, for an A/B) when given."""
    env = {**os.environ, "NO_COLOR": "1"}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return [sys.executable, "-m", "funops"], env


def measure(the_lab: lab.Lab, repo: Path, steady: float, threads: int, src: Path | None) -> Result:
    node1 = the_lab.node("node1").address
    target = Target(address=node1, host="demo.funops.test", get=("/",), post=("/echo",))
    load = Load(target, threads=threads, max_seconds=steady + 600, kinds=KINDS)
    command, env = funops_command(src)
    with load.running() as report:
        time.sleep(steady)
        began = time.monotonic()
        done = subprocess.run(
            [*command, "restart", "web", "--auto-approve", "-o", "json", "-C", str(repo)],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        offset = time.time() - time.monotonic()  # wall - monotonic, to place the events
    if done.returncode != 0:
        raise SystemExit(f"funops restart failed ({done.returncode}):\n{done.stderr}{done.stdout[-3000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    start = next(when(e) for e in events if e["event"] == "start") - offset
    end = next(when(e) for e in events if e["event"] == "done") - offset
    result = Result(report.served + len(report.failures), report.failures, report.retried)
    result.seconds = next(e["seconds"] for e in events if e["event"] == "done")
    warm = report.samples[0][0] + 1.0 if report.samples else 0.0  # the clients' first second: connecting
    slowest: tuple[float, float, str, bool] | None = None
    for began_at, took, kind, _ in report.samples:
        if warm <= began_at and began_at + took < began:
            result.steady.append(took)
        elif start <= began_at <= end:
            result.rollout.append(took)
            if slowest is None or took > slowest[1]:
                slowest = (began_at, took, kind, _)
    if slowest is not None:
        at = round(slowest[0] - start, 3)  # seconds into the rollout
        result.worst = {"kind": slowest[2], "seconds": round(slowest[1], 3), "at": at}
    result.batches, result.events = batches(events), events
    return result
