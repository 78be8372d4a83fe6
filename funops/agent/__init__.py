"""The funops agent: a small HTTPS server on the node that runs typed tasks (README.md, "The agent").

The node side (wire.py, server.py, node.py, __main__.py) uses the standard library only; the
controller side is transports/agent.py and install.py. Protocol versions: the agent serves the range
PROTOCOL; a client outside it is refused with a message naming both versions.
"""

from __future__ import annotations

from .. import __version__

AGENT_VERSION = __version__
PROTOCOL = (1, 1)  # the protocol versions this agent (and this CLI) speaks: lowest, highest
DEFAULT_PORT = 7391
HOME = "/opt/funops-agent"  # <version>/funops-agent.pyz and the `current` link
# The systemd sandbox of the agent's units (the agent, the pull service): root, because they manage
# units, containers and files anywhere funops may write, without what they never need.
SANDBOX = """NoNewPrivileges=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectClock=yes
ProtectHostname=yes
RestrictRealtime=yes
LockPersonality=yes
TasksMax=512
"""
