"""`ssh.client: openssh`: the inventory option, the ssh command line it gives, where the control sockets
live, and how the client's failures read. The transport against real nodes (a persisted master, a changed
host key, a killed master) is tests/lab/test_openssh.py's."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from funops.model.inventory import Node
from funops.settings import SshSettings
from funops.transports import TransportError, open_transport
from funops.transports.openssh import DEFAULT_PERSIST, OpensshTransport, control_dir


def make(tmp_path: Path, **ssh: object) -> OpensshTransport:
    known = tmp_path / "known_hosts"
    if not known.exists():
        known.write_text("127.0.0.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDs0\n")
    node = Node.model_validate(
        {
            "name": "web1",
            "address": "127.0.0.9",
            "port": 2222,
            "user": "deploy",
            "ssh": {"client": "openssh", "knownHostsFile": str(known), "identityFile": "keys/id", **ssh},
        }
    )
    return OpensshTransport(node, SshSettings(), tmp_path)


def options(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")


def test_the_client_is_paramiko_unless_openssh_is_asked_for(tmp_path: Path) -> None:
    from funops.settings import Settings
    from funops.transports.ssh import SshTransport

    plain = Node.model_validate({"name": "a", "address": "127.0.0.9"})
    assert plain.ssh.client == "paramiko" and plain.ssh.control_persist is None
    assert isinstance(open_transport(plain, Settings(), tmp_path), SshTransport)
    mux = Node.model_validate({"name": "a", "address": "127.0.0.9", "ssh": {"client": "openssh"}})
    assert isinstance(open_transport(mux, Settings(), tmp_path), OpensshTransport)


@pytest.mark.parametrize(
    ("ssh", "field", "message"),
    [
        ({"client": "putty"}, "client", "'paramiko' or 'openssh'"),
        ({"controlPersist": 60}, "controlPersist", "controlPersist needs client: openssh"),
        ({"client": "openssh", "controlPersist": 0}, "controlPersist", "greater than or equal to 1"),
        ({"client": "openssh", "controlPersist": "60s"}, "controlPersist", "valid integer"),
    ],
)
def test_bad_options_name_their_field(ssh: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Node.model_validate({"name": "a", "address": "127.0.0.9", "ssh": ssh})
    text = str(caught.value)
    assert field in text and message in text, text


def test_the_command_line_keeps_strict_host_keys_key_user_port_and_timeout(tmp_path: Path) -> None:
    transport = make(tmp_path, connectTimeout=2.5)
    argv = transport.ssh_argv(tmp_path)
    opts = options(argv)
    assert opts["StrictHostKeyChecking"] == "yes"
    assert opts["UserKnownHostsFile"] == f'"{tmp_path / "known_hosts"}"'
    assert opts["GlobalKnownHostsFile"] == "none" and opts["UpdateHostKeys"] == "no"
    assert opts["BatchMode"] == "yes" and opts["ConnectTimeout"] == "3"
    assert opts["ControlMaster"] == "auto" and opts["ControlPersist"] == f"{DEFAULT_PERSIST}s"
    assert opts["ControlPath"].startswith(f'"{tmp_path}/')
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "deploy"
    assert argv[argv.index("-i") + 1] == str(tmp_path / "keys" / "id")  # relative: to the repo
    assert argv[-2:] == ["--", "127.0.0.9"]
    assert "no" not in {opts["StrictHostKeyChecking"], opts["BatchMode"]}


def test_control_persist_and_a_relaxed_host_key_check(tmp_path: Path) -> None:
    transport = make(tmp_path, controlPersist=600, strictHostKeyChecking=False)
    opts = options(transport.ssh_argv(tmp_path))
    assert opts["ControlPersist"] == "600s"
    # a new key is accepted and kept beside the socket, never in the user's known_hosts; a changed one
    # is still refused (accept-new, never no)
    assert opts["StrictHostKeyChecking"] == "accept-new"
    new, known = opts["UserKnownHostsFile"].split(" ")
    assert (
        new.startswith(f'"{tmp_path}/') and new.endswith('.new"') and known == f'"{tmp_path / "known_hosts"}"'
    )
    assert not transport.host_key_verified


def test_percent_and_spaces_in_paths_reach_ssh_as_written(tmp_path: Path) -> None:
    odd = tmp_path / "my keys %h"
    odd.mkdir()
    (odd / "known_hosts").write_text("")
    opts = options(make(tmp_path, knownHostsFile=str(odd / "known_hosts")).ssh_argv(tmp_path))
    assert opts["UserKnownHostsFile"] == f'"{tmp_path}/my keys %%h/known_hosts"'


def test_a_named_known_hosts_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match=r"node web1: cannot read .*missing: no such file"):
        make(tmp_path, knownHostsFile=str(tmp_path / "missing")).ssh_argv(tmp_path)


def test_another_known_hosts_content_or_destination_is_another_socket(tmp_path: Path) -> None:
    transport = make(tmp_path)
    first = options(transport.ssh_argv(tmp_path))["ControlPath"]
    assert options(make(tmp_path).ssh_argv(tmp_path))["ControlPath"] == first  # the next run reuses it
    (tmp_path / "known_hosts").write_text("127.0.0.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther\n")
    assert options(make(tmp_path).ssh_argv(tmp_path))["ControlPath"] != first
    assert options(make(tmp_path, identityFile="other").ssh_argv(tmp_path))["ControlPath"] != first


def test_become_runs_the_script_through_sudo(tmp_path: Path) -> None:
    assert make(tmp_path)._command("id") == "sh -c id"
    assert make(tmp_path, become=True)._command("id -u") == "sudo -n -- sh -c 'id -u'"


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A runtime dir short enough for sockets (pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="fo"))
    yield path
    shutil.rmtree(path)


def test_the_control_dir_is_private_and_short(
    tmp_path: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    path = control_dir()
    assert path == runtime / "funops-ssh"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    path.chmod(0o755)  # loosened by someone: made private again
    assert stat.S_IMODE(control_dir().stat().st_mode) == 0o700
    long = tmp_path / ("x" * 90)
    long.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(long))
    monkeypatch.setenv("HOME", str(long))
    short = control_dir()  # a socket path must fit in 107 bytes with ssh's temporary suffix
    assert len(str(short)) + 1 + 20 + 17 <= 107 and short.name == f"funops-ssh-{os.getuid()}"


def test_a_planted_link_is_not_a_control_dir(
    tmp_path: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (runtime / "funops-ssh").symlink_to(tmp_path)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with pytest.raises(TransportError, match="not a directory of this user"):
        control_dir()


@pytest.mark.parametrize(
    ("stderr", "ran", "expected"),
    [
        (
            "@@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed.\n",
            False,
            "HOST KEY CHANGED for 127.0.0.9; refusing to connect",
        ),
        (
            "No ED25519 host key is known for [127.0.0.9]:2222 and you have requested strict checking.\n"
            "Host key verification failed.\n",
            False,
            "unknown host key for 127.0.0.9:2222; refusing to connect",
        ),
        (
            "ssh: connect to host 127.0.0.9 port 2222: Connection refused\n",
            False,
            "cannot connect to 127.0.0.9:2222",
        ),
        (
            "deploy@127.0.0.9: Permission denied (publickey).\n",
            False,
            "ssh: deploy@127.0.0.9: Permission denied",
        ),
    ],
)
def test_client_failures_read_as_the_paramiko_transports(
    tmp_path: Path, stderr: str, ran: bool, expected: str
) -> None:
    failure = make(tmp_path)._failure(stderr, ran)
    assert failure is not None and expected in str(failure) and str(failure).startswith("node web1: ")


def test_a_remote_command_exiting_255_is_its_result(tmp_path: Path) -> None:
    assert make(tmp_path)._failure("the command's own complaint\n", ran=True) is None


def test_a_host_that_closes_the_connection_is_one_line(
    tmp_path: Path, runtime: Path, closing_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ssh client against a loopback socket that closes at once."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    node = Node.model_validate(
        {"name": "web1", "address": "127.0.0.1", "port": closing_port, "ssh": {"client": "openssh"}}
    )
    transport = OpensshTransport(node, SshSettings(connect_timeout=5), tmp_path)
    with pytest.raises(TransportError, match="closed the connection before the SSH greeting"):
        transport.run("true")


def fake_master(path: str, exit_status: int | None) -> threading.Thread:
    """A master speaking PROTOCOL.mux as OpenSSH's does: hello, a session on the three descriptors
    passed, then the exit message (or none: the link lost). It echoes stdin upper-cased."""
    import struct

    from funops.transports import muxclient

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(muxclient._packet(struct.pack(">II", muxclient.MUX_MSG_HELLO, 4)))
        assert muxclient._read_packet(conn)[0] == muxclient.MUX_MSG_HELLO
        kind, body = muxclient._read_packet(conn)
        assert kind == muxclient.MUX_C_NEW_SESSION and body.endswith(b"sh -c work")
        fds = [socket.recv_fds(conn, 1, 1)[1][0] for _ in range(3)]
        conn.sendall(muxclient._packet(struct.pack(">III", muxclient.MUX_S_SESSION_OPENED, 1, 7)))
        with os.fdopen(fds[0], "rb") as stdin, os.fdopen(fds[1], "wb") as out, os.fdopen(fds[2], "wb") as err:
            out.write(stdin.read().upper())
            err.write(b"warning\n")
        if exit_status is not None:
            conn.sendall(muxclient._packet(struct.pack(">III", muxclient.MUX_S_EXIT_MESSAGE, 7, exit_status)))
        conn.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_session_over_a_master(runtime: Path) -> None:
    from funops.transports import muxclient

    path = str(runtime / "m")
    thread = fake_master(path, 3)
    assert muxclient.run(path, "sh -c work", b"hello" * 30000, 10) == (3, b"HELLO" * 30000, b"warning\n")
    thread.join(5)
    os.unlink(path)
    thread = fake_master(path, None)
    with pytest.raises(muxclient.MuxLost, match="without an exit status"):
        muxclient.run(path, "sh -c work", b"", 10)
    thread.join(5)


def test_no_master_is_unavailable_not_an_error(runtime: Path) -> None:
    from funops.transports import muxclient

    with pytest.raises(muxclient.MuxUnavailable):
        muxclient.run(str(runtime / "none"), "true", b"", 5)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(runtime / "stale"))  # bound, never listening: as a dead master's socket
    with pytest.raises(muxclient.MuxUnavailable):
        muxclient.run(str(runtime / "stale"), "true", b"", 5)
    stale.close()
