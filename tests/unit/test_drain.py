"""Drain before touch (issue 15): what the drain sends, as data (the lab test runs it for real)."""

from __future__ import annotations

from funops.resources import NGINX_RELOAD, Resource
from tests.unit.shell_tasks import swap_tasks as _swap_tasks
from tests.unit.shell_tasks import wait_script as _wait_script


class _Local:
    def path(self, node_path: str) -> str:
        return "/root" + node_path


def _site(content: bytes) -> Resource:
    return Resource(
        id="file:/etc/nginx/conf.d/funops-site.conf",
        kind="file",
        owner="ingress/site",
        order=50,
        handlers=(NGINX_RELOAD,),
        desired={"sha256": "x", "mode": "0644", "owner": "root", "group": "root"},
        content=content,
        routes=("web",),
    )


def test_swap_writes_only_a_served_site_tests_then_reloads() -> None:
    tasks = _swap_tasks([_site(b"upstream x {}\n")], _Local())  # type: ignore[arg-type]
    assert [t.name for t in tasks] == [
        "drain-write file:/etc/nginx/conf.d/funops-site.conf",
        "nginx -t",
        "reload nginx",
    ]
    write, test, _ = tasks
    assert write.stdin == b"upstream x {}\n"
    assert "p=/root/etc/nginx/conf.d/funops-site.conf" in write.script
    assert '[ -f "$p" ] || exit 0' in write.script  # a first deploy writes its site in its batch
    # A failed test puts the old site back (the aside copy does not end in .conf: nginx skips it).
    assert 'mv -f -- "$b" /root/etc/nginx/conf.d/funops-site.conf' in test.script
    assert ".conf.funops-drain" in test.script


def test_wait_polls_established_connections_on_the_ports_up_to_the_timeout() -> None:
    script = _wait_script([8081, 8080, 8081], 2.5)
    assert "'( sport = :8080 or sport = :8081 )'" in script
    assert "+ 3 ))" in script  # whole seconds, rounded up
    assert "sleep 2.5" in script  # no ss on the node: wait the whole timeout


def test_nodes_that_only_remove_instances_come_last() -> None:
    from funops.plan.schedule import make_batches

    assert make_batches(["node3", "node1", "node2"], 1, {"node1"}) == [["node2"], ["node3"], ["node1"]]
    assert make_batches(["node3", "node1", "node2"], 2) == [["node1", "node2"], ["node3"]]
