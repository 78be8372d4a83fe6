"""`python -m lab build-image | up --nodes N | down | status | testapp | ssh NODE [CMD...]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict

from . import build_image, current, down, ensure_testapp, status, up
from .config import LabError
from .testapp import testapp_refs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab", description="The funops lab: real nodes for tests."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-image", help="build the node image (skipped when the recipe is unchanged)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    start = sub.add_parser("up", help="bring the lab to exactly N running nodes")
    start.add_argument("--nodes", "-n", type=int, default=3)
    sub.add_parser("down", help="remove the lab's containers and generated files")
    st = sub.add_parser("status", help="show the lab's nodes")
    st.add_argument("--json", action="store_true")
    sub.add_parser("testapp", help="build and push the test app images to the local registry")
    ssh = sub.add_parser("ssh", help="ssh into a node with the lab's key and known_hosts")
    ssh.add_argument("node")
    ssh.add_argument("--user", "-u", default="root")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "build-image":
        print(build_image(force=args.force))
    elif args.command == "up":
        started = time.monotonic()
        lab = up(args.nodes)
        took = time.monotonic() - started
        print(f"lab: {len(lab.nodes)} nodes running ({took:.1f}s); inventory: {lab.inventory_path}")
    elif args.command == "down":
        down()
        print("lab: down")
    elif args.command == "status":
        rows = status()
        if args.json:
            print(json.dumps([asdict(r) for r in rows], indent=2))
        elif not rows:
            print("lab: no nodes")
        else:
            print(f"{'NODE':8} {'ADDRESS':11} {'CONTAINER':20} {'STATE':8} {'SYSTEM':10} {'SSH':4} IMAGE")
            for r in rows:
                ssh = "yes" if r.ssh else "no"
                print(
                    f"{r.name:8} {r.address:11} {r.container:20} {r.state:8} {r.system:10} {ssh:4} {r.image}"
                )
    elif args.command == "testapp":
        rebuilt = ensure_testapp()
        print("\n".join(f"{ref}{' (rebuilt)' if ref in rebuilt else ''}" for ref in testapp_refs()))
    elif args.command == "ssh":
        lab = current()
        argv = lab.ssh_argv(args.node, args.user)
        if sys.stdin.isatty():
            argv.insert(1, "-t")
        os.execvp(argv[0], [*argv, *args.cmd])
    return 0


if __name__ == "__main__":
    sys.exit(main())
