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


DEFAULT_WORKER_SLOTS = "1,10,11,12"


def worker_slot(worker: str) -> int:
    """The lab slot of pytest-xdist worker `worker` ("gw0", "gw1", ...): the worker's place in
    `$FUNOPS_LAB_SLOTS` (default 1,10,11,12). One slot per worker: two workers on one slot would
    bring up, reset and tear down the same containers under each other's tests."""
    raw = os.environ.get("FUNOPS_LAB_SLOTS", "").strip() or DEFAULT_WORKER_SLOTS
    slots = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [s for s in slots if not s.isdigit() or not 1 <= int(s) <= 255]
    if bad or len(set(slots)) != len(slots):
        raise LabError(f"FUNOPS_LAB_SLOTS must be distinct numbers in 1..255, comma-separated, not {raw!r}")
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else -1
    if not 0 <= index < len(slots):
        raise LabError(
            f"no lab slot for pytest worker {worker}: FUNOPS_LAB_SLOTS={raw!r} has {len(slots)}; "
            "give one slot per worker (-n)"
        )
    return int(slots[index])


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
