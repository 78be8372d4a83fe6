"""Time the real controller against a simulated fleet: per fleet size, start the node processes,
write the repo, then per run reset the nodes' roots and time a first apply, a no-op plan and a
no-op apply (wall time of the whole `funops` process), each with the controller's CPU time and peak
RSS and the CPU the simulated nodes spent meanwhile (on a real fleet that is spread over the nodes;
here it shares this machine's CPUs with the controller)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import repo as fleet_repo
from . import serve

PER_PROCESS = 250  # simulated nodes per serving process (8 processes for 2,000 on 2 CPUs)
FIRST = "127.0.200.1"
MAX_NODES = 2000  # 127.0.200.1 … 127.0.207.222 (.0 and .255 skipped)
PORT = 7391
STEPS = ("first apply", "no-op plan", "no-op apply")
NOTHING = "Nothing to do: every node is as declared."


@dataclass
class Sample:
    nodes: int
    run: int
    step: str
    seconds: float
    cpu_seconds: float  # the controller's user + system time
    node_cpu_seconds: float  # the simulated nodes' (their processes and the scripts they ran)
    max_rss_mb: float
    returncode: int


class NodeProcesses:
    """ceil(N / PER_PROCESS) processes serving N simulated nodes; stopped on exit."""

    def __init__(
        self, directory: Path, count: int, port: int = PORT, workers: int = 16, first: str = FIRST
    ) -> None:
        self.addresses = serve.addresses(first, count)
        self.procs: list[subprocess.Popen[str]] = []
        # Each process's stderr (the agents' request log: a line a request) to a file, not the bench's.
        self.logs: list[Path] = []
        for start in range(0, count, PER_PROCESS):
            chunk = self.addresses[start : start + PER_PROCESS]
            where = ["--dir", str(directory), "--first", chunk[0], "--count", str(len(chunk))]
            argv = [sys.executable, "-m", "bench.fleet", "serve", *where, "--port", str(port),
                    "--workers", str(workers)]  # fmt: skip
            self.logs.append(directory / f"serve-{chunk[0]}.log")
            with self.logs[-1].open("w") as log:
                self.procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True))
        for proc, log_path in zip(self.procs, self.logs, strict=True):
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                self.stop()
                tail = log_path.read_text()[-2000:]
                raise SystemExit(f"a fleet process did not start (exit {proc.poll()}; {log_path}):\n{tail}")

    def cpu(self) -> float:
        """CPU seconds the node processes used so far, with the scripts they ran (waited children)."""
        total = 0
        for proc in self.procs:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)

    def __enter__(self) -> NodeProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reset(directory: Path) -> None:
    """Every simulated node as never applied: all under its root goes but its shims and systemd mark."""
    for root in (directory / "roots").iterdir():
        for child in root.iterdir():
            if child.name not in (".sim", "run"):
                shutil.rmtree(child)
        shutil.rmtree(root / "run" / "fleet-sim", ignore_errors=True)


def timed(argv: list[str]) -> tuple[float, float, float, int, str]:
    """(seconds, CPU seconds, peak RSS in MB, exit code, output) of one command's process alone."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, output


def funops(repo: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "funops", *args, "-C", str(repo)]


def check(step: str, code: int, output: str) -> None:
    """A step that did not do what it must stops the bench, saying what it printed."""
    if step == "first apply":
        ok = code == 0 and NOTHING not in output
    elif step == "no-op plan":
        ok = code == 0
    else:
        ok = code == 0 and NOTHING in output
    if not ok:
        raise SystemExit(f"{step} failed (exit {code}):\n{output[-3000:]}")


def bench_size(workdir: Path, count: int, runs: int, fingerprint: str, token: str) -> list[Sample]:
    samples = []
    with NodeProcesses(workdir, count) as fleet:
        repo = workdir / f"repo-{count}"
        fleet_repo.write_repo(repo, fleet.addresses, PORT, fingerprint, token)
        commands = {
            "first apply": funops(repo, "apply", "--auto-approve"),
            "no-op plan": funops(repo, "plan"),
            "no-op apply": funops(repo, "apply", "--auto-approve"),
        }
        for run in range(1, runs + 1):
            reset(workdir)
            for step in STEPS:
                before = fleet.cpu()
                seconds, cpu, rss, code, output = timed(commands[step])
                node_cpu = fleet.cpu() - before
                check(step, code, output)
                samples.append(Sample(count, run, step, round(seconds, 3), round(cpu, 2), round(node_cpu, 2),
                                      round(rss, 1), code))  # fmt: skip
                print(f"  N={count} run {run} {step}: {seconds:.2f} s, controller CPU {cpu:.2f} s, "
                      f"nodes' CPU {node_cpu:.2f} s, {rss:.0f} MB", file=sys.stderr)  # fmt: skip
        shutil.rmtree(workdir / "roots")
    return samples


def table(samples: list[Sample]) -> str:
    """Per fleet size and step: medians of wall time, the controller's CPU and the nodes' CPU, and
    the controller's highest peak RSS."""
    lines = ["| N | step | wall (s) | controller CPU (s) | nodes' CPU (s) | controller peak RSS (MB) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for n in sorted({s.nodes for s in samples}):
        for step in STEPS:
            of = [s for s in samples if s.nodes == n and s.step == step]
            wall, cpu = statistics.median(s.seconds for s in of), statistics.median(s.cpu_seconds for s in of)
            nodes, rss = statistics.median(s.node_cpu_seconds for s in of), max(s.max_rss_mb for s in of)
            lines.append(f"| {n} | {step} | {wall:.2f} | {cpu:.2f} | {nodes:.2f} | {rss:.0f} |")
    return "\n".join(lines)


def as_json(samples: list[Sample]) -> list[dict[str, object]]:
    return [asdict(s) for s in samples]
