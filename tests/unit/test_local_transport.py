"""The local transport under a root prefix: the node is a directory, never this machine's services."""

from __future__ import annotations

from pathlib import Path

from funops.model.inventory import Node
from funops.transports.local import LocalTransport
from tests.unit import shell_tasks as tasks


def test_a_local_root_node_never_reaches_the_hosts_services(tmp_path: Path) -> None:
    node = Node(name="n1", address="127.0.0.1", transport="local", root=str(tmp_path))
    transport = LocalTransport(node, tmp_path)
    try:
        for script in (
            "systemctl daemon-reload",
            "docker ps",
            "nginx -s reload",
            tasks.nginx_reload().script,
        ):
            done = transport.run(script)
            assert done.exit_code == 1, script
            assert b"a local node under a root prefix" in done.stderr, script
    finally:
        transport.close()
