"""`python3 -m funops.agent serve --config FILE`: how funops-agent.service starts the agent on a node
(the standard library only: no typer here)."""

from __future__ import annotations

import argparse

from .server import Config, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="funops-agent")
    sub = parser.add_subparsers(dest="command", required=True)
    serving = sub.add_parser("serve", help="serve the agent API on this node")
    serving.add_argument("--config", default="/etc/funops-agent/agent.json")
    args = parser.parse_args(argv)
    serve(Config.load(args.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
