"""Pull mode (README.md, "Pull mode"): CI publishes, nodes pull, the CLI reads status. No server of
funops's own.

`funops publish` (publish.py) compiles the repo and writes to a store (store.py) one bundle per node —
that node's desired state and secrets only (bundle.py) — and a signed index per node (node/index.py):

    nodes/<node>/latest.json                 the signed index: generation, revision, bundle sha256, ...
    nodes/<node>/bundles/<sha256>.cms        the bundle it names, sealed to the node

On the node, `funops-agent pull` (node/poll.py, run by funops-pull.timer) fetches its index with
If-None-Match (a no-op poll is a 304), checks the signature, the generation and the expiry, fetches
the bundle, checks its digest and converges the node with the engine push mode uses (converge.py),
then records the outcome in STATUS_FILE, which the agent's `status` reports.
"""

from __future__ import annotations

PULL_SERVICE = "funops-pull.service"
PULL_TIMER = "funops-pull.timer"
