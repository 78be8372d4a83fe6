"""Bringing the lab's nodes up and down, and the `Lab` object tests use to reach them."""

from __future__ import annotations

import errno
import fcntl
import json
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker.errors

from . import keys
from .config import (
    LABEL,
    MAX_NODES,
    TESTAPP_REPO,
    LabError,
    container_name,
    lab_dir,
    label_value,
    node_address,
    node_name,
)
from .engine import (
    ENGINE_ERRORS,
    client,
    engine_answers,
    exec_in,
    inspect_container,
    lab_containers,
    remove_containers,
)
from .files import remove_tree, write_if_changed
from .image import build_image
from .inventory import render_inventory
from .testapp import ensure_testapp
from .testapp import recipe_hash as testapp_recipe

# The units the image enables: a failure of one of these is always the lab's problem.
LAB_UNITS = frozenset(
    {
        "funops-lab-node.service",
        "ssh.service",
        "nginx.service",
        "docker.service",
        "docker.socket",
        "containerd.service",
    }
)
T = TypeVar("T")
# The node image and the registry's test app are the host's, not a slot's: labs of several slots
# coming up at once (pytest-xdist workers) build and push them one at a time.
IMAGES_LOCK = Path(tempfile.gettempdir()) / "funops-lab-images.lock"
BOOT_TIMEOUT = 180.0  # seconds for one node to reach `running` with sshd answering
# systemd as PID 1 without --privileged (which fails on these machines): see /work/shared/lab-notes.md.
CAPABILITIES = (
    "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "MKNOD", "SYS_NICE", "SYS_TIME", "AUDIT_CONTROL", "AUDIT_WRITE",
    "DAC_READ_SEARCH", "IPC_LOCK", "LINUX_IMMUTABLE", "SYS_CHROOT", "SETPCAP", "SYS_RAWIO", "NET_RAW",
)  # fmt: skip


@dataclass(frozen=True)
class Node:
    """One lab node: `name` (node1), `address` (127.0.<slot>.1, sshd :22, nginx :80), docker `container`."""

    index: int
    name: str
    address: str
    container: str

    @classmethod
    def of(cls, k: int) -> Node:
        return cls(k, node_name(k), node_address(k), container_name(k))


NodeRef = Node | str  # a Node, or a node name ("node1")


@dataclass
class Lab:
    """A running lab: its nodes and the files funops (and tests) need to reach them over SSH."""

    dir: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def key_path(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / "known_hosts"

    def node(self, ref: NodeRef) -> Node:
        """The node named `ref` (or `ref` itself)."""
        if isinstance(ref, Node):
            return ref
        for node in self.nodes:
            if ref in (node.name, node.address, node.container):
                return node
        raise LabError(f"no lab node {ref!r} (nodes: {', '.join(n.name for n in self.nodes)})")

    def exec(
        self,
        node: NodeRef,
        cmd: str | Sequence[str],
        *,
        user: str | None = None,
        input: str | None = None,
        check: bool = False,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on the node out of band (docker exec, not SSH). A string runs under `sh -c`.
        A node that is not running is a LabError; a failing command is a non-zero returncode (a
        LabError with `check`)."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        proc = _exec(self.node(node), argv, user=user, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise LabError(
                f"`{shlex.join(argv)}` failed on {node} ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def ssh_argv(self, node: NodeRef, user: str = "root", known_hosts: Path | None = None) -> list[str]:
        """An OpenSSH client command line (without the remote command) that trusts only the lab's keys."""
        return keys.ssh_argv(
            self.node(node).address, user, self.key_path, known_hosts or self.known_hosts_path
        )

    def ssh(
        self, node: NodeRef, cmd: str, user: str = "root", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` on the node over real SSH (strict host key checking against the lab's known_hosts)."""
        return subprocess.run(
            [*self.ssh_argv(node, user), cmd], capture_output=True, text=True, timeout=timeout
        )

    def stop_node(self, node: NodeRef) -> None:
        """Fault injection: stop the node's container (systemd shuts down; state and host keys persist)."""
        n = self.node(node)
        _engine(f"stop {n.name}", lambda: client().api.stop(n.container, timeout=20))

    def start_node(self, node: NodeRef, timeout: float = BOOT_TIMEOUT) -> None:
        """Start a stopped node and wait until it is `running` with sshd answering; refresh known_hosts."""
        n = self.node(node)
        _engine(f"start {n.name}", lambda: client().api.start(n.container))
        _wait_ready(n, time.monotonic() + timeout, fresh=False)
        _write_known_hosts(self.dir, self.nodes)


@dataclass(frozen=True)
class NodeStatus:
    name: str
    container: str
    address: str
    state: str  # docker's: running, exited, ...
    system: str  # systemctl is-system-running, or "-" when the container is not running
    ssh: bool  # sshd answers on address:22
    image: str


# ---------------------------------------------------------------------------------------------- up


def up(n: int = 3, *, timeout: float = BOOT_TIMEOUT) -> Lab:
    """Bring the lab to exactly `n` running nodes (idempotent) and write its key, known_hosts, inventory."""
    if not 1 <= n <= MAX_NODES:
        raise LabError(f"the lab has 1..{MAX_NODES} nodes, not {n}")
    if not engine_answers():
        raise LabError("no docker engine answers: run `make lab-host` (lab/bootstrap-host)")
    directory = lab_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / ".lock"):
        with _locked(IMAGES_LOCK):
            image = build_image()
            ensure_testapp()
        pubkey = keys.ensure_key(directory / "id_ed25519")
        nodes = [Node.of(k) for k in range(1, n + 1)]
        _remove_extra(directory, keep=n)
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=min(n, 16)) as pool:
            list(pool.map(lambda node: _ensure_node(directory, node, image, pubkey, deadline), nodes))
        _write_known_hosts(directory, nodes)
        write_if_changed(directory / "inventory.yaml", render_inventory(nodes, directory))
        lab = Lab(directory, nodes)
        with ThreadPoolExecutor(max_workers=min(n, 16)) as pool:
            list(pool.map(lambda node: _check_login(lab, node), nodes))
        return lab


def current() -> Lab:
    """The lab as it is now (its running nodes), without changing anything."""
    nodes = sorted((Node.of(k) for k in _existing_indexes()), key=lambda node: node.index)
    return Lab(lab_dir(), nodes)


def down() -> None:
    """Remove the lab's containers (by label) and the lab's generated files; the key pair stays."""
    directory = lab_dir()
    if not directory.exists():
        if engine_answers():
            remove_containers(lab_containers(LABEL, label_value()))
        return
    with _locked(directory / ".lock"):
        if engine_answers():
            remove_containers(lab_containers(LABEL, label_value()))
        remove_tree(directory / "nodes")
        for name in ("known_hosts", "inventory.yaml"):
            (directory / name).unlink(missing_ok=True)


def status() -> list[NodeStatus]:
    """The state of every lab container (running or not)."""
    if not engine_answers():
        raise LabError("no docker engine answers: run `make lab-host`")
    indexes = _existing_indexes()
    with ThreadPoolExecutor(max_workers=max(1, min(len(indexes), 16))) as pool:
        return list(pool.map(_node_status, indexes))


def _node_status(k: int) -> NodeStatus:
    node = Node.of(k)
    info = inspect_container(node.container) or {}
    state = info.get("State", {}).get("Status", "missing")
    system = "-"
    if state == "running":
        proc = _exec(node, ["systemctl", "is-system-running"], timeout=30)
        system = proc.stdout.strip() or "unknown"
    image = info.get("Config", {}).get("Image", "-")
    return NodeStatus(
        node.name, node.container, node.address, state, system, _ssh_answers(node.address), image
    )


# ------------------------------------------------------------------------------------------ details


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One holder at a time of the lock file `path`: a lab dir's `.lock` (parallel test sessions would
    race on the same containers) or IMAGES_LOCK."""
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _existing_indexes() -> list[int]:
    prefix = container_name(0)[:-1]
    return sorted(
        int(name[len(prefix) :])
        for name in lab_containers(LABEL, label_value())
        if name[len(prefix) :].isdigit()
    )


def _remove_extra(directory: Path, keep: int) -> None:
    extra = [k for k in _existing_indexes() if k > keep]
    remove_containers([container_name(k) for k in extra])
    for k in extra:
        remove_tree(directory / "nodes" / node_name(k))
    # Directories of nodes whose containers are already gone.
    for path in (directory / "nodes").glob("node*"):
        if path.name[4:].isdigit() and int(path.name[4:]) > keep:
            remove_tree(path)


def _forget_stale_testapp(node: Node) -> None:
    """Remove test app images the node's engine pulled from an older build, so that it pulls anew."""
    stale = sorted(
        tag
        for image in _node_images(node, {"reference": [TESTAPP_REPO]})
        if (image.get("Labels") or {}).get(f"{LABEL}.recipe") != testapp_recipe()
        for tag in image.get("RepoTags") or []
    )
    if stale:
        _exec(node, ["docker", "image", "rm", "--force", *stale])


def _node_images(node: Node, filters: dict[str, list[str]]) -> list[dict]:
    """The images of the node's own (nested) engine, from its Engine API on the node's socket: JSON,
    not `docker images` text. That engine is not reachable from the host (its socket is in the
    node's /run), hence curl inside the node."""
    url = "http://localhost/images/json?filters=" + urllib.parse.quote(json.dumps(filters))
    proc = _exec(node, ["curl", "-sSf", "--unix-socket", "/run/docker.sock", url], timeout=60)
    if proc.returncode != 0:
        _log(f"{node.name}: cannot list the node's images: {proc.stderr.strip()}")
        return []
    return json.loads(proc.stdout)


def _exec(
    node: Node,
    argv: Sequence[str],
    *,
    user: str | None = None,
    input: str | None = None,
    timeout: float | None = 120,
) -> subprocess.CompletedProcess[str]:
    """docker exec on a node; the engine's typed errors become a LabError naming the node."""
    return _engine(
        f"exec on {node.name}",
        lambda: exec_in(node.container, argv, user=user, input=input, timeout=timeout),
    )


def _engine(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except docker.errors.NotFound as e:
        raise LabError(f"{what}: no such container ({e.explanation})") from e
    except docker.errors.APIError as e:
        raise LabError(f"{what}: {e.explanation or e}") from e
    except ENGINE_ERRORS as e:
        raise LabError(f"{what}: the docker engine failed: {e}") from e


def _ensure_node(directory: Path, node: Node, image: str, pubkey: str, deadline: float) -> None:
    node_dir = directory / "nodes" / node.name
    etc = node_dir / "etc"
    (node_dir / "docker").mkdir(parents=True, exist_ok=True)
    env = f"FUNOPS_LAB_NODE={node.name}\nFUNOPS_LAB_ADDRESS={node.address}\n"
    env_changed = write_if_changed(etc / "node.env", env)
    keys_changed = write_if_changed(etc / "authorized_keys", pubkey)

    info = inspect_container(node.container)
    stale = _stale_reason(info, image, directory) if info is not None else None
    if stale:
        _log(f"{node.name}: {stale}, recreating")
        remove_containers([node.container])
        info = None
    if info is None:
        _check_ports_free(node)
        _engine(f"run {node.name}", lambda: client().containers.run(**_run_args(directory, node, image)))
    elif not info["State"]["Running"]:
        _engine(f"start {node.name}", lambda: client().api.start(node.container))
    elif env_changed or keys_changed:
        # The key pair was regenerated under a running node: install the new public key.
        _exec(node, ["systemctl", "restart", "funops-lab-node.service"])
    _wait_ready(node, deadline, fresh=info is None)
    _forget_stale_testapp(node)


def _stale_reason(info: dict, image: str, directory: Path) -> str | None:
    """Why an existing node container cannot be kept as it is, if it cannot."""
    if info["Config"]["Image"] != image:
        return f"image changed ({info['Config']['Image']} -> {image})"
    if (info["Config"]["Labels"] or {}).get(f"{LABEL}.dir") != str(directory):
        # Names and addresses are global: a node of another lab dir has the wrong key and mounts.
        return "belongs to another lab dir"
    return None


def _run_args(directory: Path, node: Node, image: str) -> dict[str, Any]:
    """What `docker run` gets (the SDK's containers.run keywords)."""
    node_dir = directory / "nodes" / node.name
    return {
        "image": image,
        "command": ["/sbin/init"],
        "detach": True,
        "name": node.container,
        "hostname": node.name,
        "extra_hosts": {node.name: node.address},  # sudo and friends resolve their own name
        "labels": {
            LABEL: label_value(),
            f"{LABEL}.node": node.name,
            f"{LABEL}.dir": str(directory),
        },
        "network_mode": "host",  # the lab's rule: no bridge networks; everything on 127.0.0.0/8
        "cap_add": list(CAPABILITIES),
        "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
        "tmpfs": {"/run": "", "/run/lock": ""},
        "volumes": {
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            str(node_dir / "etc"): {"bind": "/etc/funops-lab", "mode": "ro"},
            # The nested engine's overlay2 needs a real filesystem under /var/lib/docker, not overlayfs.
            str(node_dir / "docker"): {"bind": "/var/lib/docker", "mode": "rw"},
        },
        "stop_signal": "SIGRTMIN+3",  # systemd's "halt cleanly"
    }


def _check_ports_free(node: Node) -> None:
    """Fail early and clearly when something on the host already holds the node's :22 or :80."""
    for port in (22, 80):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((node.address, port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise LabError(
                        f"{node.address}:{port} is already taken on this host"
                        f" (a host service on 0.0.0.0:{port}?); see `ss -ltnp`"
                    ) from e
                raise


def _wait_ready(node: Node, deadline: float, fresh: bool) -> None:
    """Wait for `systemctl is-system-running` = running and sshd's banner.

    A `fresh` node (just created from the image) must reach `running`: any failed unit is a lab bug.
    A node that already lived may carry units that tests installed and left failed: then only a
    failure of the lab's own units (sshd, nginx, docker, systemd's) stops us; the rest is reported.
    """
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LabError(f"{node.name}: not running within the timeout ({_diagnose(node)})")
        try:
            argv = ["systemctl", "is-system-running", "--wait"]
            proc = exec_in(node.container, argv, timeout=remaining + 5)
        except docker.errors.APIError as e:
            if e.status_code != 409:  # 409 Conflict: the container is not running
                raise LabError(f"{node.name}: {e.explanation or e}") from e
            logs = client().api.logs(node.container, tail=20).decode(errors="replace")
            raise LabError(f"{node.name}: container exited:\n{logs}") from e
        state = proc.stdout.strip()
        if state == "running":
            break
        if state == "degraded":
            failed = _failed_units(node)
            ours = [u for u in failed if u in LAB_UNITS or u.startswith("systemd-")]
            if fresh or ours or not failed:
                raise LabError(f"{node.name}: systemd is degraded; failed units: {', '.join(failed) or '?'}")
            _log(f"{node.name}: degraded by units that are not the lab's: {', '.join(failed)}")
            break
        time.sleep(0.25)  # systemd not reachable yet (offline) or still starting
    while not _ssh_answers(node.address):
        if time.monotonic() > deadline:
            raise LabError(f"{node.name}: sshd does not answer on {node.address}:22")
        time.sleep(0.2)


def _failed_units(node: Node) -> list[str]:
    proc = _exec(node, ["systemctl", "--failed", "--plain", "--no-legend"])
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def _diagnose(node: Node) -> str:
    proc = _exec(node, ["systemctl", "list-jobs", "--no-legend"], timeout=10)
    return f"pending jobs: {proc.stdout.strip() or proc.stderr.strip() or 'none'}"


def _ssh_answers(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=2) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _host_keys(node: Node, tries: int = 5) -> list[str]:
    """The node's real public host keys as known_hosts lines for its address. Read again a few times:
    an exec into a node that has just booted has come back empty on a loaded host."""
    for attempt in range(tries):
        proc = _exec(node, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"])
        lines = []
        for line in sorted(proc.stdout.splitlines()):
            parts = line.split()
            if len(parts) >= 2:
                lines.append(f"{node.address} {parts[0]} {parts[1]}")
        if lines:
            return lines
        if attempt + 1 < tries:
            time.sleep(0.5)
    raise LabError(f"{node.name}: no host keys in /etc/ssh ({proc.stdout}{proc.stderr})".strip())


def _write_known_hosts(directory: Path, nodes: Sequence[Node]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, min(len(nodes), 16))) as pool:
        per_node = list(pool.map(_host_keys, nodes))
    write_if_changed(directory / "known_hosts", "".join(line + "\n" for lines in per_node for line in lines))


def _check_login(lab: Lab, node: Node) -> None:
    proc = lab.ssh(node, "true")
    if proc.returncode != 0:
        argv = shlex.join([*lab.ssh_argv(node), "true"])
        raise LabError(f"{node.name}: ssh login as root failed: {proc.stderr.strip()}\n  tried: {argv}")


def _log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)
