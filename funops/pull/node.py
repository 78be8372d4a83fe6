"""`funops-agent pull` on the node (run by funops-pull.timer): one poll of the store. Standard library
only until there is something to converge; then converge.py (the engine, from the agent's runtime)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import CONFIG_FILE, PUBLIC_KEY_FILE


@dataclass
class PullConfig:
    """/etc/funops-agent/pull.json, as `funops agent install` writes it."""

    node: str
    store: str  # base URL: https://…, http://… or file://…
    public_key: str = PUBLIC_KEY_FILE
    state_dir: str = "/var/lib/funops"
    ca_file: str | None = None
    timeout: float = 30
    root: str | None = None  # tests only: the node is a directory (paths mapped under it)

    @classmethod
    def load(cls, path: str) -> PullConfig:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        return cls(
            node=raw["node"],
            store=raw["store"],
            public_key=raw.get("publicKey", PUBLIC_KEY_FILE),
            state_dir=raw.get("stateDir", "/var/lib/funops"),
            ca_file=raw.get("caFile"),
            timeout=float(raw.get("timeoutSeconds", 30)),
            root=raw.get("root"),
        )


def main(config_path: str = CONFIG_FILE) -> int:
    raise NotImplementedError
