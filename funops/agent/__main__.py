"""`python3 funops-agent.pyz serve|pull --config FILE`: how funops-agent.service (the agent) and
funops-pull.service (pull mode's poll) start on a node. The standard library only at import: no typer
here, and the engine's packages (pull mode's runtime, beside the zip) only once a poll needs them."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..node import CONFIG_FILE
from ..node.server import Config, serve


def main(argv: list[str] | None = None) -> int:
    command, config = _arguments(sys.argv[1:] if argv is None else argv)
    if command == "pull":
        return pull(config)
    serve(Config.load(config))
    return 0


def _arguments(argv: list[str]) -> tuple[str, str]:
    """(command, config). The units' own command lines are read without argparse: it and gettext
    would stay in the agent's memory for good (~0.4 MB of its idle RSS) to parse them once."""
    if len(argv) == 3 and argv[0] in ("serve", "pull") and argv[1] == "--config" and argv[2][:1] != "-":
        return argv[0], argv[2]
    import argparse

    parser = argparse.ArgumentParser(prog="funops-agent")
    sub = parser.add_subparsers(dest="command", required=True)
    serving = sub.add_parser("serve", help="serve the agent API on this node")
    serving.add_argument("--config", default="/etc/funops-agent/agent.json")
    pulling = sub.add_parser("pull", help="poll the store once and converge this node (pull mode)")
    pulling.add_argument("--config", default=CONFIG_FILE)
    args = parser.parse_args(argv)
    return args.command, args.config


def pull(config: str) -> int:
    site = runtime_site()
    if site is not None and site not in sys.path:
        sys.path.insert(0, site)
    from ..node.poll import main as poll

    return poll(config, _converge)


def _converge(index: Any, content: bytes, transport: Any) -> dict[str, Any]:
    """The engine, imported only now (pydantic, jinja2: the agent's runtime): a no-op poll never pays it."""
    from ..pull.converge import converge_index

    return converge_index(index, content, transport)


def runtime_site() -> str | None:
    """`site/` beside the zip this runs from (`agent install` links it to the runtime), resolved
    once: an install switching `current` mid-poll does not mix two runtimes. None when not run from
    a zip (a checkout: its environment has the packages) or when there is none."""
    archive = getattr(__loader__, "archive", None)  # a zipimporter's: the zip's path
    if not archive:
        return None
    site = os.path.realpath(os.path.join(os.path.dirname(archive), "site"))
    return site if os.path.isdir(site) else None


if __name__ == "__main__":
    raise SystemExit(main())
