"""The funops agent: a small HTTPS server on the node that runs typed tasks (README.md, "The agent").

What runs on the node (server, wire format, scopes: funops/node/) uses the standard library only;
this package is the controller's side (install, tokens, CA, pull mode's setup) and `__main__.py`, the
entry point of the zipapp the node runs. The client is transports/agent.py.
"""

from __future__ import annotations

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
