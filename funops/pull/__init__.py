"""Pull mode (README.md, "Pull mode"): CI publishes, nodes pull, the CLI reads status. No server of
funops's own.

`funops publish` (publish.py) compiles the repo and writes to a store (store.py) one bundle per node —
that node's desired state and secrets only (bundle.py) — and a signed index per node (index.py):

    nodes/<node>/latest.json                 the signed index: generation, revision, bundle sha256, ...
    nodes/<node>/bundles/<sha256>.cms        the bundle it names, sealed to the node

On the node, `funops-agent pull` (node.py, run by funops-pull.timer) fetches its index with
If-None-Match (a no-op poll is a 304), checks the signature, the generation and the expiry, fetches
the bundle, checks its digest and converges the node with the engine push mode uses (converge.py),
then records the outcome in STATUS_FILE, which the agent's `status` reports.
"""

from __future__ import annotations

CONFIG_FILE = "/etc/funops-agent/pull.json"  # written by `funops agent install` for a node with `pull:`
PUBLIC_KEY_FILE = "/etc/funops-agent/pull-signing.pub"
STATUS_FILE = "pull.json"  # in the state dir (/var/lib/funops): what the last polls found and did
PULL_SERVICE = "funops-pull.service"
PULL_TIMER = "funops-pull.timer"
FLOOR_FILE = "pull/floor.json"  # in the state dir, beside the kept bundles: the replay floor, kept apart
# What a node reads from the store, at most: an index is under 1 KiB, a bundle holds the node's files
# (artifacts uploaded included). Above these the store is refused before the body is held in memory.
MAX_INDEX_BYTES = 1 << 20
MAX_BUNDLE_BYTES = 256 << 20


def index_key(node: str) -> str:
    return f"nodes/{node}/latest.json"


def bundle_key(node: str, sha256: str) -> str:
    return f"nodes/{node}/bundles/{sha256}.cms"
