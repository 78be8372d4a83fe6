"""A real agent process on a loopback address for unit tests that stop, restart or stream from it
(tests/unit/test_agent.py has its own, shared by its module)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from funops.model.inventory import Node
from funops.settings import Settings
from funops.transports.agent import AgentTransport
from tests.unit.test_agent import TOKEN, _certificate


class AgentProcess:
    """`funops.agent serve` with a fresh certificate and token under `here`; `start` again after
    `stop` serves the same port, certificate and token (as `systemctl restart funops-agent`)."""

    def __init__(self, here: Path, address: str, env: dict[str, str] | None = None, **config: Any) -> None:
        cert, key, fingerprint = _certificate(here)
        (here / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest() + "\n")
        with socket.socket() as s:
            s.bind((address, 0))
            self.port = int(s.getsockname()[1])
        self.address, self.here, self.env = address, here, {**os.environ, **(env or {})}
        settings = {"bind": address, "port": self.port, "cert": str(cert), "key": str(key),
                    "tokenSha256File": str(here / "token.sha256"), "stateDir": str(here / "state"),
                    "requestSeconds": 2, "workers": 4, "readRoots": [str(here.parent.parent)],
                    **config}  # fmt: skip
        (here / "agent.json").write_text(json.dumps(settings))
        self.repo = here / "repo"
        (self.repo / ".funops" / "agent").mkdir(parents=True)
        (self.repo / "agent_known_hosts").write_text(f"{address}:{self.port} sha256:{fingerprint}\n")
        (self.repo / ".funops" / "agent" / "n1.token").write_text(TOKEN + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = here / "agent.log"

    def start(self) -> None:
        serve = [sys.executable, "-m", "funops.agent", "serve", "--config", str(self.here / "agent.json")]
        # Its stderr (the request log) to a file: a pipe nobody reads would block the agent once full.
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(serve, stderr=log, env=self.env)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM, as systemd stops the unit
            self.proc.wait(10)
            self.proc = None

    def transport(self) -> AgentTransport:
        node = Node.model_validate(
            {"name": "n1", "address": self.address, "transport": "agent",
             "agent": {"url": f"https://{self.address}:{self.port}"}}
        )  # fmt: skip
        return AgentTransport(node, Settings(), self.repo)
