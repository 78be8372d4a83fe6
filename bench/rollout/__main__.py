"""What a rolling restart costs, measured on the lab (issue 32).

    FUNOPS_LAB_SLOT=6 python -m bench.rollout --runs 3 [--steady 10] [--threads 8] [--json F]
    python -m bench.rollout --src /path/to/other/checkout    # the same, with that checkout's funops

Per run: the example on 3 lab nodes (web on each, the ingress on node1), `threads` clients through the
ingress (keep-alive GETs, GETs on new connections, POSTs), `steady` seconds of steady state, then
`funops restart web` under the same load. Printed: requests, failures, retries, the worst and p99
latency of the steady state and of the rollout, and per batch its wall time, the time in drains,
restarts and health gates, and the overhead (wall minus those).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import lab

from .run import Result, make_repo, measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollout")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady", type=float, default=10, help="seconds of steady state first")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--src", type=Path, help="run funops from this checkout (an A/B)")
    parser.add_argument("--backlog", type=int, help="the web backend's listen backlog")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    opts = parser.parse_args(argv)

    the_lab = lab.up(3)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="funops-bench-rollout-") as tmp:
        repo = make_repo(the_lab, Path(tmp) / "repo", opts.backlog)
        for run in range(1, opts.runs + 1):
            result = measure(the_lab, repo, opts.steady, opts.threads, opts.src)
            results.append(result)
            show(run, result)
    if opts.json:
        opts.json.write_text(json.dumps([r.summary() for r in results], indent=2) + "\n")
    if len(results) > 1:
        summaries = [r.summary() for r in results]
        med = statistics.median
        steady = med(s["steady"]["worst"] for s in summaries)
        print(
            f"\nmedian of {len(results)} runs: steady worst {steady:.3f} s, "
            f"rollout worst {med(s['rollout']['worst'] for s in summaries):.3f} s, "
            f"overhead per batch {med(b['overhead'] for s in summaries for b in s['batches']):.3f} s; "
            f"failures {sum(s['failures'] for s in summaries)}"
        )
    return 1 if any(r.failures for r in results) else 0


def show(run: int, result: Result) -> None:
    s = result.summary()
    print(
        f"run {run}: {s['requests']} requests, {s['failures']} failures, {s['retries']} retries; "
        f"steady worst {s['steady']['worst']:.3f} s p99 {s['steady']['p99']:.3f} s ({s['steady']['n']}); "
        f"rollout worst {s['rollout']['worst']:.3f} s p99 {s['rollout']['p99']:.3f} s ({s['rollout']['n']}) "
        f"in {s['rolloutSeconds']:.2f} s; slowest: {s['worstRequest']}"
    )
    print("  batch  nodes   wall   drains  restarts  health  overhead")
    for b in result.batches:
        print(
            f"  {b.index:>5}  {','.join(b.nodes):<6} {b.wall:6.3f}  {b.drains:6.3f}  {b.restarts:8.3f}  "
            f"{b.health:6.3f}  {b.overhead:8.3f}"
        )
    for failure in result.failures[:10]:
        print("  failed:", failure)


if __name__ == "__main__":
    raise SystemExit(main())
