"""Names, addresses and paths shared by the lab's modules."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent

LABEL = "funops.lab"  # every container the lab starts carries LABEL=1
NODE_IMAGE = "funops-lab-node"  # tagged with the content hash of its recipe
REGISTRY = "127.0.0.1:5000"
TESTAPP_REPO = f"{REGISTRY}/funops/testapp"
TESTAPP_VERSIONS = ("v1", "v2", "v3")
MAX_NODES = 254  # node k gets 127.0.1.k


class LabError(RuntimeError):
    """Something in the lab did not come up or could not be done; the message says what."""


def lab_dir() -> Path:
    """The lab's state directory: `$FUNOPS_LAB_DIR`, or `<repo>/.lab`."""
    return Path(os.environ.get("FUNOPS_LAB_DIR") or REPO_ROOT / ".lab").resolve()


def node_name(k: int) -> str:
    return f"node{k}"


def container_name(k: int) -> str:
    return f"funops-lab-node{k}"


def node_address(k: int) -> str:
    return f"127.0.1.{k}"
