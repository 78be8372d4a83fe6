"""What `agent install` puts on a node with `pull:` (pull mode: funops/pull/__init__.py), besides the
agent: the poll's config, the key publishes are verified with, and a timer running
`funops-agent.pyz pull`. Text only here; install.py writes it."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import FunopsError
from ..load.project import Project
from ..model.inventory import Node
from ..node import CONFIG_FILE, PUBLIC_KEY_FILE
from ..pull import PULL_SERVICE, PULL_TIMER, keys
from . import HOME, SANDBOX

RUNTIME = f"{HOME}/runtime"  # releases/<digest>/: the packages, shared by the agent versions using them
SERVICE_FILE = f"/etc/systemd/system/{PULL_SERVICE}"
TIMER_FILE = f"/etc/systemd/system/{PULL_TIMER}"
# The files a node that drops `pull:` loses (the timer is stopped first).
FILES = (CONFIG_FILE, PUBLIC_KEY_FILE, TIMER_FILE, SERVICE_FILE)

# The agent's sandbox minus nothing: the poll converges with the same tasks the agent runs (units,
# files, nginx, docker), so what the agent may do, it may. A converge that hangs is killed, and the
# timer tries again an interval later.
SERVICE_TEXT = f"""# Written by `funops agent install` (pull mode). Do not edit by hand.
[Unit]
Description=funops pull: converge this node from its published revision
After=network-online.target
Wants=network-online.target
ConditionPathExists={CONFIG_FILE}

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {HOME}/current/funops-agent.pyz pull --config {CONFIG_FILE}
TimeoutStartSec=15min
{SANDBOX}"""


def timer_text(node: Node) -> str:
    """Monotonic: a poll `interval` after the last one ended (never two at once), the first at boot;
    started after boot, OnBootSec has passed, so it polls at once. The splay spreads a fleet."""
    assert node.pull is not None
    every = _span(node.pull.interval_seconds)
    return f"""# Written by `funops agent install` (pull mode). Do not edit by hand.
[Unit]
Description=funops pull: poll the store every {every}

[Timer]
Unit={PULL_SERVICE}
OnBootSec={every}
OnUnitInactiveSec={every}
RandomizedDelaySec={_span(node.pull.splay_seconds)}
AccuracySec=1s

[Install]
WantedBy=timers.target
"""


def config(project: Project, node: Node) -> bytes:
    """/etc/funops-agent/pull.json, as funops.node.poll.PullConfig reads it."""
    assert node.pull is not None
    doc: dict[str, object] = {
        "node": node.name,
        "store": node.pull.store,
        "publicKey": PUBLIC_KEY_FILE,
        "stateDir": project.settings.state_dir,
    }
    if node.pull.ca_file:
        doc["caFile"] = node.pull.ca_file
    doc |= {
        "intervalSeconds": node.pull.interval_seconds,
        "splaySeconds": node.pull.splay_seconds,
        "cohort": node.pull.cohort,
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


def public_key(project: Project, node: Node) -> bytes:
    """The repo's signing public key (settings pull.publicKey), checked to be a public key only."""
    path = keys.public_key_file(project)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FunopsError(
            f"node {node.name}: pull mode needs the publish signing key's public half at {path}: run "
            "`funops agent pull-key init` first (and commit it)"
        ) from None
    if b"PRIVATE KEY" in data or b"-----BEGIN PUBLIC KEY-----" not in data:
        raise FunopsError(f"{_shown(project, path)}: a PEM public key expected (and never a private key)")
    return data


def files(project: Project, node: Node) -> dict[str, tuple[bytes, str]]:
    """Node path → (content, mode) of the pull mode's files."""
    return {
        CONFIG_FILE: (config(project, node), "0644"),
        PUBLIC_KEY_FILE: (public_key(project, node), "0644"),
        SERVICE_FILE: (SERVICE_TEXT.encode(), "0644"),
        TIMER_FILE: (timer_text(node).encode(), "0644"),
    }


def _span(seconds: float) -> str:
    """A systemd time span: whole seconds as such, else milliseconds."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def _shown(project: Project, path: Path) -> str:
    try:
        return str(path.relative_to(project.root))
    except ValueError:
        return str(path)
