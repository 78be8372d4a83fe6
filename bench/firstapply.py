"""Where a first apply over the agent goes: its phases by the rollout's event times, each node's CPU
by systemd unit (the node's cgroups, read on the host), the controller's CPU.

    FUNOPS_LAB_SLOT=5 python -m bench.firstapply --nodes 20 --runs 4
    FUNOPS_LAB_SLOT=5 python -m bench.firstapply --nodes 20 --runs 4 \\
        --vs /work/main/.venv/bin/python --vs-path /tmp/main-tree --vs-agent

Each run: the nodes reset as `python -m bench` resets them, a fresh plan (untimed: it warms the
compiled-state cache, as the bench's fresh plan does), then `funops apply --auto-approve -o json`
timed. With `--vs PYTHON` the runs alternate between this funops and the one PYTHON imports (a
worktree's venv, or with `--vs-path DIR` the funops in DIR, a tree of another commit), pairs in
turn; `--vs-agent` installs each side's agent before its run (for a change on the node side; else
both use this one's). Needs the host's cgroup v2 hierarchy (`/sys/fs/cgroup/unified` or
`/sys/fs/cgroup`) with the nodes' systemd units in it.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lab
from bench.__main__ import reset
from bench.tools import FunopsAgent

UNITS = {
    "agent": "system.slice/funops-agent.service",
    "pid1": "init.scope",
    "nginx": "system.slice/nginx.service",
    "app": "system.slice/bench.service",
}


def cgroup_root() -> Path:
    for root in (Path("/sys/fs/cgroup/unified/docker"), Path("/sys/fs/cgroup/docker")):
        if root.is_dir():
            return root
    raise SystemExit("no cgroup v2 docker hierarchy on this host")


def usage(path: Path) -> float:
    """ms of CPU the cgroup used (0 when it does not exist: a unit not running)."""
    try:
        for line in (path / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1000
    except OSError:
        pass
    return 0.0


def node_cpu(roots: list[Path]) -> dict[str, float]:
    """Summed over the nodes: ms of CPU per unit, and the nodes' total."""
    out = {name: sum(usage(r / rel) for r in roots) for name, rel in UNITS.items()}
    out["node"] = sum(usage(r) for r in roots)
    return out


def container_ids(the_lab: lab.Lab) -> list[str]:
    done = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", *(n.container for n in the_lab.nodes)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def install_agents(python: str, repo: Path, nodes: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [python, "-m", "funops", "agent", "install", *nodes, "-C", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
    )
    if done.returncode != 0:
        raise SystemExit(f"agent install failed:\n{done.stdout}{done.stderr}")


def one_run(python: str, repo: Path, env: dict[str, str], the_lab: lab.Lab, roots: list[Path]) -> dict:
    reset(the_lab)
    # Run from the repo: `-m funops` then imports the side's own funops, not one in this directory.
    subprocess.run([python, "-m", "funops", "plan", "-C", str(repo)], capture_output=True, env=env, cwd=repo)
    before, children = node_cpu(roots), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    proc = subprocess.Popen(
        [python, "-m", "funops", "apply", "--auto-approve", "-o", "json", "-C", str(repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=repo,
    )
    out, err = proc.communicate()
    ended = time.time()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # the apply alone was reaped since
    after = node_cpu(roots)
    if proc.returncode != 0:
        raise SystemExit(f"apply failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    events = [json.loads(line) for line in out.splitlines() if line.startswith('{"')]
    when = {}
    for e in events:
        t = dt.datetime.fromisoformat(e["time"]).timestamp() - started
        when.setdefault(e["event"], []).append(t)
    n = len(roots)
    return {
        "wall": ended - started,
        "before first node-start": min(when["node-start"]),
        "start to batch-start (locks)": min(when["batch-start"]) - min(when["start"]),
        "node phase": max(when["node-done"]) - min(when["node-start"]),
        "after last node-done": ended - started - max(when["node-done"]),
        **{f"{k} ms/node": (after[k] - before[k]) / n for k in after},
        "controller cpu s": reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.firstapply", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=4, help="runs (pairs with --vs)")
    parser.add_argument("--vs", metavar="PYTHON", help="another funops's python, alternated with this one")
    parser.add_argument("--vs-path", metavar="DIR", help="PYTHONPATH for --vs: the funops in DIR")
    parser.add_argument("--vs-agent", action="store_true", help="install each side's agent before its run")
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args()

    the_lab = lab.up(args.nodes)
    roots = [cgroup_root() / cid for cid in container_ids(the_lab)]
    sides = {"this": sys.executable, **({"vs": args.vs} if args.vs else {})}
    env = dict(os.environ)
    if args.vs_path:  # its bytecode written, as for this funops (PYTHONDONTWRITEBYTECODE may be set)
        compileall.compile_dir(Path(args.vs_path) / "funops", quiet=1)
    envs = {"this": env, "vs": {**env, "PYTHONPATH": args.vs_path} if args.vs_path else env}
    samples: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="funops-firstapply-") as tmp:
        tool = FunopsAgent(the_lab, Path(tmp))
        tool.prepare()  # this funops's agents, installed
        names = [n.name for n in the_lab.nodes]
        for run in range(args.runs):
            for side, python in sides.items():
                if args.vs_agent and args.vs:
                    install_agents(python, tool.repo, names, envs[side])
                sample = one_run(python, tool.repo, envs[side], the_lab, roots)
                samples[side].append(sample)
                shown = ", ".join(f"{k} {v:.3f}" for k, v in sample.items())
                print(f"run {run + 1} {side}: {shown}", file=sys.stderr, flush=True)
    for side, runs in samples.items():
        print(f"{side} ({sides[side]}), medians of {len(runs)}:")
        for key in runs[0]:
            values = [r[key] for r in runs]
            print(f"  {key:28} {statistics.median(values):9.3f}  ({min(values):.3f}..{max(values):.3f})")
    if args.json:
        args.json.write_text(json.dumps(samples, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
