"""Names, addresses and paths shared by the lab's modules."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent

LABEL = "funops.lab"  # every container the lab starts carries LABEL=<its slot>
NODE_IMAGE = "funops-lab-node"  # tagged with the content hash of its recipe
REGISTRY = "127.0.0.1:5000"
TESTAPP_REPO = f"{REGISTRY}/funops/testapp"
TESTAPP_VERSIONS = ("v1", "v2", "v3")
MAX_NODES = 254  # node k of slot s gets 127.0.s.k


class LabError(RuntimeError):
    """Something in the lab did not come up or could not be done; the message says what."""


def lab_slot() -> int:
    """Which lab instance this process drives: `$FUNOPS_LAB_SLOT` (default 1).

    Container names and loopback addresses are global to the host, so two people (or two test
    sessions) that run labs at once each take their own slot: its own addresses (127.0.<slot>.k),
    container names, label value and lab dir. Slot 1 keeps the historical names.
    """
    raw = os.environ.get("FUNOPS_LAB_SLOT", "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 255:
        raise LabError(f"FUNOPS_LAB_SLOT must be a number in 1..255, not {raw!r}")
    return int(raw)


def label_value() -> str:
    """The value of LABEL on this slot's containers: what `down`/`current`/`status` filter on."""
    return str(lab_slot())


def lab_dir() -> Path:
    """The lab's state directory: `$FUNOPS_LAB_DIR`, else `<repo>/.lab` (slot 1) or `<repo>/.lab<slot>`."""
    slot = lab_slot()
    default = REPO_ROOT / (".lab" if slot == 1 else f".lab{slot}")
    return Path(os.environ.get("FUNOPS_LAB_DIR") or default).resolve()


def node_name(k: int) -> str:
    return f"node{k}"


def container_name(k: int) -> str:
    slot = lab_slot()
    return f"funops-lab-node{k}" if slot == 1 else f"funops-lab{slot}-node{k}"


def node_address(k: int) -> str:
    return f"127.0.{lab_slot()}.{k}"
