"""Helpers for lab tests that drive the real `funops` CLI against the lab's nodes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from lab import Lab
from tests.conftest import copy_example

FUNOPS = [sys.executable, "-m", "funops"]
AGENT_PORT = 7391


def make_repo(lab: Lab, dest: Path, transport: str = "ssh") -> Path:
    """The bundled example, with the lab's inventory instead of the local demo nodes; with transport
    "agent", each node's agent installed (over ssh) with this repo's tokens and pins, and used."""
    repo = copy_example(dest)
    shutil.rmtree(repo / "inventory")
    (repo / "inventory").mkdir()
    shutil.copy(lab.inventory_path, repo / "inventory" / "lab.yaml")
    if transport == "agent":
        use_agents(lab, repo)
    return repo


def set_transport(repo: Path, transport: str) -> None:
    """The lab inventory's transport, every node with its agent's address."""
    path = repo / "inventory" / "lab.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["defaults"]["transport"] = transport
    for node in doc["nodes"]:
        node["agent"] = {"url": f"https://{node['address']}:{AGENT_PORT}"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def use_agents(lab: Lab, repo: Path) -> None:
    set_transport(repo, "ssh")  # the install goes over ssh
    done = funops(repo, "agent", "install", *(n.name for n in lab.nodes))
    assert done.returncode == 0, done.stdout + done.stderr
    set_transport(repo, "agent")


def funops(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FUNOPS, *args, "-C", str(repo)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def start(repo: Path, *args: str) -> subprocess.Popen[str]:
    """funops in the background, as from a terminal: Ctrl-C (SIGINT) at its default. A test run
    started in the background by a non-interactive shell inherits SIGINT ignored (POSIX), and
    Python then raises no KeyboardInterrupt: the tests that press Ctrl-C would wait in vain."""
    return subprocess.Popen(
        [*FUNOPS, *args, "-C", str(repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_event(proc: subprocess.Popen[str], pred: Any, timeout: float = 120) -> list[dict[str, Any]]:
    """Read JSON events from a running `apply -o json` until one satisfies `pred`."""
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if pred(event):
            return seen
    raise AssertionError(f"no such event; saw {seen}")


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def apply(repo: Path, *args: str, timeout: float = 300) -> tuple[int, list[dict[str, Any]], str]:
    done = funops(repo, "apply", "--auto-approve", "-o", "json", *args, timeout=timeout)
    return done.returncode, events(done.stdout), done.stderr


def http(url: str, host: str | None = None, timeout: float = 5) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def edit_yaml(path: Path, edit: Any) -> None:
    """Apply `edit(docs)` to every document of a multi-document YAML file."""
    docs = list(yaml.safe_load_all(path.read_text()))
    edit(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


RESET = """\
systemctl disable --now web.service 2>/dev/null; rm -f /etc/systemd/system/web.service
systemctl disable --now docs.service 2>/dev/null; rm -f /etc/systemd/system/docs.service
systemctl disable --now report.timer 2>/dev/null; rm -f /etc/systemd/system/report.*
systemctl disable --now funops-agent 2>/dev/null; rm -f /etc/systemd/system/funops-agent.service
systemctl disable --now funops-pull.timer 2>/dev/null; rm -f /etc/systemd/system/funops-pull.*
systemctl reset-failed funops-pull.service 2>/dev/null
rm -rf /etc/funops-agent /opt/funops-agent
systemctl daemon-reload
docker rm -f api >/dev/null 2>&1
rm -rf /etc/funops /srv/web /opt/funops /var/lib/funops /etc/nginx/conf.d/funops-*.conf
systemctl reload nginx 2>/dev/null || true
"""


def reset(lab: Lab) -> None:
    """Remove everything the example puts on the nodes (out of band), so tests start clean."""
    for node in lab.nodes:
        lab.exec(node, RESET)
