"""`funops agent install NODE...` (controller side, over the node's verified SSH): the agent's code in
a versioned directory with a `current` link, its config, its token's hash, its systemd unit; the node
makes its own TLS key, and the certificate's fingerprint read back over SSH is pinned in
agent_known_hosts. With an operator CA in the repo (`agent ca init`), its certificate (never its key)
goes to the node too and the agent takes client certificates from it (mTLS). A node with `pull:`
also gets pull mode's runtime, config, key and timer (runtime.py, pullsetup.py). Idempotent: a node
already as wanted is not touched and its agent not restarted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import FunopsError
from ..gather import contents
from ..gather.probe import parse
from ..kinds import kind_of
from ..kinds.file import backup_path
from ..load.project import Project
from ..model.inventory import Node
from ..node import AGENT_VERSION
from ..private_file import write_private
from ..pull import PULL_TIMER
from ..pull.publish import certificate_file
from ..tasks import model as m
from ..transports import Transport, TransportError
from ..transports.agent import AgentTransport, endpoint, pins_path, read_pin, token_path
from . import HOME, SANDBOX, pullsetup, runtime
from .ca import certificate_to_ship

CONFIG_DIR = "/etc/funops-agent"
CACHE_DIR = "/var/cache/funops-agent"  # the unit's CacheDirectory=
# -I -S: no PYTHON* variables, user or site packages (the agent needs the standard library only);
# -OO and the bytecode in its cache directory: a smaller footprint (zipmain.py)
PYTHON = f"/usr/bin/python3 -I -S -OO -X pycache_prefix={CACHE_DIR}/bytecode"
UNIT = "funops-agent.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
PACKAGE = Path(__file__).resolve().parents[1]  # funops/

# Root, because it manages units, containers and files anywhere funops may write; the sandbox takes
# what it never needs (SANDBOX: kernel tunables, modules, the clock, realtime, new privileges).
UNIT_TEXT = f"""# Written by `funops agent install` (not an app: drift leaves it be). Do not edit by hand.
[Unit]
Description=funops agent
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStart={PYTHON} {HOME}/current/funops-agent.pyz serve --config {CONFIG_DIR}/agent.json
CacheDirectory=funops-agent
CacheDirectoryMode=0700
Restart=always
RestartSec=1
{SANDBOX}
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
        z.writestr(main, (PACKAGE / "agent" / "zipmain.py").read_bytes(), zipfile.ZIP_DEFLATED)
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
    # Pull mode runs the engine on the node: its packages come along, and name the version (a new
    # runtime is a new version dir, switched to like new code).
    rt = runtime.build() if node.pull is not None else None
    if rt is not None:
        version = f"{version}-{rt.release[:8]}"
    host, port = endpoint(node)
    state_dir = project.settings.state_dir
    token_file = token_path(project.root, node)
    token = None if rotate or not token_file.exists() else token_file.read_text(encoding="utf-8").strip()
    token = token or secrets.token_urlsafe(32)
    config = {
        "build": version,
        "node": node.name,  # its metrics' `node` label
        "bind": host,
        "port": port,
        "stateDir": state_dir,
        "tokenSha256File": f"{CONFIG_DIR}/token.sha256",
        "cert": f"{CONFIG_DIR}/tls/agent.crt",
        "key": f"{CONFIG_DIR}/tls/agent.key",
        "readRoots": read_roots(project),
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
    pull_files = pullsetup.files(project, node) if node.pull is not None else {}
    site = f"{HOME}/{version}/site"
    ssh = SshTransport(node.model_copy(update={"transport": "ssh"}), project.settings.ssh, project.root)
    try:
        links = [f"{HOME}/current", f"{pullsetup.RUNTIME}/current", site]
        paths = list({**files, **dict.fromkeys(pullsetup.FILES)})
        live, python = _live(ssh, paths, links, state_dir, python=rt is not None)
        pinned = read_pin(project.root, node)
        if not ssh.host_key_verified and pinned is None:  # before anything on the node changes
            raise FunopsError(_unverified(node, "the first pin of its agent certificate"))
        if rt is not None:  # before anything is shipped: a runtime its python cannot load is no use
            runtime.check_python(node.name, python, rt)
        writes = _writes(files, live)
        pull_writes = _writes(pull_files, live)
        relink = live.get(f"{HOME}/current") != (version, None)
        placed = _runtime_tasks(rt, site, live) if rt is not None else []
        dropped = _drop_pull(live, state_dir) if node.pull is None else []
        tasks: list[m.Task] = [
            *writes,
            *pull_writes,
            # its names: what Prometheus dials (the agent URL's host) and the node's name
            m.MakeCertificate(config["cert"], config["key"], f"funops-agent {node.name}", _names(host, node)),
            # pull mode: `publish` seals each node's bundle to this certificate, recorded in the repo
            *([m.ReadFiles((config["cert"],), 65536)] if node.pull is not None else []),
            *placed,
            m.PointLink(f"{HOME}/current", f"{HOME}/{version}"),
            *dropped,
            m.DaemonReload(),
            # pull mode's files are read by each poll: they never restart the agent
            m.StartUnit(UNIT, restart=bool(writes) or relink),
        ]
        if node.pull is not None:
            retimed = any(w.path == pullsetup.TIMER_FILE for w in pull_writes)
            tasks.append(m.StartUnit(PULL_TIMER, restart=retimed))
        results, result = ssh.run_tasks(tasks)
        failed = next((r for r in results if r.exit_code != 0), None)
        if failed is not None or len(results) != len(tasks):
            why = failed.output if failed else result.stderr.decode(errors="replace")
            raise FunopsError(
                f"node {node.name}: agent install failed at {tasks[len(results) - 1].name}: {why}"
            )
        cert_at = len(writes) + len(pull_writes)
        fingerprint = results[cert_at].output.strip().removeprefix("sha256:")
        cert_pem = _certificate(node, results[cert_at + 1].output, fingerprint) if node.pull else None
    except TransportError as exc:
        raise FunopsError(f"node {node.name}: agent install needs SSH: {exc}") from exc
    finally:
        ssh.close()
    if not ssh.host_key_verified and fingerprint != pinned:  # the pin stays what verified SSH read
        raise FunopsError(
            _unverified(node, f"a new agent certificate (sha256:{fingerprint}, pinned: sha256:{pinned})")
        )
    _pin(pins_path(project.root, node), f"{host}:{port}", fingerprint)
    _keep_token(token_file, token)
    if cert_pem is not None:
        _record_certificate(certificate_file(project, node.name), cert_pem)
    _await(AgentTransport(node, project.settings, project.root), version)
    changed = bool(writes or pull_writes or placed or dropped) or relink
    return Installed(node.name, changed, fingerprint, version)


def _unverified(node: Node, what: str) -> str:
    """strictHostKeyChecking: false must not make the agent's pin trust on first use."""
    return (
        f"node {node.name}: its SSH host key is not in known_hosts (ssh.strictHostKeyChecking: false let "
        f"it in): {what} read over that unverified connection is not trusted, and nothing was pinned. "
        "Add the node's host key to known_hosts (`funops init --host`, or ssh-keyscan, then verify it), "
        f"then run `funops agent install {node.name}` again"
    )


def read_roots(project: Project) -> list[str]:
    """What the agent's reads (diffs, drift) may return: the project's allowed roots and the places
    funops writes itself (its config, nginx's conf.d, unit files); the agent adds its state dir."""
    from ..resources import APPS_DIR, NGINX_DIR, UNIT_DIR

    own = [os.path.dirname(APPS_DIR), NGINX_DIR, UNIT_DIR]
    return list(dict.fromkeys([*project.settings.allowed_roots, *own]))


def _writes(files: dict[str, tuple[bytes, str]], live: dict[str, object]) -> list[m.WriteFile]:
    """A write for each file not there with this content and mode."""
    return [
        m.WriteFile(path, sha, mode, "root", "root", None, content=data)
        for path, (data, mode) in files.items()
        if live.get(path) != (sha := hashlib.sha256(data).hexdigest(), mode)
    ]


def _runtime_tasks(rt: runtime.Runtime, site: str, live: dict[str, object]) -> list[m.Task]:
    """The runtime unpacked under RUNTIME/releases/ unless it is there (its marker names its digest:
    no upload), and this version's `site` pointed at it."""
    tasks: list[m.Task] = []
    if live.get(f"{pullsetup.RUNTIME}/current") != (rt.release, rt.sha256):
        place = m.PlaceArtifact(
            link=f"{pullsetup.RUNTIME}/current", directory=f"{pullsetup.RUNTIME}/releases/{rt.release}",
            release=rt.release, sha256=rt.sha256, keep=2, content=rt.data, label="the pull runtime",
        )  # fmt: skip
        tasks.append(place)
    if live.get(site) != (rt.release, rt.sha256):
        tasks.append(m.PointLink(site, f"{pullsetup.RUNTIME}/releases/{rt.release}"))
    return tasks


def _drop_pull(live: dict[str, object], state_dir: str) -> list[m.Task]:
    """A node without `pull:` (any more): its timer stopped and disabled, pull mode's files gone (kept
    in the state dir's backup, like any file funops removes)."""
    there = [p for p in pullsetup.FILES if live.get(p, (None, None)) != (None, None)]
    if not there:
        return []
    return [m.StopUnit(PULL_TIMER), *(m.RemoveFile(p, backup_path(state_dir, p)) for p in there)]


def _live(
    ssh: Transport, files: list[str], links: list[str], state_dir: str, python: bool
) -> tuple[dict[str, object], dict[str, str]]:
    """(sha256, mode) of each file there; (release, sha256 of its marker) of each link's target; with
    `python`, what the node's python is (ProbePython) — one round trip."""
    ids = (*(f"file:{p}" for p in files), *(f"artifact:{link}" for link in links))
    tasks: list[m.Task] = [m.Probe(ids, f"{state_dir}/state.json")]
    if python:
        tasks.append(m.ProbePython())
    results, result = ssh.run_tasks(tasks)
    if len(results) != len(tasks) or any(r.exit_code != 0 for r in results):
        raise TransportError(f"the probe failed: {results[-1].output if results else result.text()}")
    facts = parse(results[0].output, lambda p: p)
    found: dict[str, object] = {}
    for path in files:
        live = kind_of(f"file:{path}").live(path, facts) or {}
        found[path] = (live.get("sha256"), live.get("mode"))
    for link in links:
        live = kind_of(f"artifact:{link}").live(link, facts) or {}
        found[link] = (live.get("release"), live.get("sha256") or None)
    there = results[1].output.strip().splitlines() if python else []
    return found, json.loads(there[-1]) if there else {}


def _names(host: str, node: Node) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip("[]") for n in (host, node.name)))


def _certificate(node: Node, output: str, fingerprint: str) -> bytes:
    """The agent's certificate (PEM) as read back over SSH, checked to be the one just pinned."""
    try:
        (found,) = contents.parse(output, 1)
        pem = found.data if found is not None and found.data else b""
        der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FunopsError(f"node {node.name}: its agent certificate could not be read back: {exc}") from exc
    if hashlib.sha256(der).hexdigest() != fingerprint:
        raise FunopsError(
            f"node {node.name}: the agent certificate read back is not the one pinned "
            f"(sha256:{fingerprint}): run `funops agent install {node.name}` again"
        )
    return pem


def _record_certificate(path: Path, pem: bytes) -> None:
    """certs/agents/<node>.pem, for `funops publish` (commit it); rewritten only when it changed."""
    if path.exists() and path.read_bytes() == pem:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.new")
    aside.write_bytes(pem)
    os.replace(aside, path)


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
    write_private(path, token.encode() + b"\n")


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
    if any(project.nodes[n].pull is not None for n in names):
        runtime.build()  # once, before a batch's threads each want it
    for start in range(0, len(names), batch_size):
        batch = names[start : start + batch_size]
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            yield list(pool.map(lambda n: _install(project, project.nodes[n], code, version, False), batch))
