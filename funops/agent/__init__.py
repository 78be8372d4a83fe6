"""The funops agent: a small HTTPS server on the node that runs typed tasks (DESIGN §3).

The node side (wire.py, server.py, node.py, __main__.py) uses the standard library only; the
controller side is transports/agent.py and install.py. Protocol versions: the agent serves the range
PROTOCOL; a client outside it is refused with a message naming both versions.
"""

from __future__ import annotations

from .. import __version__

AGENT_VERSION = __version__
PROTOCOL = (1, 1)  # the protocol versions this agent (and this CLI) speaks: lowest, highest
DEFAULT_PORT = 7391
