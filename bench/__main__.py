"""Time funops and its peers (pyinfra, Ansible) side by side on N real lab nodes.

    python -m bench --nodes 3                     # make bench N=3
    python -m bench --nodes 10 --runs 3 --tools funops,pyinfra,ansible --json timings.json

The desired state (bench/repo, and the same in bench/peers for the peers) is an nginx site, an env
file and a systemd unit on every node. Each repetition runs every tool in turn (A B C A B C …) so
machine noise hits them alike; per tool: reset the nodes out of band, then time a fresh plan, the
first apply, a no-op plan and a no-op apply (wall time of the whole process), and the CLI's start-up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lab
from bench.tools import TOOLS, Funops, Tool

# What any tool made (funops and the peers write the same paths), removed out of band before each
# first apply: the app's unit, files and state dir, funops's own state, Ansible's remote tmp.
RESET = """systemctl disable --now bench.service 2>/dev/null; rm -f /etc/systemd/system/bench.service
systemctl daemon-reload; rm -rf /etc/funops /srv/bench /var/lib/funops /etc/nginx/conf.d/funops-*.conf
rm -rf /var/lib/funops-apps /var/lib/private/funops-apps /root/.ansible
systemctl reload nginx 2>/dev/null || true"""

MEASURES = ("fresh plan", "first apply", "no-op plan", "no-op apply", "CLI start-up", "validate")


def reset(the_lab: lab.Lab) -> None:
    with ThreadPoolExecutor() as pool:
        for done in pool.map(lambda node: the_lab.exec(node.name, RESET), the_lab.nodes):
            if done.returncode != 0:
                raise SystemExit(f"reset failed: {done.stdout}{done.stderr}")


def render(argv: list[str]) -> str:
    done = subprocess.run([sys.executable, "-m", "funops", "render", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"funops render failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def expected_files(repo: Path, the_lab: lab.Lab, out: Path) -> dict[str, dict[str, str]]:
    """Per node, `path -> "mode sha256"` of every file `funops render` says the node should have
    (the listing gives the modes; the files written with --out, the contents)."""
    expected: dict[str, dict[str, str]] = {}
    for node in the_lab.nodes:
        listing = render(["-C", str(repo), "--node", node.name])
        render(["-C", str(repo), "--node", node.name, "--out", str(out / node.name)])
        expected[node.name] = {
            path: f"{int(mode, 8):o} {hashlib.sha256((out / node.name / path[1:]).read_bytes()).hexdigest()}"
            for path, mode in re.findall(r"^file:(\S+) mode (\d+)", listing, re.M)
        }
        if len(expected[node.name]) != 4:
            raise SystemExit(f"funops render: not the 4 files of bench/repo on {node.name}:\n{listing}")
    return expected


def check_converged(tool: Tool, expected: dict[str, dict[str, str]]) -> None:
    """After a first apply: every file as funops renders it (content and mode), the unit up."""
    for node, files in expected.items():
        paths = " ".join(files)
        script = f"for f in {paths}; do echo $f $(stat -c %a $f) $(sha256sum < $f | cut -d' ' -f1); done"
        done = tool.lab.exec(node, f"{script}; systemctl is-enabled bench; systemctl is-active bench")
        want = [f"{path} {digest}" for path, digest in files.items()] + ["enabled", "active"]
        if done.stdout.split("\n")[: len(want)] != want:
            raise SystemExit(
                f"{tool.name} did not converge {node} to the desired state:\n"
                f"want {want}\ngot  {done.stdout.splitlines()}\n{done.stderr}"
            )


def measure(tool: Tool, expected: dict[str, dict[str, str]]) -> dict[str, float]:
    """One repetition for one tool, from freshly reset nodes; fails unless each step did what it should."""
    reset(tool.lab)
    seconds: dict[str, float] = {}
    for label, argv, should_change in [
        ("fresh plan", tool.plan(), True),
        ("first apply", tool.apply(), True),
        ("no-op plan", tool.plan(), False),
        ("no-op apply", tool.apply(), False),
    ]:
        run = tool.run(argv)
        if tool.changed(run) != should_change:
            what = "reported no changes" if should_change else "is not a no-op: it reports changes"
            raise SystemExit(f"{tool.name}: the {label} {what}:\n{run.output}")
        if label == "first apply":
            check_converged(tool, expected)
        seconds[label] = run.seconds
    seconds["CLI start-up"] = tool.run(tool.version()).seconds
    if (validate := tool.validate()) is not None:  # a peer without one: "-" in the table
        seconds["validate"] = tool.run(validate).seconds
    return seconds


def table(timings: dict[str, dict[str, list[float]]], nodes: int, runs: int) -> str:
    """Medians per tool, then each funops flavour (ssh, agent) over each peer."""
    medians = {t: {m: statistics.median(v) for m, v in by.items() if v} for t, by in timings.items()}
    ours = [t for t in timings if t.startswith(Funops.name)]
    pairs = [(o, p) for o in ours for p in timings if p not in ours]
    head = ["measure", *(f"{t} (s)" for t in timings), *(f"{o}/{p}" for o, p in pairs)]
    rows = [head]
    for m in MEASURES:
        if not any(m in medians[t] for t in timings):
            continue
        ratios = [f"{medians[o][m] / medians[p][m]:.2f}" if m in medians[p] else "-" for o, p in pairs]
        rows.append([m, *(f"{medians[t][m]:.2f}" if m in medians[t] else "-" for t in timings), *ratios])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"Median wall time of {runs} run(s) on {nodes} lab node(s)"]
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="repetitions (each tool once per repetition)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, of: {', '.join(TOOLS)}")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw timings here")
    args = parser.parse_args()
    names = [name.strip() for name in args.tools.split(",") if name.strip()]
    if unknown := [name for name in names if name not in TOOLS]:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOLS)}")

    the_lab = lab.up(args.nodes)
    with tempfile.TemporaryDirectory(prefix="funops-bench-") as tmp:
        workdir = Path(tmp)
        tools = [TOOLS[name](the_lab, workdir) for name in names]
        for tool in tools:
            tool.prepare()
        renderer = Funops(the_lab, workdir / "render")
        renderer.prepare()
        expected = expected_files(renderer.repo, the_lab, workdir / "rendered")

        timings: dict[str, dict[str, list[float]]] = {t.name: {m: [] for m in MEASURES} for t in tools}
        for rep in range(1, args.runs + 1):
            for tool in tools:
                print(f"run {rep}/{args.runs}: {tool.name}", file=sys.stderr, flush=True)
                for label, seconds in measure(tool, expected).items():
                    timings[tool.name][label].append(seconds)

    print(table(timings, args.nodes, args.runs))
    if args.json:
        raw = {"nodes": args.nodes, "runs": args.runs, "timings": timings}
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
