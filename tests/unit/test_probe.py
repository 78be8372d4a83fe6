"""The gather probe: the script is data; the parser works on captured output, no host needed."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from funops.gather.probe import parse, parse_state
from funops.node.probe import build_script

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
present
eyJmb3JtYXRWZXJzaW9uIjogMSwKICJtYW5hZ2VkIjogeyJmaWxlOi9ldGMvb2xkLmNvbmYiOiB7Im93
bmVyIjogImFwcC9vbGQiLCAia2luZCI6ICJmaWxlIn19LCAib3dlZCI6IFsicmVsb2FkOm5naW54Il19
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
    assert "base64 < /r/var/lib/funops/state.json" in script


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


def _state_section(content: bytes) -> list[str]:
    encoded = base64.encodebytes(content).decode()  # wrapped at 76 like coreutils' base64
    return ["present", *encoded.splitlines()]


def test_state_is_parsed_whatever_its_last_byte() -> None:
    for body in (
        b'{"owed": ["reload:nginx"]}',
        b'{"owed": ["reload:nginx"]}\n',
        b'{"owed":\n["reload:nginx"]}',
    ):
        state, error = parse_state(_state_section(body))
        assert error is None and state == {"owed": ["reload:nginx"]}


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (["unreadable"], "state file cannot be read"),
        (_state_section(b""), "state file is empty"),
        (_state_section(b'{"owed": ['), "state file is not valid JSON (line 1"),
        (_state_section(b"[1, 2]"), "state file holds a JSON list, not an object"),
        (_state_section(b"\xff\xfe{}"), "state file is not UTF-8 text"),
        (["present", "not base64!"], "state file is not UTF-8 text"),
    ],
)
def test_a_state_file_that_cannot_be_used_is_an_error_never_an_empty_state(
    lines: list[str], error: str
) -> None:
    state, found = parse_state(lines)
    assert state is None and found is not None and found.startswith(error)


def test_no_state_file_is_a_never_applied_node() -> None:
    assert parse_state([]) == (None, None)


def _probe_locally(root: Path) -> object:
    """The real probe script, run by /bin/sh on this machine under a root prefix."""
    prefixed_root = lambda p: f"{root}{p}"  # noqa: E731
    script = build_script([], "/var/lib/funops/state.json", prefixed_root)
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True).stdout.decode()
    return parse(out, prefixed_root)


def test_the_probe_frames_a_state_file_without_a_final_newline(tmp_path: Path) -> None:
    state_dir = tmp_path / "var/lib/funops"
    state_dir.mkdir(parents=True)
    state = {"owed": ["reload:nginx"], "note": "@@funops end"}
    (state_dir / "state.json").write_text(json.dumps(state))  # no trailing newline
    (state_dir / "lock").mkdir()
    (state_dir / "lock/info").write_text(
        json.dumps({"holder": "a@b", "pid": 1, "started": 1.0, "token": "t"})
    )
    (state_dir / "lock/expires").write_text("123\n")
    facts = _probe_locally(tmp_path)
    assert facts.state == state and facts.state_error is None  # type: ignore[attr-defined]
    assert facts.lock["holder"] == "a@b" and facts.lock["expires"] == 123  # type: ignore[attr-defined]


def test_the_probe_reports_a_state_file_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "var/lib/funops/state.json").mkdir(parents=True)  # a directory: cannot be read
    facts = _probe_locally(tmp_path)
    assert facts.state is None and facts.state_error  # type: ignore[attr-defined]


def test_the_running_containers_are_counted_only_when_asked() -> None:
    """Counting runs the docker CLI (~20 ms of a node's CPU over ssh): a plan with no replicas app
    (nothing placed by count) does not ask, and then the count is unknown, never 0."""
    assert "docker ps" in build_script(["file:/etc/x"], "/var/lib/funops/state.json", str)
    uncounted = build_script(["file:/etc/x"], "/var/lib/funops/state.json", str, containers=False)
    assert "docker ps" not in uncounted and "dockerps" not in uncounted
    done = subprocess.run(["sh", "-c", uncounted], capture_output=True, text=True, check=False)
    assert parse(done.stdout, str).container_count is None
