"""One fleet size, one run: nginx serving an empty store, N pullers polling it, then
1. `funops publish` of generation 1 (whole process: wall, CPU), and the time from the publish's end
   until 50/95/100 % of the nodes' status files say converged on it;
2. the same for generation 2 (the app's version changed);
3. steady state, nothing new: the store's requests/s and the bytes of a no-op poll (its 304s in
   nginx's access log), the pullers' CPU per no-op poll (in-process), nginx's CPU per request;
4. a no-op poll as its own process (`python -m funops.agent pull --config CONFIG`, what funops-pull.service
   runs), CPU and wall, a few times on one node.
The pullers share this machine's CPUs with nginx, the publisher and each other: on a real fleet
each node polls on its own CPU, so convergence times here are an upper bound under load."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import repo as pull_repo
from .pullers import Pullers
from .store import Nginx

QUANTILES = (0.5, 0.95, 1.0)
OWN_PROCESS_POLLS = 5


@dataclass
class Sample:
    nodes: int
    run: int
    interval: float
    splay: float
    publish: dict[str, dict[str, float]] = field(default_factory=dict)  # gen → seconds, cpuSeconds
    converged: dict[str, dict[str, float | None]] = field(default_factory=dict)  # gen → p50/p95/p100
    rollout: dict[str, dict[str, float]] = field(default_factory=dict)  # gen → the store's load meanwhile
    steady: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)  # the pullers' polls by outcome, whole run


@dataclass
class Options:
    interval: float = 10
    splay: float = 5
    processes: int = 4
    threads: int = 8
    steady_seconds: float = 30
    timeout: float = 600  # per generation, for every node to converge


def timed(argv: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, exit code, output) of one process alone (os.wait4)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return (
        time.monotonic() - started,
        usage.ru_utime + usage.ru_stime,
        os.waitstatus_to_exitcode(status),
        output,
    )


def publish(repo: Path) -> dict[str, float]:
    seconds, cpu, code, output = timed([sys.executable, "-m", "funops", "publish", "-C", str(repo)])
    if code != 0:
        raise SystemExit(f"funops publish failed (exit {code}):\n{output[-3000:]}")
    return {"seconds": round(seconds, 3), "cpuSeconds": round(cpu, 2)}


def published(store: Path, node: str) -> int:
    """The generation the store's index for `node` names (the signer's clock: read, not guessed)."""
    return int(json.loads((store / "nodes" / node / "latest.json").read_text())["index"]["generation"])


def status(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "var/lib/funops/pull.json").read_text())
    except (OSError, ValueError):
        return {}


def watch(
    roots: Path, nodes: list[str], generation: int, since: float, timeout: float
) -> dict[str, float | None]:
    """Seconds from `since` (monotonic) until each quantile of the nodes reported `generation`
    converged in their status files (read every 0.5 s); None for a quantile not reached in time."""
    pending, times, failures = set(nodes), [], 0
    while pending and time.monotonic() < since + timeout:
        for node in sorted(pending):
            doc = status(roots / node)
            if doc.get("result") == "converged" and doc.get("generation") == generation:
                times.append(max(0.0, time.monotonic() - since))
                pending.discard(node)
            elif (
                doc.get("result") in ("failed", "refused")
                and (doc.get("published") or {}).get("generation") == generation
            ):
                failures += 1
                if failures <= 3:
                    print(f"  {node}: {doc['result']}: {doc.get('error')}", file=sys.stderr)
        time.sleep(0.5)
    times.sort()
    out: dict[str, float | None] = {"converged": len(times), "failedPolls": failures}
    for q in QUANTILES:
        k = math.ceil(q * len(nodes))
        out[f"p{round(q * 100)}"] = round(times[k - 1], 2) if len(times) >= k else None
    return out


def rollout(nginx: Nginx, since: float, until: float, pullers_cpu: float) -> dict[str, float]:
    """The store's load from a publish until the nodes converged it (requests/s, the bundles fetched),
    and the pullers' CPU meanwhile per bundle fetched (≈ per converge: openssl, the engine, the shims)."""
    requests = nginx.requests(since, until)
    bundles = sum(1 for r in requests if r.status == 200 and "/bundles/" in r.uri)
    return {
        "seconds": round(until - since, 1),
        "requestsPerSecond": round(len(requests) / (until - since), 1),
        "bundles": bundles,
        "indexes": sum(1 for r in requests if r.status == 200 and r.uri.endswith("/latest.json")),
        "notModified": sum(1 for r in requests if r.status == 304),
        "bytesSent": sum(r.bytes_sent for r in requests),
        "pullersCpuSeconds": round(pullers_cpu, 2),
        "cpuPerConvergeMs": round(1000 * pullers_cpu / max(1, bundles), 1),
    }


def steady(nginx: Nginx, pullers: Pullers, seconds: float) -> dict[str, float]:
    """Requests, 304s, bytes and CPU over `seconds` with nothing new published."""
    cpu0, nginx0, t0 = pullers.cpu(), nginx.cpu(), time.time()
    time.sleep(seconds)
    cpu1, nginx1, t1 = pullers.cpu(), nginx.cpu(), time.time()
    requests = nginx.requests(t0, t1)
    not_modified = [r for r in requests if r.status == 304]
    noop = len(not_modified) or 1
    return {
        "seconds": round(t1 - t0, 1),
        "requests": len(requests),
        "requestsPerSecond": round(len(requests) / (t1 - t0), 1),
        "notModified": len(not_modified),
        "other": len(requests) - len(not_modified),
        "noopBytesSent": round(statistics.mean(r.bytes_sent for r in not_modified), 1) if not_modified else 0,
        "noopRequestBytes": round(statistics.mean(r.request_length for r in not_modified), 1)
        if not_modified
        else 0,
        "pullersCpuSeconds": round(cpu1 - cpu0, 2),
        "noopPollCpuMs": round(1000 * (cpu1 - cpu0) / noop, 2),
        "nginxCpuMsPerRequest": round(1000 * (nginx1 - nginx0) / max(1, len(requests)), 3),
    }


def own_process_polls(workdir: Path, roots: Path, node: str, store: str) -> dict[str, float]:
    """A no-op poll as funops-pull.service runs it: a process of its own (interpreter start included)."""
    config = workdir / f"pull-{node}.json"
    config.write_text(json.dumps({"node": node, "store": store, "root": str(roots / node)}))
    command = [sys.executable, "-m", "funops.agent", "pull", "--config", str(config)]
    runs = [timed(command) for _ in range(OWN_PROCESS_POLLS)]
    bare = [timed([sys.executable, "-c", "pass"]) for _ in range(OWN_PROCESS_POLLS)]  # the interpreter alone
    for _, _, code, output in runs:
        if code != 0 or '"not-modified"' not in output:
            raise SystemExit(f"a no-op poll in its own process did not get a 304 (exit {code}): {output}")
    return {"processPollWallMs": round(1000 * statistics.median(r[0] for r in runs), 1),
            "processPollCpuMs": round(1000 * statistics.median(r[1] for r in runs), 1),
            "interpreterStartCpuMs": round(1000 * statistics.median(r[1] for r in bare), 1)}  # fmt: skip


def bench_run(workdir: Path, creds: Path, nginx: Nginx, count: int, run: int, opts: Options) -> Sample:
    nodes = pull_repo.names(count)
    repo, roots = workdir / f"repo-{count}", workdir / "roots"
    nginx.clear()
    pull_repo.write_repo(repo, creds, nodes, nginx.store, nginx.url, opts.interval, opts.splay)
    for node in nodes:
        pull_repo.prepare_root(roots / node, creds)
    sample = Sample(count, run, opts.interval, opts.splay)
    with Pullers(roots, nodes, nginx.url, opts.interval, opts.splay, opts.processes, opts.threads) as pullers:
        time.sleep(opts.interval)  # the nodes poll an empty store (404s) for a while: their timers run
        for generation in (1, 2):
            pull_repo.set_version(repo, generation)
            began, cpu0 = time.time(), pullers.cpu()
            sample.publish[str(generation)] = publish(repo)
            since = time.monotonic()
            sample.converged[str(generation)] = watch(
                roots, nodes, published(nginx.store, nodes[0]), since, opts.timeout
            )
            sample.rollout[str(generation)] = rollout(nginx, began, time.time(), pullers.cpu() - cpu0)
            got = (sample.publish[str(generation)], sample.converged[str(generation)])
            print(f"  N={count} run {run} generation {generation}: publish {got[0]}, converged {got[1]}",
                  file=sys.stderr)  # fmt: skip
        time.sleep(opts.interval + opts.splay)  # every node's next poll is a no-op now
        sample.steady = steady(nginx, pullers, opts.steady_seconds)
        sample.steady.update(own_process_polls(workdir, roots, nodes[0], nginx.url))
        print(f"  N={count} run {run} steady: {sample.steady}", file=sys.stderr)
    sample.outcomes = dict(pullers.outcomes)
    return sample


def bench(
    workdir: Path, sizes: list[int], runs: int, opts: Options, address: str | None = None
) -> list[Sample]:
    creds = workdir / "creds"
    pull_repo.credentials(creds)
    samples = []
    kwargs = {"address": address} if address else {}
    with Nginx(workdir / "nginx", workdir / "store", **kwargs) as nginx:
        for count in sizes:
            for run in range(1, runs + 1):
                samples.append(bench_run(workdir, creds, nginx, count, run, opts))
    return samples


def _median(of: list[Sample], get: Any, digits: int = 1) -> str:
    values = [get(x) for x in of]
    got = [v for v in values if v is not None]
    return f"{statistics.median(got):.{digits}f}" if len(got) == len(values) and got else "—"


ROLLOUT_HEAD = (
    "| N | publish wall / CPU (s) | gen 1 converged 50 / 95 / 100 % (s) "
    "| gen 2 converged 50 / 95 / 100 % (s) | store req/s (gen 2) | puller CPU per converge (ms) |"
)
NOOP_HEAD = ("| N | store req/s | bytes sent / received per poll | puller CPU per poll (ms) "
             "| own-process poll CPU / interpreter alone (ms) | nginx CPU per request (ms) |")  # fmt: skip


def table(samples: list[Sample]) -> str:
    """Per fleet size, medians over the runs: a rollout table, then a no-op poll table."""
    rollout, noop = [ROLLOUT_HEAD, "|---|---|---|---|---|---|"], [NOOP_HEAD, "|---|---|---|---|---|---|"]
    for n in sorted({x.nodes for x in samples}):
        of = [x for x in samples if x.nodes == n]
        pub = [_median(of, lambda x, k=k: x.publish["1"][k]) for k in ("seconds", "cpuSeconds")]
        gens = [" / ".join(_median(of, lambda x, g=g, q=q: x.converged[g][q]) for q in ("p50", "p95", "p100"))
                for g in ("1", "2")]  # fmt: skip
        rps = _median(of, lambda x: x.rollout["2"]["requestsPerSecond"])
        conv = _median(of, lambda x: x.rollout["2"]["cpuPerConvergeMs"], 0)
        rollout.append(f"| {n} | {pub[0]} / {pub[1]} | {gens[0]} | {gens[1]} | {rps} | {conv} |")
        st = {k: _median(of, lambda x, k=k: x.steady[k], d) for k, d in (
            ("requestsPerSecond", 1), ("noopBytesSent", 0), ("noopRequestBytes", 0), ("noopPollCpuMs", 1),
            ("processPollCpuMs", 0), ("interpreterStartCpuMs", 0), ("nginxCpuMsPerRequest", 2))}  # fmt: skip
        noop.append(f"| {n} | {st['requestsPerSecond']} | {st['noopBytesSent']} / {st['noopRequestBytes']} "
                    f"| {st['noopPollCpuMs']} | {st['processPollCpuMs']} / {st['interpreterStartCpuMs']} "
                    f"| {st['nginxCpuMsPerRequest']} |")  # fmt: skip
    return "\n".join(["Rollouts (times from the end of `funops publish`):", *rollout, "",
                      "No-op polls (steady state, nothing new published):", *noop])  # fmt: skip


def as_json(samples: list[Sample]) -> list[dict[str, Any]]:
    return [asdict(s) for s in samples]
