"""SSH transport (paramiko): one connection per node for the whole run, strict host keys by default.

Scripts run as `sh -c SCRIPT` (through `sudo -n` for a non-root user with become); data for a
script (file contents) goes on its stdin, so nothing secret is ever on a command line.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model.inventory import Node
from ..node.shell import ShellRunner
from ..settings import SshSettings
from .base import CommandResult, TransportError

_BUFSIZE = 65536


_KNOWN: dict[tuple[str, int, int], Any] = {}
_KNOWN_LOCK = threading.Lock()


def _host_keys(path: Path, lookup: str, required: bool) -> list[tuple[str, Any]]:
    """The known keys of one host, from a known_hosts file parsed once per run (and again when it
    changes): paramiko parses the whole file into keys on every connect, ~30 ms of the controller's
    CPU per node with a known_hosts of 60 lines. A missing file knows no host unless `required` (one
    the inventory names), as paramiko's `load_system_host_keys` and `load_host_keys`."""
    import paramiko

    try:
        st = os.stat(path)
        version = (str(path), st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        if not required:
            return []
        raise
    with _KNOWN_LOCK:
        if version not in _KNOWN:
            _KNOWN[version] = paramiko.HostKeys(str(path))
        entries = _KNOWN[version].lookup(lookup)
    return list(entries.items()) if entries else []


def _aead_first(sock: Any, *args: Any, **kwargs: Any) -> Any:
    """A paramiko Transport offering AES-GCM before its default AES-CTR + HMAC: paramiko checks
    each packet's MAC byte by byte in Python, a fifth of its CPU per connection; GCM's tag is
    checked by `cryptography`. (OpenSSH prefers GCM too, after chacha20, which paramiko lacks.)

    Its TCP socket sends at once (TCP_NODELAY), as OpenSSH's does: paramiko leaves Nagle's algorithm
    on, so a command's small writes (channel open, exec, stdin, EOF) waited for the node's delayed
    ACK, ≈ 40 ms each: a `true` took 48 ms on loopback, 6 ms without."""
    import paramiko

    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, *args, **kwargs)
    options = transport.get_security_options()
    options.ciphers = tuple(sorted(options.ciphers, key=lambda c: not c.endswith("-gcm@openssh.com")))
    return transport


class SshTransport(ShellRunner):
    def __init__(self, node: Node, settings: SshSettings, repo_root: Path) -> None:
        self.node = node
        self.settings = settings
        self.repo_root = repo_root
        self._client: Any = None
        self._lock = threading.Lock()
        # Whether the last connection's host key was one known_hosts holds: not so for a key that
        # strictHostKeyChecking: false let in (what such a connection reads back is not to be trusted)
        self.host_key_verified = False

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> Any:
        import paramiko  # slow to import (cryptography): only when a node is really contacted

        opts = self.node.ssh
        cfg = _ssh_config(self.node.address)
        client = paramiko.SSHClient()
        known = self._path(opts.known_hosts_file) if opts.known_hosts_file else None
        known_file = known or Path("~/.ssh/known_hosts").expanduser()
        hostname = cfg.get("hostname", self.node.address)
        # paramiko keys the lookup so; only this node's keys are handed over (see _host_keys).
        lookup = hostname if self.node.port == 22 else f"[{hostname}]:{self.node.port}"
        try:
            known_keys = _host_keys(known_file, lookup, required=known is not None)
            for keytype, key in known_keys:
                client.get_host_keys().add(lookup, keytype, key)
        except OSError as exc:
            raise TransportError(f"node {self.node.name}: cannot read {known_file}: {exc}") from exc
        strict = (
            self.settings.strict_host_key_checking
            if opts.strict_host_key_checking is None
            else (opts.strict_host_key_checking)
        )
        # Strict: an unknown key is refused. Relaxed (explicit opt-in): a new key is accepted for this
        # run. A *changed* key is refused either way (paramiko raises BadHostKeyException).
        client.set_missing_host_key_policy(paramiko.RejectPolicy() if strict else paramiko.AutoAddPolicy())
        identity = opts.identity_file or (cfg.get("identityfile") or [None])[0]
        try:
            client.connect(
                hostname=hostname,
                port=self.node.port,
                username=self.node.user,
                key_filename=str(self._path(identity)) if identity else None,
                timeout=opts.connect_timeout or self.settings.connect_timeout,
                banner_timeout=opts.connect_timeout or self.settings.connect_timeout,
                auth_timeout=opts.connect_timeout or self.settings.connect_timeout,
                allow_agent=True,
                look_for_keys=identity is None,
                transport_factory=_aead_first,
            )
        except paramiko.BadHostKeyException as exc:
            raise TransportError(
                f"node {self.node.name}: HOST KEY CHANGED for {self.node.address} (expected "
                f"{exc.expected_key.get_name()} {exc.expected_key.get_base64()[:16]}…, got "
                f"{exc.key.get_base64()[:16]}…); refusing to connect. If the change is legitimate, "
                f"update {known or '~/.ssh/known_hosts'}"
            ) from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TransportError(
                    f"node {self.node.name}: unknown host key for {self.node.address}:{self.node.port}; "
                    f"refusing to connect. Add it to {known or '~/.ssh/known_hosts'} (ssh-keyscan, then "
                    "verify it), or set ssh.strictHostKeyChecking: false for this node"
                ) from exc
            if "protocol banner" in str(exc):  # accepted, then closed (or said nothing) before SSH began
                raise TransportError(
                    f"node {self.node.name}: {self.node.address}:{self.node.port} closed the connection "
                    "before the SSH greeting (is sshd listening on that port?)"
                ) from exc
            raise TransportError(f"node {self.node.name}: ssh: {exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise TransportError(
                f"node {self.node.name}: cannot connect to {self.node.address}:{self.node.port}: {exc}"
            ) from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
            remote = transport.get_remote_server_key()
            self.host_key_verified = any(key == remote for _, key in known_keys)
        return client

    def _path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.repo_root / p

    def _session(self) -> Any:
        with self._lock:
            alive = (
                self._client is not None
                and self._client.get_transport() is not None
                and (self._client.get_transport().is_active())
            )
            if not alive:
                self._client = self._connect()
            return self._client.get_transport().open_session()

    # -- the Transport interface --------------------------------------------------------------

    def _command(self, script: str) -> str:
        command = f"sh -c {shlex.quote(script)}"
        if self.node.user != "root" and self.node.ssh.become:
            command = f"sudo -n -- {command}"
        return command

    def run(self, script: str, *, stdin: bytes | None = None, timeout: float | None = None) -> CommandResult:
        command = self._command(script)
        timeout = timeout or self.settings.command_timeout
        try:
            chan = self._session()
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _drain(chan, time.monotonic() + timeout)
            code = chan.recv_exit_status()
            chan.close()
        except TransportError:
            raise
        except (OSError, EOFError, TimeoutError) as exc:
            self.close()
            raise TransportError(
                f"node {self.node.name}: connection lost: {exc or type(exc).__name__}"
            ) from exc
        except Exception as exc:  # paramiko.SSHException and friends
            self.close()
            if "protocol banner" in str(exc):  # accepted, then closed (or said nothing) before SSH began
                raise TransportError(
                    f"node {self.node.name}: {self.node.address}:{self.node.port} closed the connection "
                    "before the SSH greeting (is sshd listening on that port?)"
                ) from exc
            raise TransportError(f"node {self.node.name}: ssh: {exc}") from exc
        if code == -1:
            raise TransportError(
                f"node {self.node.name}: the command ended without an exit status (link lost)"
            )
        return CommandResult(code, out, err)

    def stream_script(self, script: str, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            chan = self._session()
            # A pty: closing the channel hangs up the remote command (`journalctl -f` would otherwise
            # live on until its next write); its \r\n line ends are undone below.
            chan.get_pty(width=500)
            chan.exec_command(self._command(script))
            pending = b""
            while True:
                if deadline is not None:
                    chan.settimeout(max(deadline - time.monotonic(), 0.01))
                data = chan.recv(_BUFSIZE)
                if not data:
                    break
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:
                    on_line(line.decode("utf-8", errors="replace").rstrip("\r"))
            if pending:
                on_line(pending.decode("utf-8", errors="replace").rstrip("\r"))
            if not chan.exit_status_ready() and (chan.closed or not chan.status_event.wait(5)):
                raise TransportError(f"node {self.node.name}: the stream ended without an exit status")
            code: int = chan.recv_exit_status()
            chan.close()
            return code
        except TransportError:
            raise
        except (OSError, EOFError, TimeoutError) as exc:
            raise TransportError(f"node {self.node.name}: {exc or type(exc).__name__}") from exc
        except Exception as exc:  # paramiko.SSHException and friends
            if "protocol banner" in str(exc):  # accepted, then closed (or said nothing) before SSH began
                raise TransportError(
                    f"node {self.node.name}: {self.node.address}:{self.node.port} closed the connection "
                    "before the SSH greeting (is sshd listening on that port?)"
                ) from exc
            raise TransportError(f"node {self.node.name}: ssh: {exc}") from exc

    def path(self, node_path: str) -> str:
        return node_path

    def fingerprint(self) -> str:
        """The host key this connection verified, as `ssh-keygen -l` shows it (SHA256:…)."""
        with self._lock:
            if self._client is None or self._client.get_transport() is None:
                self._client = self._connect()
            key = self._client.get_transport().get_remote_server_key()
        return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _drain(chan: Any, deadline: float) -> tuple[bytes, bytes]:
    """Read stdout and stderr together (a chatty stderr cannot stall the channel) until the
    channel's EOF: sshd may send the exit status before the last of the output."""
    import select

    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        while chan.recv_ready():
            out.append(chan.recv(_BUFSIZE))
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(_BUFSIZE))
        done = (chan.eof_received or chan.closed) and chan.exit_status_ready()
        if done and not chan.recv_ready() and not chan.recv_stderr_ready():
            return b"".join(out), b"".join(err)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("command timed out")
        if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
            # No data comes after EOF, and the channel stays readable: a select here would spin
            # (hundreds of times a command) until the exit status arrives.
            chan.status_event.wait(min(remaining, 0.5))
        else:
            select.select([chan], [], [], min(remaining, 0.5))


def _ssh_config(host: str) -> dict[str, Any]:
    """~/.ssh/config for this host (HostName, IdentityFile), when the user has one."""
    path = Path.home() / ".ssh" / "config"
    if not path.is_file():
        return {}
    import paramiko

    return dict(paramiko.SSHConfig.from_path(str(path)).lookup(host))
