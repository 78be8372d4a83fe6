"""The pull-mode benchmark (issue 14).

python -m bench.pull --nodes 100,500 --runs 3 [--json F]        # make bench-pull
python -m bench.pull --publish-only --nodes 5000 --runs 2       # the publisher alone (publishonly.py)
python -m bench.pull pullers --roots D --store URL n001,n002,…   # one worker process of pullers
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import publishonly, pullers, run


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["pullers"]:
        parser = argparse.ArgumentParser(prog="python -m bench.pull pullers")
        parser.add_argument("--roots", required=True, help="the nodes' roots: ROOTS/<node>")
        parser.add_argument("--store", required=True, help="the store's URL")
        parser.add_argument("--interval", type=float, default=10)
        parser.add_argument("--splay", type=float, default=5)
        parser.add_argument("--threads", type=int, default=8, help="polls under way at once")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("nodes", help="comma-separated node names")
        return pullers.main(parser.parse_args(args[1:]))
    parser = argparse.ArgumentParser(prog="python -m bench.pull")
    parser.add_argument("--nodes", default="100,500", help="fleet sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=10, help="each node's poll interval (s)")
    parser.add_argument("--splay", type=float, default=5, help="each poll's random extra delay, 0…splay (s)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes running the pullers")
    parser.add_argument("--threads", type=int, default=8, help="polls under way at once per process")
    parser.add_argument("--steady", type=float, default=30, help="seconds of no-op polls measured")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument(
        "--publish-only", action="store_true", help="publish, quiet re-publish, a few no-op polls"
    )
    parser.add_argument("--pollers", type=int, default=3, help="--publish-only: nodes that poll the store")
    opts = parser.parse_args(args)
    sizes = [int(n) for n in opts.nodes.split(",")]
    if opts.publish_only:
        with tempfile.TemporaryDirectory(prefix="funops-pullbench-") as tmp:
            published = publishonly.bench(Path(tmp), sizes, opts.runs, opts.pollers)
        print(publishonly.table(published))
        if opts.json:
            opts.json.write_text(json.dumps(publishonly.as_json(published), indent=1) + "\n")
        return 0
    options = run.Options(opts.interval, opts.splay, opts.processes, opts.threads, opts.steady)
    with tempfile.TemporaryDirectory(prefix="funops-pullbench-") as tmp:
        samples = run.bench(Path(tmp), sizes, opts.runs, options)
    print(run.table(samples))
    if opts.json:
        opts.json.write_text(json.dumps(run.as_json(samples), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
