"""The agent runs file tasks in-process (node/native.py): the same batches, run once by the sh
bundle ssh nodes get and once natively, under two roots, must leave the same trees (paths, types,
modes, owners, contents) and the same exit codes."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from funops.node import native
from funops.node.shell import BUNDLE_RUNNER, bundle, parse_bundle, render
from funops.tasks import model as m
from funops.transports.base import CommandResult

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the tasks chown to root, as on a node")

OLD, NEW = b"old = 1\n", b"new = 2\n"


def _batches(store: str) -> list[list[m.Task]]:
    sha = hashlib.sha256(NEW).hexdigest()
    return [
        [
            m.WriteFile(
                "/etc/app/deep/a.conf", "", "0640", "root", "root", "/state/backup/etc/app/deep/a.conf", OLD
            ),
            m.WriteFile("/etc/app/secret.env", "", "0600", "nobody", "nogroup", None, OLD, private_dirs=True),
            m.WriteFile("/srv/s/b", sha, "0644", "root", "root", None, None, store=f"{store}/{sha}"),
            m.WriteState("/state/state.json", b'{"formatVersion": 1}'),
        ],
        [
            m.WriteFile(
                "/etc/app/deep/a.conf", "", "4755", "0", "0", "/state/backup/etc/app/deep/a.conf", NEW
            ),
            m.RemoveFile("/etc/app/secret.env", "/state/backup/etc/app/secret.env"),
        ],
        [m.RestoreFile("/etc/app/deep/a.conf", "/state/backup/etc/app/deep/a.conf")],
        [
            m.RestoreFile("/etc/app/new", "/state/backup/etc/app/none"),
            m.WriteFile("/srv/s/c", "0" * 64, "0644", "root", "root", None, None, store=f"{store}/missing"),
            m.WriteFile("/srv/s/never", "", "0644", "root", "root", None, b"x"),
        ],
        [m.WriteFile("/srv/s/d", "", "0644", "no-such-user", "root", None, b"x")],
        [
            m.KeepArtifacts(
                "/state/artifacts",
                ((hashlib.sha256(OLD).hexdigest(), "/etc/app/deep/a.conf"), ("1" * 64, "/srv/s/b")),
                frozenset({hashlib.sha256(OLD).hexdigest(), sha}),
            ),
        ],
    ]


def _tree(root: Path) -> dict[str, tuple[str, str, int, int, bytes]]:
    found = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        content = p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        found[str(p.relative_to(root))] = (
            stat.filemode(st.st_mode),
            oct(st.st_mode & 0o7777),
            st.st_uid,
            st.st_gid,
            content,
        )
    return found


def _via_sh(tasks: list[m.Task], root: Path) -> list[tuple[int, int]]:
    steps = bundle([render(t, lambda p: f"{root}{p}") for t in tasks])
    done = subprocess.run(["sh", "-c", BUNDLE_RUNNER], input=steps.encode(), capture_output=True, check=False)
    return [(r.index, r.exit_code) for r in parse_bundle(done.stdout.decode())]


def _natively(tasks: list[m.Task], root: Path) -> list[tuple[int, int]]:
    def run_sh(script: str, stdin: bytes | None, timeout: float | None) -> CommandResult:
        done = subprocess.run(
            ["sh", "-c", script], input=stdin, capture_output=True, timeout=timeout, check=False
        )
        return CommandResult(done.returncode, done.stdout, done.stderr)

    return [(r.index, r.exit_code) for r in native.run_tasks(tasks, lambda p: f"{root}{p}", run_sh, 30)]


def test_file_tasks_run_natively_leave_what_their_sh_leaves(tmp_path: Path) -> None:
    by_sh, natively = tmp_path / "sh", tmp_path / "native"
    for root in (by_sh, natively):
        (root / "store").mkdir(parents=True)
        (root / "store" / hashlib.sha256(NEW).hexdigest()).write_bytes(NEW)
    for root in (by_sh, natively):  # the store: a stale entry, a copy cut short, a damaged one go
        (root / "state" / "artifacts").mkdir(parents=True, mode=0o755)
        (root / "state" / "artifacts" / ("2" * 64)).write_bytes(b"stale")
        (root / "state" / "artifacts" / f".{'3' * 64}").write_bytes(b"cut short")
        (root / "state" / "artifacts" / hashlib.sha256(OLD).hexdigest()).write_bytes(OLD[:3])  # damaged
    for batch in _batches("/store"):
        assert _natively(batch, natively) == _via_sh(batch, by_sh), batch
        assert _tree(natively) == _tree(by_sh), batch
    for root in (by_sh, natively):
        kept = {f.name: f.read_bytes() for f in (root / "state" / "artifacts").iterdir()}
        assert kept == {hashlib.sha256(OLD).hexdigest(): OLD}  # repaired; "1"*64 had no live copy
    codes = _natively(_batches("/store")[3], natively)
    assert codes == [(0, 0), (1, 1)]  # the missing kept content fails its step, the rest do not run


def test_tasks_without_a_native_form_run_as_their_sh(tmp_path: Path) -> None:
    assert native.run(m.DaemonReload(), str) is None
    calls: list[str] = []

    def run_sh(script: str, stdin: bytes | None, timeout: float | None) -> CommandResult:
        calls.append(script)
        return CommandResult(3, b"out\n", b"err\n")

    (step,) = native.run_tasks([m.DaemonReload(), m.DaemonReload()], str, run_sh, None)
    assert calls == ["umask 077\nsystemctl daemon-reload"] and (step.exit_code, step.output) == (
        3,
        "out\nerr",
    )


def _http_server() -> tuple[int, int]:
    """A server answering /health 200, /third/ANY 500 twice then 200 (an app coming up), anything
    else 500; (its port, a closed port)."""
    import http.server
    import socket
    import threading

    asked: dict[str, int] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked[self.path] = asked.get(self.path, 0) + 1
            up = self.path == "/health" or (self.path.startswith("/third/") and asked[self.path] > 2)
            self.send_response(200 if up else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    return server.server_address[1], closed


def test_health_checks_run_natively_end_as_their_sh_ends() -> None:
    port, closed = _http_server()

    def probe(kind: str, target: str = "/health", at: int = port, status: int = 200) -> m.HealthProbe:
        return m.HealthProbe(kind, target, at, status, 0.05, 1.0, 3)

    cases = [
        m.CheckHealth("web", probe("http"), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("http"), "0.0.0.0", None, None, None, 0.1),
        m.CheckHealth("web", probe("http"), "localhost", None, None, None, 0),  # a name: resolved
        m.CheckHealth("web", probe("http", "/bad"), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("http", "/bad", status=500), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("http", at=closed), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("tcp"), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("tcp", at=closed), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("process"), "127.0.0.1", None, None, None, 0),
        m.CheckHealth("web", probe("process"), "127.0.0.1", None, "funops-no-such.service", None, 0),
    ]
    for task in cases:
        step = render(task, str)
        done = subprocess.run(["sh", "-c", step.script], capture_output=True, text=True, check=False)
        assert native.run(task, str) == (done.returncode, done.stdout.strip()), task
    container = m.CheckHealth("api", probe("http"), "127.0.0.1", None, None, "api", 0)
    assert native.run(container, str) is None  # a container's liveness is docker's: its sh


def test_a_failing_check_waits_its_retries_intervals_polling_sooner_at_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(retries - 1) intervals in all, the first pauses shorter (FIRST_PAUSE, doubling) so an app up
    just after its start passes then."""
    _, closed = _http_server()
    pauses: list[float] = []
    monkeypatch.setattr(native.time, "sleep", pauses.append)
    probe = m.HealthProbe("tcp", "/health", closed, 200, 0.2, 1.0, 4)
    done = native.run(m.CheckHealth("web", probe, "127.0.0.1", None, None, None, 0), str)
    assert done == (1, "unhealthy after 4 tries")
    assert pauses[:4] == [0.02, 0.04, 0.08, 0.16] and max(pauses) == 0.2
    assert sum(pauses) == pytest.approx(3 * 0.2)
    pauses.clear()
    one = m.HealthProbe("tcp", "/health", closed, 200, 0.2, 1.0, 1)
    assert native.run(m.CheckHealth("web", one, "127.0.0.1", None, None, None, 0), str)[0] == 1
    assert pauses == []  # a single try: no pause, as the sh's


def test_the_sh_check_pauses_as_the_native_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over ssh the health check is sh: the same pauses (a `sleep` on PATH notes them), the same end."""
    port, closed = _http_server()
    (tmp_path / "sleep").write_text('#!/bin/sh\necho "$1" >> "$PAUSES"\n')
    (tmp_path / "sleep").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PAUSES": str(tmp_path / "pauses")}
    native_pauses: list[float] = []
    monkeypatch.setattr(native.time, "sleep", native_pauses.append)
    for interval, retries in [(0.2, 4), (1.0, 3), (0.05, 10), (0.2, 1)]:
        (tmp_path / "pauses").write_text("")
        native_pauses.clear()
        probe = m.HealthProbe("tcp", "/", closed, 200, interval, 1.0, retries)
        task = m.CheckHealth("web", probe, "127.0.0.1", None, None, None, 0)
        done = subprocess.run(["sh", "-c", render(task, str).script], capture_output=True, text=True, env=env)
        ended = (1, f"unhealthy after {retries} tries")
        assert (done.returncode, done.stdout.strip()) == native.run(task, str) == ended
        sh_pauses = [float(x) for x in (tmp_path / "pauses").read_text().split()]
        assert sh_pauses == pytest.approx(native_pauses), (interval, retries)
        assert sum(sh_pauses) == pytest.approx((retries - 1) * interval)
    # An app that answers on the third try: healthy (exit 0) after two short pauses, either way.
    (tmp_path / "pauses").write_text("")
    native_pauses.clear()
    for runner in ("sh", "native"):
        probe = m.HealthProbe("http", f"/third/{runner}", port, 200, 1.0, 1.0, 3)
        task = m.CheckHealth("web", probe, "127.0.0.1", None, None, None, 0)
        if runner == "sh":
            script = render(task, str).script
            done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env)
            assert (done.returncode, done.stdout) == (0, "")
        else:
            assert native.run(task, str) == (0, "")
    assert [float(x) for x in (tmp_path / "pauses").read_text().split()] == native_pauses == [0.02, 0.04]
    # A container's liveness is a docker CLI run per try: its pauses stay whole intervals.
    in_container = m.CheckHealth("api", m.HealthProbe("tcp", "/", closed, 200, 0.2, 1.0, 4), "127.0.0.1",
                                 None, None, "api", 0)  # fmt: skip
    assert "w=0; p=200\n" in render(in_container, str).script


def test_a_check_dials_an_ip_address_without_resolving_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo sets glibc's resolver up in the agent for good (~0.25 MB): an address is dialled
    as it is; a name is still resolved."""
    port, _ = _http_server()
    asked: list[object] = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: asked.append(a[0]) or real(*a, **k))
    assert native.http_status("127.0.0.1", port, "/health", 1.0) == 200
    assert native.tcp_open("127.0.0.1", port, 1.0)
    assert asked == []
    assert native.http_status("localhost", port, "/health", 1.0) == 200
    assert asked == ["localhost"]


def test_no_digest_of_content_reaches_a_command_line(tmp_path: Path) -> None:
    """`ps` shows every process's arguments to every user on the node: the store names its entries
    by the content's sha256, a secret file's too, so no command the sh runs may be given one."""
    shims, log = tmp_path / "shims", tmp_path / "argv.log"
    shims.mkdir()
    for real in Path("/usr/bin").iterdir():
        if real.name.isidentifier() or real.name in ("[", "sha256sum"):
            (shims / real.name).write_text(f'#!/bin/sh\necho "$0 $*" >> {log}\nexec {real} "$@"\n')
            (shims / real.name).chmod(0o755)
    root, secret, stale = tmp_path / "node", b"API_TOKEN=k3y7Qz\n", b"API_TOKEN=p4Ss9W\n"
    digest, old = hashlib.sha256(secret).hexdigest(), hashlib.sha256(stale).hexdigest()
    (root / "state" / "artifacts").mkdir(parents=True)
    (root / "state" / "artifacts" / old).write_bytes(stale)
    tasks: list[m.Task] = [
        m.WriteFile("/etc/app/api.env", digest, "0600", "root", "root", "/state/b/api.env", secret),
        m.WriteFile(
            "/etc/app/old.env", old, "0600", "root", "root", None, None, store=f"/state/artifacts/{old}"
        ),
        m.KeepArtifacts("/state/artifacts", ((digest, "/etc/app/api.env"),), frozenset({digest})),
    ]
    steps = bundle([render(t, lambda p: f"{root}{p}") for t in tasks])
    env = {"PATH": str(shims), "LC_ALL": "C"}
    done = subprocess.run(["sh", "-c", BUNDLE_RUNNER], input=steps.encode(), env=env, capture_output=True)
    codes = [(r.index, r.exit_code) for r in parse_bundle(done.stdout.decode())]
    assert codes == [(0, 0), (1, 0), (2, 0)], done.stdout
    assert sorted(p.name for p in (root / "state" / "artifacts").iterdir()) == [digest]
    argv = log.read_text()
    assert "cat" in argv and "rm" in argv and "mv" in argv  # the shims did see the commands
    assert digest[:8] not in argv and old[:8] not in argv, argv


# ---- links an app's user can plant (issue 28) ----------------------------------------------------

APP_UID = 65534  # nobody: the app's user, owner of its directory (`directories:` default to it)


def _hostile_tree(root: Path) -> None:
    """/srv/app owned by the app's user, holding links that user made into /victim (root's: a
    stand-in for /etc/cron.d); /etc2 a root link in a root-only directory (as /var/run -> /run)."""
    (root / "victim").mkdir(parents=True)
    (root / "victim" / "cron").write_bytes(b"root's own\n")
    (root / "real").mkdir()
    (root / "srv" / "app").mkdir(parents=True)
    os.chown(root / "srv" / "app", APP_UID, APP_UID)
    (root / "state" / "b").mkdir(parents=True)
    (root / "state" / "b" / "app.conf").write_bytes(OLD)
    for name, target, uid in (
        ("srv/app/app.conf", "victim/cron", APP_UID),  # the file itself
        ("srv/app/conf", "victim", APP_UID),  # a directory on the way
        ("srv/app/rootlink", "victim", 0),  # root's link, but where the app's user can swap it
        ("etc2", "real", 0),  # followed
    ):
        (root / name).symlink_to(root / target)
        os.lchown(root / name, uid, uid)
    (root / "sys").mkdir(mode=0o755)
    (root / "sys" / "etc3").symlink_to("../real")  # relative, as /lib -> usr/lib: followed too


def _planted_cases() -> list[tuple[m.Task, int]]:
    """Each task and its exit code on both paths."""
    return [
        (m.WriteFile("/srv/app/app.conf", "", "0644", "nobody", "nogroup", "/state/b/app.conf", NEW), 1),
        (m.WriteFile("/srv/app/conf/x.conf", "", "0644", "nobody", "nogroup", None, NEW), 1),
        (m.WriteFile("/srv/app/conf/new/x.conf", "", "0644", "nobody", "nogroup", None, NEW), 1),
        (m.WriteFile("/srv/app/rootlink/x.conf", "", "0644", "nobody", "nogroup", None, NEW), 1),
        (m.RestoreFile("/srv/app/app.conf", "/state/b/app.conf"), 1),
        (m.RestoreFile("/srv/app/app.conf", "/state/b/none"), 1),
        (m.RestoreFile("/srv/app/conf/cron", "/state/b/app.conf"), 1),
        (m.RemoveFile("/srv/app/app.conf", "/state/b/removed"), 1),
        (m.RemoveFile("/srv/app/conf/cron", "/state/b/removed"), 1),
        (m.WriteFile("/etc2/y.conf", "", "0640", "nobody", "nogroup", None, NEW), 0),
        (m.WriteFile("/sys/etc3/z.conf", "", "0640", "nobody", "nogroup", None, NEW), 0),
        (m.WriteFile("/srv/app/ok.conf", "", "0640", "nobody", "nogroup", None, NEW), 0),
        (m.RestoreFile("/srv/app/ok.conf", "/state/b/app.conf"), 0),
    ]


def test_links_an_apps_user_plants_are_refused_alike_by_both_paths(tmp_path: Path) -> None:
    by_sh, natively = tmp_path / "sh", tmp_path / "native"
    for root in (by_sh, natively):
        _hostile_tree(root)
    victim = _tree(by_sh / "victim")
    for task, code in _planted_cases():
        assert _natively([task], natively) == _via_sh([task], by_sh) == [(0, code)], task
        assert _tree(natively) == _tree(by_sh), task
        for root in (by_sh, natively):
            assert _tree(root / "victim") == victim, (task, root)
            assert not (root / "state" / "b" / "removed").exists(), task  # nothing read through a link
    for root in (by_sh, natively):
        assert (root / "real" / "y.conf").read_bytes() == NEW  # root's link in a root-only dir: followed
        assert (root / "real" / "z.conf").read_bytes() == NEW
        assert (root / "srv" / "app" / "ok.conf").read_bytes() == OLD  # written, then restored
        assert (root / "srv" / "app" / "app.conf").is_symlink()  # refused, not replaced either
        assert [p.name for p in (root / "srv" / "app").iterdir() if p.name.startswith(".funops")] == []


def _outputs(task: m.Task, root: Path) -> tuple[str, str]:
    """What the sh and the native form say (run on two copies of the tree)."""
    step = render(task, lambda p: f"{root}/sh{p}")
    done = subprocess.run(["sh", "-c", step.script], input=step.stdin, capture_output=True, check=False)
    code, said = native.run(task, lambda p: f"{root}/native{p}") or (0, "")
    assert code == done.returncode == 1, task
    return (done.stdout + done.stderr).decode().replace(f"{root}/sh", ""), said.replace(f"{root}/native", "")


def test_a_refusal_names_the_path_and_the_link(tmp_path: Path) -> None:
    for root in (tmp_path / "sh", tmp_path / "native"):
        _hostile_tree(root)
    write = m.WriteFile("/srv/app/app.conf", "", "0644", "nobody", "nogroup", None, NEW)
    for said in _outputs(write, tmp_path):
        assert said.startswith("refusing /srv/app/app.conf: it is a symbolic link"), said
    below = m.WriteFile("/srv/app/conf/x.conf", "", "0644", "nobody", "nogroup", None, NEW)
    for said in _outputs(below, tmp_path):
        assert said.startswith("refusing /srv/app/conf/x.conf: /srv/app/conf is a symbolic link"), said
        assert "other than root" in said


def test_a_directory_funops_ensures_is_not_reached_through_a_planted_link(tmp_path: Path) -> None:
    """EnsureDirectory (sh on every transport): chown and chmod set on the directory reached."""
    _hostile_tree(tmp_path)
    os.chown(tmp_path / "victim", 0, 0)
    for d in ("/srv/app/conf", "/srv/app/conf/sub", "/srv/app/rootlink"):
        step = render(m.EnsureDirectory(d, "0777", "nobody", "nogroup"), lambda p: f"{tmp_path}{p}")
        done = subprocess.run(["sh", "-c", step.script], capture_output=True, text=True, check=False)
        assert done.returncode == 1 and f"refusing {tmp_path}{d}" in done.stdout, done
    st = (tmp_path / "victim").stat()
    assert (st.st_uid, oct(st.st_mode & 0o7777)) == (0, "0o755")
    assert not (tmp_path / "victim" / "sub").exists()
    step = render(m.EnsureDirectory("/etc2/data", "0750", "nobody", "nogroup"), lambda p: f"{tmp_path}{p}")
    assert subprocess.run(["sh", "-c", step.script], check=False).returncode == 0
    st = (tmp_path / "real" / "data").stat()
    assert (st.st_uid, oct(st.st_mode & 0o7777)) == (APP_UID, "0o750")


def test_a_directory_swapped_for_a_link_after_its_check_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's check (lstat) and its open are two calls: a link swapped in between is caught by
    the open itself (O_NOFOLLOW), not written through."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "srv" / "conf").mkdir(parents=True)
    real = os.stat  # the app's user is quicker, once

    def racing(name: object, *args: object, **kwargs: object) -> os.stat_result:
        st = real(name, *args, **kwargs)  # type: ignore[arg-type]
        if name == "conf" and kwargs.get("dir_fd") is not None and not (tmp_path / "srv" / "away").exists():
            os.rename(tmp_path / "srv" / "conf", tmp_path / "srv" / "away")
            (tmp_path / "srv" / "conf").symlink_to(tmp_path / "victim")
        return st

    monkeypatch.setattr(os, "stat", racing)
    task = m.WriteFile("/srv/conf/x.conf", "", "0644", "nobody", "nogroup", None, NEW)
    code, said = native.run(task, lambda p: f"{tmp_path}{p}") or (0, "")
    monkeypatch.undo()
    assert code == 1 and said.startswith(f"refusing {tmp_path}/srv/conf/x.conf: "), said
    assert list((tmp_path / "victim").iterdir()) == []
