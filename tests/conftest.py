"""Shared fixtures: a scratch copy of the bundled example repo."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.config import LabError, worker_slot

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ["funops.yaml", "inventory", "manifests", "templates", "certs", "secrets", "artifacts"]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test`, README "Development") each worker drives its own lab slot, set here
    before any test reads it; the lab's modules read the slot at each call, never at import."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    workers = getattr(config.option, "numprocesses", None) or 0
    if workers and not worker and config.option.dist not in ("loadfile", "loadscope"):
        # A lab test file shares its nodes' state through module fixtures, in order: one worker each.
        raise pytest.UsageError(f"run the tests with --dist loadfile, not --dist {config.option.dist}")
    try:
        if worker:
            os.environ["FUNOPS_LAB_SLOT"] = str(worker_slot(worker))
            os.environ.pop("FUNOPS_LAB_DIR", None)  # one dir would be shared by every slot: each its own
        elif workers:
            worker_slot(f"gw{workers - 1}")  # too few slots: said here, not in a crashed worker
    except LabError as e:
        raise pytest.UsageError(str(e)) from None


def copy_example(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in EXAMPLE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copy2(src, dest / part)
    return dest


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the bundled example (not a git repo), safe to edit."""
    return copy_example(tmp_path / "repo")


@contextlib.contextmanager
def recording_server(record: Callable[[str, str, bytes], None]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (its base URL) handing each POST or PUT (method, path, body) to
    `record` and answering 200. Closed on exit: the URL is then dead."""

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            record(self.command, self.path, self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        do_PUT = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook recording each POST body; its URL carries a token (TOKEN123) that must never be
    printed. Closed on exit: the URL is then dead."""
    got: list[bytes] = []
    with recording_server(lambda method, path, body: got.append(body)) as url:
        yield f"{url}/t/TOKEN123", got


@pytest.fixture
def closing_port() -> Iterator[int]:
    """A loopback port whose server closes every connection at once (a host that is no ssh server)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def apply_job_keys(where: Path) -> tuple[Path, str]:
    """The apply job's certificate (the plan job seals to it) and its private key (PEM)."""
    cert, key = where / "apply.crt", where / "apply.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=funops apply job"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key.read_text()
