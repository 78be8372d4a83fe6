"""`funops agent install NODE...` (controller side, over the node's verified SSH): the agent's code in
a versioned directory with a `current` link, its config, its token's hash, its systemd unit; the node
makes its own TLS key, and the certificate's fingerprint read back over SSH is pinned in
agent_known_hosts. With an operator CA in the repo (`agent ca init`), its certificate (never its key)
goes to the node too and the agent takes client certificates from it (mTLS). Idempotent: a node
already as wanted is not touched and its agent not restarted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import FunopsError
from ..gather.probe import parse
from ..kinds import kind_of
from ..load.project import Project
from ..model.inventory import Node
from ..tasks import model as m
from ..transports import Transport, TransportError
from ..transports.agent import AgentTransport, endpoint, pins_path, token_path
from . import AGENT_VERSION
from .ca import certificate_to_ship

HOME = "/opt/funops-agent"
CONFIG_DIR = "/etc/funops-agent"
UNIT = "funops-agent.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
PACKAGE = Path(__file__).resolve().parents[1]  # funops/

# Root, because it manages units, containers and files anywhere funops may write; the sandbox takes
# what it never needs (kernel tunables, modules, the clock, realtime, new privileges).
UNIT_TEXT = f"""# Written by `funops agent install` (not an app: drift leaves it be). Do not edit by hand.
[Unit]
Description=funops agent
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStart=/usr/bin/python3 {HOME}/current/funops-agent.pyz serve --config {CONFIG_DIR}/agent.json
Restart=always
RestartSec=1
NoNewPrivileges=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectClock=yes
ProtectHostname=yes
RestrictRealtime=yes
LockPersonality=yes
TasksMax=512

[Install]
WantedBy=multi-user.target
"""


@dataclass
class Installed:
    node: str
    changed: bool
    fingerprint: str
    version: str


def bundle() -> bytes:
    """The funops package as one zip the node's python3 runs (byte-stable: same code, same sha)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        files = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
        for p in files:
            info = zipfile.ZipInfo(f"funops/{p.relative_to(PACKAGE).as_posix()}", (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, p.read_bytes(), zipfile.ZIP_DEFLATED)
        main = zipfile.ZipInfo("__main__.py", (1980, 1, 1, 0, 0, 0))
        z.writestr(main, "from funops.agent.__main__ import main\nraise SystemExit(main())\n")
    return out.getvalue()


def build() -> tuple[bytes, str]:
    """This funops's agent: its zip and its version, `<funops version>-<the zip's digest>`."""
    code = bundle()
    return code, f"{AGENT_VERSION}-{hashlib.sha256(code).hexdigest()[:12]}"


def install(project: Project, names: list[str], rotate: bool = False) -> list[Installed]:
    """Install (or bring up to date) the agent on each node, one after the other over SSH."""
    code, version = build()
    return [_install(project, project.nodes[name], code, version, rotate) for name in names]


def _install(project: Project, node: Node, code: bytes, version: str, rotate: bool) -> Installed:
    from ..transports.ssh import SshTransport

    if node.agent is None:
        raise FunopsError(f"node {node.name}: give it an agent: {{url: https://ADDRESS:PORT}} section first")
    host, port = endpoint(node)
    state_dir = project.settings.state_dir
    token_file = token_path(project.root, node)
    token = None if rotate or not token_file.exists() else token_file.read_text(encoding="utf-8").strip()
    token = token or secrets.token_urlsafe(32)
    config = {
        "build": version,
        "bind": host,
        "port": port,
        "stateDir": state_dir,
        "tokenSha256File": f"{CONFIG_DIR}/token.sha256",
        "cert": f"{CONFIG_DIR}/tls/agent.crt",
        "key": f"{CONFIG_DIR}/tls/agent.key",
    }
    client_ca = certificate_to_ship(project.root)
    ca_file = f"{CONFIG_DIR}/tls/client-ca.pem"
    if client_ca is not None:
        config["clientCa"] = ca_file
    files = {
        f"{HOME}/{version}/funops-agent.pyz": (code, "0644"),
        f"{CONFIG_DIR}/agent.json": (json.dumps(config, indent=2).encode() + b"\n", "0644"),
        f"{CONFIG_DIR}/token.sha256": (hashlib.sha256(token.encode()).hexdigest().encode() + b"\n", "0600"),
        UNIT_FILE: (UNIT_TEXT.encode(), "0644"),
    }
    if client_ca is not None:  # read at the agent's start: a new CA restarts it, like any write
        files[ca_file] = (client_ca, "0644")
    ssh = SshTransport(node.model_copy(update={"transport": "ssh"}), project.settings.ssh, project.root)
    try:
        live = _live(ssh, list(files), f"{HOME}/current", state_dir)
        writes = [
            m.WriteFile(path, sha, mode, "root", "root", None, content=data)
            for path, (data, mode) in files.items()
            if live.get(path) != (sha := hashlib.sha256(data).hexdigest(), mode)
        ]
        relink = live.get(f"{HOME}/current") != version
        tasks: list[m.Task] = [
            *writes,
            m.MakeCertificate(config["cert"], config["key"], f"funops-agent {node.name}"),
            m.PointLink(f"{HOME}/current", f"{HOME}/{version}"),
            m.DaemonReload(),
            m.StartUnit(UNIT, restart=bool(writes) or relink),
        ]
        results, result = ssh.run_tasks(tasks)
        failed = next((r for r in results if r.exit_code != 0), None)
        if failed is not None or len(results) != len(tasks):
            why = failed.output if failed else result.stderr.decode(errors="replace")
            raise FunopsError(
                f"node {node.name}: agent install failed at {tasks[len(results) - 1].name}: {why}"
            )
        fingerprint = results[len(writes)].output.strip().removeprefix("sha256:")
    except TransportError as exc:
        raise FunopsError(f"node {node.name}: agent install needs SSH: {exc}") from exc
    finally:
        ssh.close()
    _pin(pins_path(project.root, node), f"{host}:{port}", fingerprint)
    _keep_token(token_file, token)
    _await(AgentTransport(node, project.settings, project.root), version)
    return Installed(node.name, bool(writes) or relink, fingerprint, version)


def _live(ssh: Transport, files: list[str], link: str, state_dir: str) -> dict[str, object]:
    """(sha256, mode) of each file there, and the version the `current` link points at."""
    ids = (*(f"file:{p}" for p in files), f"artifact:{link}")
    facts = parse(ssh.call(m.Probe(ids, f"{state_dir}/state.json")).text(), lambda p: p)
    found: dict[str, object] = {}
    for path in files:
        live = kind_of(f"file:{path}").live(path, facts) or {}
        found[path] = (live.get("sha256"), live.get("mode"))
    found[link] = (kind_of(f"artifact:{link}").live(link, facts) or {}).get("release")
    return found


_PINS = threading.Lock()  # `upgrade` installs a batch's nodes in parallel: one writer of the pins at a time


def _pin(path: Path, where: str, fingerprint: str) -> None:
    """Record the fingerprint for `where` (host:port), replacing an older one (like ssh-keygen -R);
    written aside and renamed, so a reader never sees half a file."""
    with _PINS:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        kept = [line for line in lines if line.split()[:1] != [where]]
        aside = path.with_name(f".{path.name}.new")
        aside.write_text("\n".join([*kept, f"{where} sha256:{fingerprint}"]) + "\n", encoding="utf-8")
        os.replace(aside, path)


def _keep_token(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")


def _await(agent: AgentTransport, build: str, seconds: float = 15) -> None:
    """The health gate: the (re)started agent answers, with the pinned certificate and the token, as
    this build."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            running = agent.hello().get("build")
            if running == build:
                return
            why = f"node {agent.node.name}: the agent still runs {running}, not {build}"
        except TransportError as exc:
            why = str(exc)
        finally:
            agent.close()
        if time.monotonic() > deadline:
            raise FunopsError(f"{why} (after {seconds:g} s)")
        time.sleep(0.2)


def upgrade(project: Project, names: list[str], batch_size: int) -> Iterator[list[Installed]]:
    """Install this build in batches, each node's agent answering as this build before the next batch;
    the first failure halts (FunopsError), the nodes after it untouched."""
    code, version = build()
    for start in range(0, len(names), batch_size):
        batch = names[start : start + batch_size]
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            yield list(pool.map(lambda n: _install(project, project.nodes[n], code, version, False), batch))
