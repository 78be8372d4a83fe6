"""The gather probe: the script is data; the parser works on captured output, no host needed."""

from __future__ import annotations

from funops.gather.probe import build_script, parse

CAPTURED = """\
@@funops stat
644|root|root|regular file|/r/etc/nginx/conf.d/funops-site.conf
600|root|root|regular file|/r/etc/funops/apps/api.env
@@funops sha256
aaaa  /r/etc/nginx/conf.d/funops-site.conf
bbbb  /r/etc/funops/apps/api.env
@@funops units
ActiveEnterTimestamp=Mon 2026-11-23 10:00:00 UTC
NRestarts=0
Id=web.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled

ActiveEnterTimestamp=
NRestarts=0
Id=gone.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
@@funops containers
{"name":"/api","image":"127.0.0.1:5000/funops/testapp:v1","status":"running","startedAt":"2026-11-23T10:00:00Z","restarts":0,"labels":{"funops.spec-hash":"abc"}}
@@funops df
/dev/vda 1000 900 100 90% /
@@funops nginx
nginx version: nginx/1.22.1
@@funops dockerps
3
@@funops state
{"formatVersion": 1,
 "managed": {"file:/etc/old.conf": {"owner": "app/old", "kind": "file"}}, "owed": ["reload:nginx"]}
@@funops end
"""


def prefixed(path: str) -> str:
    return "/r" + path


def test_script_quotes_paths_and_probes_each_kind_once() -> None:
    script = build_script(
        ["file:/srv/a b.conf", "unit:web.service", "container:api", "file:/etc/x"],
        "/var/lib/funops/state.json",
        prefixed,
    )
    assert "'/r/srv/a b.conf'" in script
    assert script.count("sha256sum") == 1 and script.count("systemctl show") == 1
    assert script.count("docker inspect") == 1
    assert "cat -- /r/var/lib/funops/state.json" in script


def test_script_without_units_or_containers_does_not_ask_for_them() -> None:
    script = build_script(["file:/etc/x"], "/s.json", lambda p: p)
    assert "systemctl" not in script and "docker inspect" not in script


def test_parse_captured_output() -> None:
    facts = parse(CAPTURED, prefixed)
    assert facts.files["/etc/nginx/conf.d/funops-site.conf"] == {
        "mode": "0644",
        "owner": "root",
        "group": "root",
        "type": "file",
        "sha256": "aaaa",
    }
    assert facts.units["web.service"]["ActiveState"] == "active"
    assert facts.units["gone.service"]["LoadState"] == "not-found"
    assert facts.containers["api"]["labels"]["funops.spec-hash"] == "abc"
    assert facts.disk_free_pct == 10.0
    assert facts.nginx == "1.22.1"
    assert facts.container_count == 3
    assert facts.state is not None and facts.state["owed"] == ["reload:nginx"]


def test_parse_without_systemd_or_docker() -> None:
    facts = parse("@@funops units\nnosystemd\n@@funops containers\nnodocker\n@@funops end\n", lambda p: p)
    assert facts.systemd is False and facts.docker is False


def test_a_truncated_probe_is_an_error_not_an_empty_node() -> None:
    try:
        parse("@@funops stat\n", lambda p: p)
    except ValueError as exc:
        assert "did not finish" in str(exc)
    else:
        raise AssertionError("a probe cut short must not look like a node with nothing on it")
