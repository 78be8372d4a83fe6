"""What runs on a node (docs/architecture.md, "The node side"): the agent's server, wire format,
scopes and host functions, the sh renderer and the native task runner, the probe as the node builds
and reads it, and pull mode's poll. The standard library only and Python 3.9's grammar, for every
module of this package (tests/unit/test_node_side_stdlib.py).

Protocol versions: the agent serves the range PROTOCOL; a client outside it is refused with a message
naming both versions. This CLI sends the highest: an agent that does not speak it (an older one) is
refused before any request runs, with `funops agent upgrade` as the way out.
"""

from __future__ import annotations

from .. import __version__

AGENT_VERSION = __version__
PROTOCOL = (1, 2)  # the protocol versions this agent speaks: lowest, highest (this CLI sends the highest)
# 2: a batch's results come typed (node/wire.py's results document); a client of 1 still gets them as
# the sh bundle's marker text (node/shell.py's bundle_text), as an older funops parses it.
TYPED_RESULTS = 2
DEFAULT_PORT = 7391

# Pull mode (funops/pull/__init__.py): the node's files and the store's layout, shared by the node's
# poll (poll.py), the agent's status, `agent install` and `funops publish`.
CONFIG_FILE = "/etc/funops-agent/pull.json"  # written by `funops agent install` for a node with `pull:`
PUBLIC_KEY_FILE = "/etc/funops-agent/pull-signing.pub"
STATUS_FILE = "pull.json"  # in the state dir (/var/lib/funops): what the last polls found and did
FLOOR_FILE = "pull/floor.json"  # in the state dir, beside the kept bundles: the replay floor, kept apart
# What a node reads from the store, at most: an index is under 1 KiB, a bundle holds the node's files
# (artifacts uploaded included). Above these the store is refused before the body is held in memory.
MAX_INDEX_BYTES = 1 << 20
MAX_BUNDLE_BYTES = 256 << 20


def index_key(node: str) -> str:
    return f"nodes/{node}/latest.json"


def bundle_key(node: str, sha256: str) -> str:
    return f"nodes/{node}/bundles/{sha256}.cms"
