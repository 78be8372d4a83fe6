"""SSH through the system's OpenSSH client (`ssh.client: openssh`), one master connection per node kept
open between runs (ControlMaster/ControlPersist): a later run pays a channel over it, not a handshake.

The same promises as the paramiko transport (`ssh.py`): strict host keys against the node's known_hosts
(never StrictHostKeyChecking=no), the same key, user, port and timeouts, the script as `sh -c` (through
`sudo -n` with become) and its data on stdin. A master is a connection already verified; any change to
the known_hosts file gives the node another socket (so a new, verified connection), and a dead master's
stale socket is replaced by the next command, as a fresh connection would be made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..model.inventory import Node
from ..node.shell import ShellRunner
from ..settings import SshSettings
from .base import CommandResult, TransportError
from .muxclient import MuxLost, MuxUnavailable
from .muxclient import run as run_over_master

DEFAULT_PERSIST = 60  # seconds, as Ansible's default ControlPersist
# ssh binds `ControlPath.<16 random chars>` before renaming it, and sun_path holds 107 bytes.
_MAX_PATH = 107 - 17
_SSH_EXIT = 255  # the client's own failure (or, rarely, the remote command's: see _failure)


def control_dir() -> Path:
    """A private (0700, ours) directory for the control sockets: under the user's runtime dir, else
    ~/.cache/funops, else the temp dir when those paths are too long for a socket."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    candidates = [Path(runtime) / "funops-ssh"] if runtime and os.path.isdir(runtime) else []
    candidates.append(Path("~/.cache/funops/ssh").expanduser())
    candidates.append(Path(tempfile.gettempdir()) / f"funops-ssh-{os.getuid()}")
    path = next(p for p in candidates if len(str(p)) + 1 + _NAME_LEN <= _MAX_PATH or p == candidates[-1])
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise TransportError(f"{path}: not a directory of this user; refusing to keep ssh sockets there")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


_NAME_LEN = 20
_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def _file_digest(path: Path) -> str:
    """sha256 of a known_hosts file, read once per run (and again when it changes)."""
    st = os.stat(path)
    version = (str(path), st.st_mtime_ns, st.st_size)
    with _DIGESTS_LOCK:
        if version not in _DIGESTS:
            _DIGESTS[version] = hashlib.sha256(path.read_bytes()).hexdigest()
        return _DIGESTS[version]


def _token(value: str) -> str:
    """A path as one value of an ssh `-o` option: `%` is ssh's token escape, quotes keep spaces."""
    if '"' in value:
        raise TransportError(f"{value}: a path with a double quote cannot be given to ssh")
    return '"' + value.replace("%", "%%") + '"'


class OpensshTransport(ShellRunner):
    def __init__(self, node: Node, settings: SshSettings, repo_root: Path) -> None:
        self.node = node
        self.settings = settings
        self.repo_root = repo_root
        opts = node.ssh
        self.strict = (
            settings.strict_host_key_checking
            if opts.strict_host_key_checking is None
            else opts.strict_host_key_checking
        )
        self.host_key_verified = self.strict  # the client refuses any key known_hosts lacks
        self._argv: list[str] | None = None
        self.control_path: Path | None = None  # set with the command line
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    # -- the command line ---------------------------------------------------------------------

    def _path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.repo_root / p

    def known_hosts(self) -> tuple[Path, bool]:
        """The node's known_hosts file, and whether the inventory names it (then it must exist)."""
        given = self.node.ssh.known_hosts_file
        return (self._path(given), True) if given else (Path("~/.ssh/known_hosts").expanduser(), False)

    def socket_name(self, known_digest: str) -> str:
        """The node's control socket: one per destination, identity and known_hosts content, so a
        master is reused only by a run that would have verified the same host key the same way."""
        opts = self.node.ssh
        known = str(self.known_hosts()[0])
        what = [self.node.user, self.node.address, self.node.port, opts.identity_file, known, known_digest,
                self.strict]  # fmt: skip
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:_NAME_LEN]

    def ssh_argv(self, control: Path) -> list[str]:
        """`ssh` with every option that decides how the node is reached, up to the destination; the
        remote command follows."""
        known, required = self.known_hosts()
        try:
            digest = _file_digest(known)
        except FileNotFoundError:
            if required:
                raise TransportError(f"node {self.node.name}: cannot read {known}: no such file") from None
            digest = ""
        except OSError as exc:
            raise TransportError(f"node {self.node.name}: cannot read {known}: {exc}") from exc
        name = self.socket_name(digest)
        self.control_path = control / name
        opts = self.node.ssh
        timeout = math.ceil(opts.connect_timeout or self.settings.connect_timeout)
        files = _token(str(known))
        if not self.strict:  # a new key is accepted, kept beside the socket: never in the user's file
            files = f"{_token(str(control / (name + '.new')))} {files}"
        argv = [
            "ssh",
            "-o", "BatchMode=yes",  # never a password or passphrase prompt
            "-o", f"StrictHostKeyChecking={'yes' if self.strict else 'accept-new'}",
            "-o", f"UserKnownHostsFile={files}",
            "-o", "GlobalKnownHostsFile=none",
            "-o", "UpdateHostKeys=no",  # never rewrite the known_hosts file
            "-o", "CheckHostIP=no",
            # paramiko's key exchange: OpenSSH's post-quantum default costs ≈ 200 ms of CPU per connection
            "-o", "KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org",
            "-o", f"ConnectTimeout={timeout}",
            "-o", "ServerAliveInterval=15",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={_token(str(control / name))}",
            "-o", f"ControlPersist={opts.control_persist or DEFAULT_PERSIST}s",
            "-p", str(self.node.port),
            "-l", self.node.user,
        ]  # fmt: skip
        if opts.identity_file:
            argv += ["-i", str(self._path(opts.identity_file)).replace("%", "%%")]  # ssh expands % there
        return [*argv, "--", self.node.address]

    def _command(self, script: str) -> str:
        import shlex

        command = f"sh -c {shlex.quote(script)}"
        if self.node.user != "root" and self.node.ssh.become:
            command = f"sudo -n -- {command}"
        return command

    def _base(self) -> list[str]:
        with self._lock:
            if self._argv is None:
                try:
                    control = control_dir()
                except OSError as exc:
                    raise TransportError(
                        f"node {self.node.name}: no directory for ssh sockets: {exc}"
                    ) from exc
                self._argv = self.ssh_argv(control)
            return self._argv

    # -- the Transport interface --------------------------------------------------------------

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        timeout = timeout or self.settings.command_timeout
        argv = [*self._base(), self._command(script)]
        if self.control_path is not None and self.control_path.is_socket():
            try:  # over the master from this process: no ssh client to start
                code, out, err = run_over_master(str(self.control_path), argv[-1], stdin or b"", timeout)
                return CommandResult(code, out, err)
            except MuxUnavailable:
                pass  # no master answers: the ssh client makes a new connection (and master)
            except MuxLost as exc:
                raise TransportError(f"node {self.node.name}: connection lost: {exc}") from exc
        with self._spawned(argv, subprocess.PIPE) as proc:
            try:
                out, err = proc.communicate(stdin or b"", timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise TransportError(f"node {self.node.name}: connection lost: command timed out") from None
        if proc.returncode == _SSH_EXIT:
            failure = self._failure(err.decode("utf-8", errors="replace"), ran=bool(out))
            if failure is not None:
                raise failure
        if proc.returncode < 0:  # killed by close() from another thread
            raise TransportError(f"node {self.node.name}: connection lost: the ssh client was stopped")
        return CommandResult(proc.returncode, out, err)

    def stream_script(self, script: str, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        # -tt: a pty, so that closing the session hangs up the remote command (as the paramiko
        # transport's get_pty); its \r\n line ends are undone below.
        argv = [*self._base()[:-2], "-tt", *self._base()[-2:], self._command(script)]
        with self._spawned(argv, subprocess.DEVNULL) as proc:
            timer = threading.Timer(timeout, proc.kill) if timeout is not None else None
            try:
                if timer is not None:
                    timer.start()
                assert proc.stdout is not None
                for raw in proc.stdout:
                    on_line(raw.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r"))
                err = proc.stderr.read() if proc.stderr is not None else b""
                code = proc.wait()
            finally:
                if timer is not None:
                    timer.cancel()
        if code == _SSH_EXIT:
            failure = self._failure(err.decode("utf-8", errors="replace"), ran=False)
            if failure is not None:
                raise failure
        if code < 0:
            raise TransportError(f"node {self.node.name}: the stream ended without an exit status")
        return code

    @contextlib.contextmanager
    def _spawned(self, argv: list[str], stdin: int) -> Iterator[subprocess.Popen[bytes]]:
        """The ssh client running `argv`, known to close() (which stops it) while it runs."""
        try:
            proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise TransportError(f"node {self.node.name}: cannot run ssh: {exc}") from exc
        with self._lock:
            self._running.add(proc)
        try:
            yield proc
        finally:
            with self._lock:
                self._running.discard(proc)

    def _failure(self, stderr: str, ran: bool) -> TransportError | None:
        """The TransportError an exit 255 means: the client's own failure, worded as the paramiko
        transport words it. None when the remote command ran and exited 255 itself."""
        node, where = self.node, f"{self.node.address}:{self.node.port}"
        known = self.node.ssh.known_hosts_file or "~/.ssh/known_hosts"
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key for" in stderr:
            return TransportError(
                f"node {node.name}: HOST KEY CHANGED for {node.address}; refusing to connect. If the "
                f"change is legitimate, update {known}"
            )
        if "host key is known for" in stderr or "Host key verification failed" in stderr:
            return TransportError(
                f"node {node.name}: unknown host key for {where}; refusing to connect. Add it to {known} "
                "(ssh-keyscan, then verify it), or set ssh.strictHostKeyChecking: false for this node"
            )
        if "kex_exchange_identification" in stderr or "banner exchange" in stderr:
            return TransportError(
                f"node {node.name}: {where} closed the connection before the SSH greeting (is sshd "
                "listening on that port?)"
            )
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else "the ssh client failed"
        if "connect to host" in last:
            return TransportError(f"node {node.name}: cannot connect to {where}: {last.rsplit(': ', 1)[-1]}")
        if ran and not any(word in last for word in ("ssh:", "client_loop", "mux_client", "Connection")):
            return None
        return TransportError(f"node {node.name}: ssh: {last}")

    def path(self, node_path: str) -> str:
        return node_path

    def close(self) -> None:
        """Ends what still runs (a log stream); the master stays, for the next run."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            proc.kill()
