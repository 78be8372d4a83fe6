"""The simulated fleet benchmark (issue 13, item 5).

python -m bench.fleet --nodes 100,250,500 --runs 3 [--json F]      # make bench-fleet
python -m bench.fleet serve --dir D --first 127.0.200.1 --count 250  # one node process
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import repo, run, serve


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="python -m bench.fleet serve")
        parser.add_argument(
            "--dir", type=Path, required=True, help="agent.crt, agent.key, token.sha256; roots/"
        )
        parser.add_argument("--first", default=run.FIRST)
        parser.add_argument("--count", type=int, default=run.PER_PROCESS)
        parser.add_argument("--port", type=int, default=run.PORT)
        parser.add_argument("--workers", type=int, default=16, help="the pool shared by all its nodes")
        opts = parser.parse_args(args[1:])
        serve.serve(opts.dir, opts.first, opts.count, opts.port, opts.workers)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--nodes", default="100,250,500", help="fleet sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every sample here")
    opts = parser.parse_args(args)
    sizes = [int(n) for n in opts.nodes.split(",")]
    if max(sizes) > run.MAX_NODES:
        parser.error(
            f"at most {run.MAX_NODES} nodes ({run.FIRST} … {serve.addresses(run.FIRST, run.MAX_NODES)[-1]})"
        )
    samples: list[run.Sample] = []
    with tempfile.TemporaryDirectory(prefix="funops-fleet-") as tmp:
        workdir = Path(tmp)
        fingerprint, token = repo.credentials(workdir)
        for count in sizes:
            samples += run.bench_size(workdir, count, opts.runs, fingerprint, token)
    print(run.table(samples))
    if opts.json:
        opts.json.write_text(json.dumps(run.as_json(samples), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
