"""Library logging: silent unless asked for. paramiko logs a failed handshake (a host that closes the
connection) as a 40-line traceback through Python's last-resort handler, before funops's own one-line
error per node; `--debug` or FUNOPS_LOG=debug shows it, and every library's debug log, again."""

from __future__ import annotations

import logging
import os

# Libraries whose log records funops reports itself (as a node's error), so they print nothing by default.
QUIET = ("paramiko",)


def configure_logging() -> None:
    if os.environ.get("FUNOPS_LOG", "").lower() == "debug":
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        return
    for name in QUIET:
        # A handler that drops the records keeps them from Python's last-resort stderr handler.
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
