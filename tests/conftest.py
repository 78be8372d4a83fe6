"""Shared fixtures: a scratch copy of the bundled example repo."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ["funops.yaml", "inventory", "manifests", "templates", "certs", "secrets", "artifacts"]


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
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook on 127.0.0.1 recording each POST body; its URL carries a token (TOKEN123) that
    must never be printed. Closed on exit: the URL is then dead."""
    got: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/t/TOKEN123", got
    finally:
        server.shutdown()
        server.server_close()
