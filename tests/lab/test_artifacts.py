"""Issue 15 item 4: artifacts for systemd apps, on real nodes. One repo (the example's inventory, one
artifact app of its own on node2), tests in order: v1 uploaded from the repo, v2 fetched by the node
over HTTP (a server of the test's on the lab's loopback), a corrupt v3 that fails the node with v2
still serving, and a rollback to v1 that switches the link back without fetching anything.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab import Lab
from lab.config import node_address

from .fleet import apply, funops, http, make_repo

APP_DIR = "/opt/funops/apps/site"
PORT = 8090
SITE = """\
apiVersion: funops/v1
kind: Application
metadata:
  name: site
spec:
  type: systemd
  selector: {nodes: [node2]}
  command: >-
    /usr/bin/python3 -m http.server --bind {{ node.bind }}
    --directory {{ release.dir }}/www {{ app.port }}
  port: 8090
  configFiles:
    - path: /etc/funops/site/where
      content: "{{ release.dir }}\\n"
  healthCheck: {type: http, path: /health, interval: 0.5, retries: 20}
"""
RELEASE = """\
---
apiVersion: funops/v1
kind: Release
metadata:
  name: site
spec:
  app: site
  version: "{version}"
  artifact: {artifact}
"""
RESET = "systemctl disable --now site.service 2>/dev/null; rm -f /etc/systemd/system/site.service; " + (
    f"systemctl daemon-reload; rm -rf {APP_DIR} /etc/funops /var/lib/funops"
)


def tarball(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("www/index.html", f"site {version}\n"), ("www/health", "ok\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Served:
    """What the test's HTTP server serves, and which paths nodes asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Served, str]]:
    state = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            data = state.files.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((node_address(250), 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://{node_address(250)}:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for node in lab.nodes:
        lab.exec(node, RESET)
    path = make_repo(lab, tmp_path_factory.mktemp("artifacts") / "repo")
    shutil.rmtree(path / "manifests")
    (path / "manifests").mkdir()
    www = path / "artifacts" / "site-1" / "www"
    www.mkdir(parents=True)
    (www / "index.html").write_text("site 1\n")
    (www / "health").write_text("ok\n")
    (path / ".gitignore").write_text(".funops/\n")
    subprocess.run(["git", "-C", str(path), "init", "-q"], check=True)
    yield path
    for node in lab.nodes:
        lab.exec(node, RESET)


def set_release(repo: Path, version: str, artifact: str) -> None:
    text = SITE + RELEASE.format(version=version, artifact=artifact)
    (repo / "manifests" / "site.yaml").write_text(text)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", f"site {version}"], check=True, env=env)


def page(lab: Lab) -> str:
    return http(f"http://{lab.nodes[1].address}:{PORT}/")[1]


def sh(lab: Lab, script: str) -> str:
    return lab.exec(lab.nodes[1], script).stdout.strip()


def test_v1_uploaded_from_the_repo_serves_and_a_reapply_changes_nothing(lab: Lab, repo: Path) -> None:
    set_release(repo, "1", "{path: artifacts/site-1}")
    plan = funops(repo, "plan")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"artifact:{APP_DIR}/current" in plan.stdout
    code, events, err = apply(repo)
    assert code == 0, err + str(events)
    assert page(lab) == "site 1\n"
    assert sh(lab, f"readlink {APP_DIR}/current") == "releases/1"
    assert sh(lab, "cat /etc/funops/site/where") == f"{APP_DIR}/releases/1"
    assert f"--directory {APP_DIR}/releases/1/www" in sh(lab, "cat /etc/systemd/system/site.service")

    started = sh(lab, "systemctl show -p ActiveEnterTimestamp site.service")
    again = funops(repo, "plan")
    assert again.returncode == 0, again.stdout + again.stderr  # nothing pending
    code, events, err = apply(repo)
    assert code == 0, err
    assert not [e for e in events if e.get("event") == "task"], events  # no task ran
    assert sh(lab, "systemctl show -p ActiveEnterTimestamp site.service") == started  # not restarted


def test_v2_fetched_by_the_node_over_http(lab: Lab, repo: Path, served: tuple[Served, str]) -> None:
    state, base = served
    data = tarball("2")
    state.files["/site-2.tar.gz"] = data
    set_release(repo, "2", f"{{url: '{base}/site-2.tar.gz', sha256: {hashlib.sha256(data).hexdigest()}}}")
    code, events, err = apply(repo)
    assert code == 0, err + str(events)
    assert state.requests == ["/site-2.tar.gz"]
    assert page(lab) == "site 2\n"
    assert sh(lab, f"readlink {APP_DIR}/current") == "releases/2"
    assert sh(lab, f"ls {APP_DIR}/releases") == "1\n2"


def test_a_corrupt_download_fails_the_node_and_the_old_release_keeps_serving(
    lab: Lab, repo: Path, served: tuple[Served, str]
) -> None:
    state, base = served
    state.files["/site-3.tar.gz"] = tarball("3")
    wrong = hashlib.sha256(b"not what is served").hexdigest()
    set_release(repo, "3", f"{{url: '{base}/site-3.tar.gz', sha256: {wrong}}}")
    code, events, err = apply(repo)
    assert code == 3, err + str(events)
    failed = [e for e in events if e.get("event") == "task" and not e["ok"]]
    assert failed and "sha256 mismatch" in failed[0]["output"], events
    assert page(lab) == "site 2\n"
    assert sh(lab, f"readlink {APP_DIR}/current") == "releases/2"
    assert sh(lab, f"ls -A {APP_DIR}/releases") == "1\n2"  # no release 3, no temp dir left
    assert f"{APP_DIR}/releases/2/www" in sh(lab, "cat /etc/systemd/system/site.service")


def test_rollback_switches_the_link_back_without_a_download(
    lab: Lab, repo: Path, served: tuple[Served, str]
) -> None:
    state, _ = served
    state.requests.clear()
    inode = sh(lab, f"stat -c %i {APP_DIR}/releases/1/www/index.html")
    done = funops(repo, "rollback", "site", "--to", "site-1", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert page(lab) == "site 1\n"
    assert sh(lab, f"readlink {APP_DIR}/current") == "releases/1"
    assert sh(lab, f"stat -c %i {APP_DIR}/releases/1/www/index.html") == inode  # the same dir, kept
    assert state.requests == []  # nothing fetched
