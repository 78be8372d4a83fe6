"""Time funops on N real lab nodes: first apply, no-op plan, no-op apply (wall time, per node).

    python -m bench --nodes 3          # make bench N=3
    python -m bench --nodes 20 --runs 5

The desired state (bench/repo) is an nginx site, an env file and a systemd unit on every node:
the workload of the peers' figures in the brief (pyinfra: no-op plan 2.1 s, first apply 5.2 s on 20
nodes). Nodes are reset out of band before the first apply.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lab

HERE = Path(__file__).resolve().parent
RESET = """systemctl disable --now bench.service 2>/dev/null; rm -f /etc/systemd/system/bench.service
systemctl daemon-reload; rm -rf /etc/funops /srv/bench /var/lib/funops /etc/nginx/conf.d/funops-*.conf
systemctl reload nginx 2>/dev/null || true"""


def timed(repo: Path | None, *args: str) -> tuple[float, int]:
    """One funops run, timed as a whole process; `repo` None for commands that take no repo."""
    began = time.perf_counter()
    where = ["-C", str(repo)] if repo else []
    done = subprocess.run([sys.executable, "-m", "funops", *args, *where], capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode not in (0, 2):
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"funops {' '.join(args)} failed with exit {done.returncode}")
    return elapsed, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each no-op measurement")
    args = parser.parse_args()

    the_lab = lab.up(args.nodes)
    for node in the_lab.nodes:
        the_lab.exec(node, RESET)
    with tempfile.TemporaryDirectory(prefix="funops-bench-") as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(HERE / "repo", repo)
        (repo / "inventory").mkdir()
        shutil.copy(the_lab.inventory_path, repo / "inventory" / "lab.yaml")

        first, _ = timed(repo, "apply", "--auto-approve", "-o", "json")
        plans = [timed(repo, "plan") for _ in range(args.runs)]
        assert all(code == 0 for _, code in plans), "a plan after apply must be a no-op (exit 0)"
        applies = [timed(repo, "apply", "--auto-approve")[0] for _ in range(args.runs)]
        startup = [timed(None, "version")[0] for _ in range(args.runs)]

    n = args.nodes
    rows = [
        ("first apply", first),
        ("no-op plan (median)", statistics.median(t for t, _ in plans)),
        ("no-op apply (median)", statistics.median(applies)),
        ("CLI start-up (median)", statistics.median(startup)),
    ]
    print(f"funops on {n} lab node(s) over SSH (nginx site + env file + systemd unit each)")
    for label, seconds in rows:
        print(f"  {label:<24} {seconds:6.2f} s   {1000 * seconds / n:7.1f} ms/node")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
