"""A batch's results on the agent's wire, before and after issue 29: the sh bundle's marker text in
base64 (protocol 1, what an older controller still gets) against the typed results document
(protocol 2). Bytes per reply and the controller's CPU to decode one, for a first apply's batch and
for a failed step with a long output. No nodes, no network: `python -m bench.wire [--repeat N]`."""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from collections.abc import Callable

from funops.node.shell import bundle_text, parse_bundle
from funops.node.wire import decode_steps, encode_steps
from funops.tasks.results import CommandResult, StepResult

NGINX_T = (
    "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
    "nginx: configuration file /etc/nginx/nginx.conf test is successful"
)


def first_apply() -> list[StepResult]:
    """Three apps' first apply on a node: users, directories, files, daemon-reload, units, a health
    gate and nginx (outputs mostly empty, as they are)."""
    steps = [StepResult(i, 0, round(0.002 + i / 1000, 3), "") for i in range(34)]
    steps[20] = StepResult(
        20, 0, 0.412, "Created symlink /etc/systemd/system/multi-user.target.wants/web.service."
    )
    steps[30] = StepResult(30, 0, 0.087, NGINX_T)
    return steps


def failed_step() -> list[StepResult]:
    """A run's first step failing with 64 KiB of a command's output (a container pull's log)."""
    log = "\n".join(
        f"{i:05d}: Pulling fs layer sha256:{'ab' * 32} ... Downloading [====>   ]" for i in range(640)
    )
    return [StepResult(0, 1, 12.5, log[: 64 << 10].strip())]


def text_reply(steps: list[StepResult]) -> bytes:
    out = CommandResult(0, bundle_text(steps).encode(), b"")
    doc = {"exit": 0, "stdout": base64.b64encode(out.stdout).decode(), "stderr": "", "replayed": False}
    return json.dumps(doc, separators=(",", ":")).encode()  # as the agent replies


def typed_reply(steps: list[StepResult]) -> bytes:
    return json.dumps({**encode_steps(steps), "replayed": False}, separators=(",", ":")).encode()


def decode_text(data: bytes, sent: int) -> list[StepResult]:
    doc = json.loads(data)
    result = CommandResult(int(doc["exit"]), base64.b64decode(doc["stdout"]), base64.b64decode(doc["stderr"]))
    return parse_bundle(result.text())


def decode_typed(data: bytes, sent: int) -> list[StepResult]:
    return decode_steps(json.loads(data), sent)


def cpu_us(decode: Callable[[bytes, int], list[StepResult]], data: bytes, sent: int, repeat: int) -> float:
    """Median over 7 rounds of the CPU microseconds one decode takes."""
    rounds = []
    for _ in range(7):
        started = time.process_time()
        for _ in range(repeat):
            decode(data, sent)
        rounds.append((time.process_time() - started) / repeat * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wire", description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000, help="decodes per round (7 rounds, the median)")
    args = parser.parse_args()
    print("| batch | reply bytes: text → typed | decode CPU µs: text → typed |")
    print("| --- | --- | --- |")
    for name, steps in (
        ("first apply, 34 steps", first_apply()),
        ("a failed step, 64 KiB output", failed_step()),
    ):
        text, typed = text_reply(steps), typed_reply(steps)
        assert decode_text(text, len(steps)) == decode_typed(typed, len(steps)) == steps
        repeat = max(args.repeat // (1 + len(text) // 4096), 20)
        before, after = (
            cpu_us(decode_text, text, len(steps), repeat),
            cpu_us(decode_typed, typed, len(steps), repeat),
        )
        print(f"| {name} | {len(text)} → {len(typed)} ({len(typed) / len(text) - 1:+.0%}) "
              f"| {before:.1f} → {after:.1f} ({after / before - 1:+.0%}) |")  # fmt: skip


if __name__ == "__main__":
    main()
