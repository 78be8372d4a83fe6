"""`python -m bench.pull --publish-only --nodes 5000 --runs 2`: the publisher's side alone, at fleet
sizes whose pullers would swamp this machine (issue 32). Per run: a fresh repo and an empty store
served by nginx, then
1. `funops publish` (the whole process: wall, CPU with the openssl it runs), every bundle new;
2. `funops publish` again with nothing changed (a cron publish of a quiet fleet): every index signed
   again, no bundle sealed (its `-o json` counts the changed nodes);
3. a few nodes (`--pollers`, default 3) poll the store as their timers would (`funops.node.poll.poll`
   on simulated roots): the first poll converges what was published, the next is a no-op — a 304 of
   headers only in nginx's access log.
The nodes are never contacted; their agent URLs are only pinned (bench/pull/repo.py)."""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import repo as pull_repo
from .run import published, timed
from .store import Nginx


@dataclass
class PublishSample:
    nodes: int
    run: int
    first: dict[str, float] = field(default_factory=dict)  # seconds, cpuSeconds, changed
    quiet: dict[str, float] = field(default_factory=dict)
    polls: dict[str, Any] = field(default_factory=dict)  # the pollers' outcomes and the 304s' bytes


def publish(repo: Path) -> dict[str, float]:
    """One `funops publish -o json` process: wall, CPU, and how many nodes got a new bundle."""
    seconds, cpu, code, output = timed(
        [sys.executable, "-m", "funops", "publish", "-C", str(repo), "-o", "json"]
    )
    if code != 0:
        raise SystemExit(f"funops publish failed (exit {code}):\n{output[-3000:]}")
    done = json.loads(output[output.index("{") :])["published"]
    return {"seconds": round(seconds, 3), "cpuSeconds": round(cpu, 2), "nodes": len(done),
            "changed": sum(1 for p in done if p["changed"])}  # fmt: skip


def poll_noop(workdir: Path, creds: Path, nginx: Nginx, nodes: list[str]) -> dict[str, Any]:
    """Each node polls twice: the first converges what is published, the second must be a 304."""
    from bench.fleet.simlocal import SimulatedNode
    from funops.model.inventory import Node
    from funops.node.poll import PullConfig, poll
    from funops.pull.converge import converge_index

    outcomes: dict[str, list[str]] = {}
    since = time.time()
    for node in nodes:
        root = workdir / "roots" / node
        pull_repo.prepare_root(root, creds)
        config = PullConfig(node=node, store=nginx.url, interval=60, splay=0, root=str(root))
        transport = SimulatedNode(Node(name=node, address="127.0.0.1"), root)
        reports = [poll(config, transport=transport, converge=converge_index) for _ in range(2)]
        outcomes[node] = [f"{r['lastPollFetch']}:{r.get('result')}" for r in reports]
    time.sleep(0.2)  # nginx writes its access log line after the response
    requests = [r for r in nginx.requests(since) if r.uri.endswith("/latest.json")]
    not_modified = [r for r in requests if r.status == 304]
    noop = [o[1] for o in outcomes.values()]
    if len(not_modified) != len(nodes) or any(not o.startswith("not-modified:converged") for o in noop):
        raise SystemExit(f"a no-op poll was not a 304: {outcomes}, {requests}")
    return {"outcomes": outcomes, "noopBytesSent": max(r.bytes_sent for r in not_modified),
            "noopRequestBytes": max(r.request_length for r in not_modified)}  # fmt: skip


def bench_run(workdir: Path, creds: Path, nginx: Nginx, count: int, run: int, pollers: int) -> PublishSample:
    nodes = pull_repo.names(count)
    repo = workdir / f"repo-{count}-{run}"
    nginx.clear()
    pull_repo.write_repo(repo, creds, nodes, nginx.store, nginx.url, interval=60, splay=0)
    sample = PublishSample(count, run)
    sample.first = publish(repo)
    generation = published(nginx.store, nodes[0])
    sample.quiet = publish(repo)
    if sample.quiet["changed"] or published(nginx.store, nodes[0]) <= generation:
        raise SystemExit(f"the quiet publish sealed again or kept the generation: {sample.quiet}")
    sample.polls = poll_noop(workdir, creds, nginx, nodes[:: max(1, count // pollers)][:pollers])
    print(f"  N={count} run {run}: first {sample.first}, quiet {sample.quiet}, "
          f"no-op poll {sample.polls['noopBytesSent']} bytes", file=sys.stderr)  # fmt: skip
    return sample


def bench(
    workdir: Path, sizes: list[int], runs: int, pollers: int = 3, address: str | None = None
) -> list[PublishSample]:
    creds = workdir / "creds"
    pull_repo.credentials(creds)
    kwargs = {"address": address} if address else {}
    with Nginx(workdir / "nginx", workdir / "store", **kwargs) as nginx:
        return [bench_run(workdir, creds, nginx, n, r, pollers) for n in sizes for r in range(1, runs + 1)]


HEAD = ("| N | first publish wall / CPU (s) | quiet re-publish wall / CPU (s) | re-sealed | "
        "no-op poll bytes sent / received |")  # fmt: skip


def _median(of: list[PublishSample], get: Any, digits: int = 1) -> str:
    return f"{statistics.median(get(s) for s in of):.{digits}f}"


def table(samples: list[PublishSample]) -> str:
    """Per fleet size, medians over the runs."""
    rows = [HEAD, "|---|---|---|---|---|"]
    for n in sorted({s.nodes for s in samples}):
        of = [s for s in samples if s.nodes == n]
        first = [_median(of, lambda s, k=k: s.first[k]) for k in ("seconds", "cpuSeconds")]
        quiet = [_median(of, lambda s, k=k: s.quiet[k]) for k in ("seconds", "cpuSeconds")]
        poll = [_median(of, lambda s, k=k: s.polls[k], 0) for k in ("noopBytesSent", "noopRequestBytes")]
        changed = _median(of, lambda s: s.quiet["changed"], 0)
        rows.append(
            f"| {n} | {first[0]} / {first[1]} | {quiet[0]} / {quiet[1]} | {changed} | {poll[0]} / {poll[1]} |"
        )
    return "\n".join(rows)


def as_json(samples: list[PublishSample]) -> list[dict[str, Any]]:
    return [asdict(s) for s in samples]
