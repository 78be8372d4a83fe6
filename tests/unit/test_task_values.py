"""Issue 28.1, one boundary for values: every field of every task type is checked as the task is made
(tasks/values.py), so the agent's wire decoder refuses what a field may not hold before anything
runs, and the sh renderer quotes every value it writes. The two attacks of the issue, then hostile
values for every field of every task type through both paths: made in python and rendered to sh
(run by the real /bin/sh), and decoded from the wire and run as the agent runs a batch (node/native.py,
the sh for the rest). Commands run against stubs in a temp dir (only the nested `bash`, `env`, `dirname`
and a `touch` that makes nothing but the marker are real): a value that became a command leaves the marker."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funops.node import native, shell, wire
from funops.node.shell import run_sh
from funops.tasks import model as m
from funops.tasks import values
from tests.unit.task_samples import PROBE, TASK_TYPES, fields, sample, unchecked

MARKER = "FUNOPS_MARKER"
# The health check as it comes over the wire in the issue's two attacks (a pull-mode agent ran both).
ATTACK_RETRIES = "1 ]; then :; fi; id > {marker}; if [ 1"
ATTACK_HOST = "127.0.0.1/1; id > {marker}; #"


def _check_health(**probe: Any) -> dict[str, Any]:
    return {"type": "CheckHealth", "app": "web", "host": "127.0.0.1", "port": 9, "unit": None,
            "container": "api", "min_healthy_seconds": 0,
            "check": {**PROBE, "type": "tcp", "port": 9, "interval": 0.01, "retries": 2,
                      **probe}}  # fmt: skip


# ---- the rules cover every field -------------------------------------------------------------------


def test_every_field_of_every_task_type_has_a_rule_and_a_known_type() -> None:
    for cls in [*wire.TASK_TYPES.values(), m.HealthProbe]:
        for f in dataclasses.fields(cls):
            assert f"{cls.__name__}.{f.name}" in values.RULES or f.name in values.RULES, (cls, f.name)
            assert str(f.type).removesuffix(" | None") in values.TYPES, (cls, f.name, f.type)


@pytest.mark.parametrize("name", TASK_TYPES)
def test_every_task_type_holds_its_sample(name: str) -> None:
    task = sample(wire.TASK_TYPES[name])
    assert wire.decode(json.loads(json.dumps(wire.encode(task)))) == task


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"retries": "3"}, "CheckHealth.check.retries: expected int, got str"),
        ({"retries": True}, "CheckHealth.check.retries: expected int, got bool"),
        ({"retries": 10**6}, "CheckHealth.check.retries: 1000000 is not a number from 1 to 10000"),
        ({"port": 0}, "CheckHealth.check.port: 0 is not a number from 1 to 65535"),
        ({"port": 65536}, "CheckHealth.check.port: 65536 is not a number from 1 to 65535"),
        ({"expect_status": 99}, "CheckHealth.check.expect_status: 99 is not a number from 100 to 599"),
        ({"timeout": 0}, "CheckHealth.check.timeout: 0 is not a number over 0 up to 3600"),
        ({"interval": "1"}, "CheckHealth.check.interval: expected float, got str"),
        ({"path": "/a b"}, "CheckHealth.check.path: '/a b' is not a URL path"),
        ({"type": "exec"}, "CheckHealth.check.type: 'exec' is not a health check type"),
        ({"script": "id"}, "CheckHealth.check: unknown field(s) script"),
    ],
)
def test_a_health_probe_holding_what_it_may_not_is_refused_naming_the_field(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.decode(_check_health(**data))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("host", "127.0.0.1/1", "CheckHealth.host: '127.0.0.1/1' is not an IP address or a host name"),
        ("host", "-oProxy", "CheckHealth.host: '-oProxy' is not an IP address or a host name"),
        ("port", 70000, "CheckHealth.port: 70000 is not a number from 1 to 65535"),
        ("app", "Web App", "CheckHealth.app: 'Web App' is not an app name"),
        ("unit", "web\n.service", "CheckHealth.unit: 'web\\n.service' is not a systemd unit name"),
        ("min_healthy_seconds", -1, "CheckHealth.min_healthy_seconds: -1 is not a number from 0 to 86400"),
    ],
)
def test_a_health_check_holding_what_it_may_not_is_refused_naming_the_field(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.decode({**_check_health(), field: value})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"type": "StopUnit", "unit": "x\x00y"}, "StopUnit.unit: 'x\\x00y' is not a systemd unit name"),
        ({"type": "RemoveDirectory", "path": "/a\nb"}, "RemoveDirectory.path: '/a\\nb' holds a control"),
        ({"type": "RemoveDirectory", "path": "srv"}, "RemoveDirectory.path: 'srv' is not an absolute path"),
        ({"type": "RemoveDirectory", "path": "/srv/../etc"}, "RemoveDirectory.path: '/srv/../etc' is not an"),
        ({"type": "AwaitIdle", "ports": [80, 0], "timeout": 1}, "AwaitIdle.ports: 0 is not a number from 1"),
        ({"type": "AwaitIdle", "ports": ["80"], "timeout": 1}, "AwaitIdle.ports: expected tuple[int, ...]"),
        ({"type": "ReadFiles", "paths": ["/a"], "limit": -1}, "ReadFiles.limit: -1 is not a number from 0"),
        ({"type": "EnsureUser", "user": "-r"}, "EnsureUser.user: '-r' is not a user name"),
        ({"type": "ReadLogs"}, "ReadLogs: the units of an app, or its container"),
        ({"type": "RemoveArtifact", "link": "/current"}, "RemoveArtifact.link: '/current' is not a link"),
        ({"type": "RunContainer", "spec": {"name": "api", "image": "--privileged"}},
         "RunContainer.spec.image: '--privileged' is not an image reference"),
        ({"type": "RunContainer", "spec": {"name": "api", "image": "i", "cmd": "id"}},
         "RunContainer.spec: unknown field(s) cmd"),
    ],
)  # fmt: skip
def test_a_task_holding_what_it_may_not_is_refused_naming_the_field(
    task: dict[str, Any], message: str
) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.decode(task)
    assert str(caught.value).startswith(message)


def test_a_manifest_health_check_out_of_the_tasks_bounds_is_refused_at_load() -> None:
    from pydantic import ValidationError

    from funops.model.strategy import HealthCheck, UpdateStrategy

    for bad in ({"retries": values.MAX_RETRIES + 1}, {"interval": 3601}, {"timeout": 3601}):
        with pytest.raises(ValidationError):
            HealthCheck.model_validate(bad)
    with pytest.raises(ValidationError):
        UpdateStrategy.model_validate({"minHealthySeconds": values.MAX_WAIT_SECONDS + 1})


# ---- a sandbox: stubs for every command a task runs -----------------------------------------------

STUBBED = ("systemctl", "docker", "curl", "mkdir", "chown", "chmod", "rm", "mv", "cp", "cat", "ln", "mktemp",
           "sync", "sha256sum", "cut", "sort", "tr", "rmdir", "find", "tail", "head", "nginx",
           "useradd", "id", "ss", "sleep", "date", "openssl", "od", "base64", "wc", "grep", "journalctl",
           "python3", "tar", "stat", "ls", "xargs", "readlink", "printenv")  # fmt: skip


@dataclasses.dataclass
class Sandbox:
    dir: Path
    bin: Path

    @property
    def marker(self) -> Path:
        return self.dir / MARKER

    def env(self) -> dict[str, str]:
        return {"PATH": str(self.bin), "HOME": str(self.dir), "LC_ALL": "C"}

    def root(self) -> Path:
        """A fresh node root: every node path of a task maps under it."""
        return Path(tempfile.mkdtemp(dir=self.dir, prefix="root."))

    def run(self, script: str, stdin: bytes | None = None) -> int:
        return run_sh(script, stdin, 30, self.env()).exit_code


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    here = tmp_path_factory.mktemp("values")
    bin_dir = here / "bin"
    bin_dir.mkdir()
    for name in STUBBED:
        _stub(bin_dir / name, "exit 1")  # nothing happens; a check that asks fails (fewer tries run)
    # A payload's `touch` makes the marker (and nothing else); `timeout` runs what it is given.
    _stub(bin_dir / "touch", f'for a; do case "$a" in *{MARKER}) : > "$a";; esac; done')
    _stub(bin_dir / "timeout", 'shift; exec "$@"')
    for real in ("bash", "sh", "env", "dirname"):  # dirname: a stub's "" would recurse without end
        (bin_dir / real).symlink_to(shutil.which(real) or f"/usr/bin/{real}")
    box = Sandbox(here, bin_dir)
    assert box.run(f"touch {box.marker}") == 0 and box.marker.exists()  # the marker works
    box.marker.unlink()
    yield box


@pytest.fixture(autouse=True)
def _no_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts without the marker (one that failed leaves its own behind)."""
    box = request.getfixturevalue("sandbox") if "sandbox" in request.fixturenames else None
    if box is not None:
        box.marker.unlink(missing_ok=True)
    yield


def _rendered(task: m.Task, root: Path) -> shell.ShellStep:
    return shell.render(task, lambda p: f"{root}{p}")


# ---- the two attacks of the issue ------------------------------------------------------------------


@pytest.mark.parametrize(("probe", "top"), [({"retries": ATTACK_RETRIES}, {}), ({}, {"host": ATTACK_HOST})])
def test_the_issues_attacks_are_refused_before_anything_runs(
    sandbox: Sandbox, probe: dict[str, Any], top: dict[str, Any]
) -> None:
    """As a pull-mode agent decoded them: refused (the server's 400), nothing run. The attack of the
    host is a correctly typed string; the one of retries a string where a number goes."""
    marker = str(sandbox.marker)
    data = _check_health(**{k: v.format(marker=marker) for k, v in probe.items()})
    data.update({k: v.format(marker=marker) for k, v in top.items()})
    with pytest.raises(wire.WireError, match=r"CheckHealth\.(check\.retries|host)"):
        wire.decode(data)
    assert not sandbox.marker.exists()


@pytest.mark.parametrize("attack", ["retries", "host"])
def test_the_sh_of_a_health_check_keeps_the_issues_attacks_as_words(sandbox: Sandbox, attack: str) -> None:
    """The second wall: a check made without its check (no code path can) still runs no command, the
    tcp probe's host and port reach bash as its arguments. A container that runs (the stub says so)
    lets the probe run, as the issue's did."""
    marker = str(sandbox.marker)
    probe = unchecked(m.HealthProbe, **{**PROBE, "type": "tcp", "port": 9, "interval": 0.01, "retries": 2})
    if attack == "retries":
        object.__setattr__(probe, "retries", ATTACK_RETRIES.format(marker=marker))
    host = ATTACK_HOST.format(marker=marker) if attack == "host" else "127.0.0.1"
    task = unchecked(
        m.CheckHealth, check=probe, host=host, port=9, unit=None, container="api", min_healthy_seconds=0
    )
    _stub(sandbox.bin / "docker", "echo true")
    try:
        sandbox.run(_rendered(task, sandbox.root()).script)
    finally:
        _stub(sandbox.bin / "docker", "exit 1")
    assert not sandbox.marker.exists()


def test_a_valid_tcp_check_reaches_its_port_through_bash_arguments(sandbox: Sandbox) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = m.HealthProbe(**{**PROBE, "type": "tcp", "port": port, "retries": 1})
        task = m.CheckHealth("web", probe, "127.0.0.1", None, None, None, 0)
        assert sandbox.run(_rendered(task, sandbox.root()).script) == 0
    task = m.CheckHealth("web", dataclasses.replace(probe, port=9), "127.0.0.1", None, None, None, 0)
    assert sandbox.run(_rendered(task, sandbox.root()).script) == 1


# ---- hostile values for every field of every task type, both paths ---------------------------------

PAYLOADS = (
    "; touch {m}", "$(touch {m})", "`touch {m}`", "'; touch {m}; '", '"; touch {m}; "', "\ntouch {m}\n",
    " ]; then :; fi; touch {m}; if [ 1", "/1; touch {m}; #", "\x00; touch {m}", "| touch {m}",
    "&& touch {m} &&", "${{IFS}}touch${{IFS}}{m}", "\r\ntouch {m}", "\u2028touch {m}", " -exec touch {m} ;",
)  # fmt: skip
PREFIXES = ("", "/", "/srv/x", "a", "127.0.0.1", "web.service", "0644", "1")
# Wrong types and out-of-range numbers: none is a valid value that would take long (a valid wait of
# an hour): each is out of every field's range.
WRONG = (None, True, False, 0, -1, 10**12, 1e300, -0.5, "", "3", [], {}, ["3"], {"b64": "!!"})


def _hostile_text(marker: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda pre, payload, post: pre + payload.format(m=marker) + post,
        st.sampled_from(PREFIXES), st.sampled_from(PAYLOADS), st.sampled_from(("", "x", "/y")),
    )  # fmt: skip


def _hostile(annotation: str, name: str, marker: str) -> st.SearchStrategy[Any]:
    """JSON values for a field: hostile text in its place (and in its items), or a wrong type."""
    text = _hostile_text(marker)
    base = annotation.removesuffix(" | None")
    shaped: st.SearchStrategy[Any] = text
    if base.startswith(("tuple[str", "frozenset")):
        shaped = st.lists(text, min_size=1, max_size=2)
    elif base.startswith("tuple[tuple"):
        shaped = st.one_of(st.tuples(st.just("a" * 64), text).map(lambda p: [list(p)]),
                           st.tuples(text, st.just("/x")).map(lambda p: [list(p)]))  # fmt: skip
    elif base.startswith("tuple[int"):
        shaped = st.lists(st.one_of(text, st.sampled_from(WRONG)), min_size=1, max_size=2)
    elif base == "Mapping[str, Any]":
        spec = dict(fields(m.RunContainer)["spec"])
        keys = [*spec, "volumes", "envFile", "stopSignal", "security", "labels", "cmd"]
        shaped = st.builds(
            lambda k, v: {**spec, k: v}, st.sampled_from(keys), st.one_of(text, st.lists(text))
        )
    elif base == "HealthProbe":
        probe = {**PROBE, "interval": 0.01, "retries": 2, "timeout": 0.5, "port": 9}
        shaped = st.builds(
            lambda k, v: {**probe, k: v},
            st.sampled_from(sorted(probe)),
            st.one_of(text, st.sampled_from(WRONG)),
        )
    elif base == "bytes":
        shaped = text.map(lambda t: {"b64": base64.b64encode(t.encode()).decode()})
    return st.one_of(shaped, st.sampled_from(WRONG))


def _fields() -> list[tuple[str, str]]:
    return [(name, f.name) for name in TASK_TYPES for f in dataclasses.fields(wire.TASK_TYPES[name])]


def _base(cls: type) -> dict[str, Any]:
    """A sample task's JSON, quick to run: a health check tries a closed port twice, 10 ms apart."""
    data = wire.encode(sample(cls))
    if cls is m.CheckHealth:
        data = {**data, **_check_health(), "container": None}
    return data


def _python_value(annotation: str, value: Any) -> Any:
    """The JSON value as a python caller would pass it (lists as tuples where a tuple goes)."""
    base = annotation.removesuffix(" | None")
    if isinstance(value, list) and base.startswith("tuple"):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(value, list) and base.startswith("frozenset"):
        try:
            return frozenset(value)
        except TypeError:
            return value
    if isinstance(value, dict) and base == "HealthProbe":
        try:
            return m.HealthProbe(**value)
        except (TypeError, ValueError):
            return value
    if isinstance(value, dict) and base == "bytes" and isinstance(value.get("b64"), str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            return value
    return value


@pytest.mark.parametrize(("name", "field"), _fields())
@settings(
    max_examples=6,
    derandomize=True,  # the same examples on every run: CI stays stable
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_hostile_value_in_any_field_is_refused_or_stays_a_value(
    sandbox: Sandbox, name: str, field: str, data: st.DataObject
) -> None:
    cls = wire.TASK_TYPES[name]
    annotation = str({f.name: f.type for f in dataclasses.fields(cls)}[field])
    value = data.draw(_hostile(annotation, field, str(sandbox.marker)), label=field)
    # The wire: decoded as the agent decodes a request, and run as it runs a batch.
    try:
        task = wire.decode(json.loads(json.dumps({**_base(cls), field: value})))
    except wire.WireError as exc:
        assert f"{name}." in str(exc) or f"{name}:" in str(exc), exc  # names the task and its field
    else:
        root = sandbox.root()
        native.run_tasks([task], lambda p: f"{root}{p}", lambda s, i, t: run_sh(s, i, 30, sandbox.env()), 60,
                         sandbox.env())  # fmt: skip
    assert not sandbox.marker.exists(), f"{name}.{field} = {value!r} ran a command (wire, native)"
    # Python: made as the planner makes tasks, rendered to sh and run by /bin/sh.
    given_values = {k: v for k, v in {**_base(cls), field: value}.items() if k != "type"}
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    try:
        task = cls(**{k: _python_value(types[k], v) for k, v in given_values.items()})
    except values.ValueProblem as exc:
        assert f"{name}." in str(exc) or f"{name}:" in str(exc) or "HealthProbe." in str(exc), exc
    else:
        step = _rendered(task, sandbox.root())
        sandbox.run(step.script, step.stdin)
    assert not sandbox.marker.exists(), f"{name}.{field} = {value!r} ran a command (sh)"


@pytest.mark.parametrize(("name", "field"), [(n, f) for n, f in _fields() if f not in ("content", "info")])
@settings(
    max_examples=4,
    derandomize=True,  # the same examples on every run: CI stays stable
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_sh_quotes_a_hostile_value_even_when_nothing_checked_it(
    sandbox: Sandbox, name: str, field: str, data: st.DataObject
) -> None:
    """The second wall, quoting, on its own: any field (numbers too) made to hold hostile text
    without the check renders to a script that runs no command of it, or does not render."""
    cls = wire.TASK_TYPES[name]
    text = data.draw(_hostile_text(str(sandbox.marker)).filter(lambda t: ".." not in t and "\x00" not in t))
    base = fields(cls)
    annotation = str({f.name: f.type for f in dataclasses.fields(cls)}[field]).removesuffix(" | None")
    if annotation == "HealthProbe":
        inner = data.draw(st.sampled_from(sorted(PROBE)))
        hostile: Any = unchecked(m.HealthProbe, **{**PROBE, "interval": 0.01, "retries": 2, inner: text})
    elif annotation == "Mapping[str, Any]":
        hostile = {**base[field], data.draw(st.sampled_from(["name", "image", "network", "volumes"])): text}
        if not isinstance(hostile.get("volumes"), list):
            hostile["volumes"] = [text]
    elif annotation.startswith("tuple[tuple"):
        hostile = (("a" * 64, "/x" + text),)
    elif annotation.startswith(("tuple", "frozenset")):
        hostile = (text,) if annotation.startswith("tuple") else frozenset({text})
    elif annotation.startswith(("str", "int", "float")):
        hostile = (
            text
            if not annotation.startswith("str") or not base[field] or not str(base[field]).startswith("/")
            else "/x" + text
        )  # a path stays under the node root
    else:
        return  # a bool: no text to hold
    if cls is m.CheckHealth:
        base = {**base, "check": unchecked(m.HealthProbe, **{**PROBE, "interval": 0.01, "retries": 2})}
    task = unchecked(cls, **{**base, field: hostile})
    try:
        step = _rendered(task, sandbox.root())
    except (TypeError, ValueError, KeyError):
        return  # does not render
    sandbox.run(step.script, step.stdin)
    assert not sandbox.marker.exists(), f"{name}.{field} = {hostile!r} ran a command"


@pytest.mark.parametrize(("probe", "top"), [({"retries": ATTACK_RETRIES}, {}), ({}, {"host": ATTACK_HOST})])
def test_a_real_agent_in_pull_mode_refuses_the_issues_attacks_and_runs_nothing(
    tmp_path: Path, probe: dict[str, Any], top: dict[str, Any]
) -> None:
    """CheckHealth is a read a pull-mode agent still runs for a controller: the issue's attacks sent
    to a real agent process with its token are a 400 naming the field. Its `docker` says the
    container runs, so on main the tcp probe (and the retry count after it) ran as the issue's did."""
    import http.client
    import os
    import secrets
    import ssl
    import time

    from tests.unit.agentproc import AgentProcess
    from tests.unit.test_agent import TOKEN

    fake = tmp_path / "bin"
    fake.mkdir()
    _stub(fake / "docker", "echo true")
    marker = str(tmp_path / MARKER)
    (tmp_path / "pull.json").write_text("{}")
    (tmp_path / "agent").mkdir()
    agent = AgentProcess(tmp_path / "agent", "127.0.0.1", env={"PATH": f"{fake}:{os.environ['PATH']}"},
                         pullConfig=str(tmp_path / "pull.json"))  # fmt: skip
    task = _check_health(**{k: v.format(marker=marker) for k, v in probe.items()})
    task.update({k: v.format(marker=marker) for k, v in top.items()})
    body = {"taskId": f"{int(time.time() * 1000)}-{secrets.token_hex(12)}", "tasks": [task], "batch": True}
    agent.start()
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", agent.port, context=ssl._create_unverified_context(),
                                           timeout=30)  # fmt: skip
        conn.request("POST", "/v1/tasks", body=json.dumps(body).encode(),
                     headers={"Authorization": f"Bearer {TOKEN}", "X-Funops-Protocol": "1"})  # fmt: skip
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read())
        conn.close()
    finally:
        agent.stop()
    assert status == 400, answer
    assert answer["error"].startswith(("CheckHealth.check.retries: ", "CheckHealth.host: ")), answer
    assert not Path(marker).exists()


@pytest.mark.parametrize("value", ["5", True, -1, 0, float("nan"), 10**9, [5]])
def test_a_request_timeout_that_is_not_seconds_is_refused(value: Any) -> None:
    with pytest.raises(wire.WireError, match="timeout: "):
        wire.timeout(value)


def test_a_request_timeout_and_task_list_as_sent() -> None:
    assert wire.timeout(None) is None and wire.timeout(30) == 30.0 and wire.timeout(2.5) == 2.5
    assert wire.decode_all(None) == [] and wire.decode_all([{"type": "NginxTest"}]) == [m.NginxTest()]
    with pytest.raises(wire.WireError, match="tasks: a list of tasks"):
        wire.decode_all({"type": "NginxTest"})


def test_an_agent_runs_the_health_checks_of_its_own_addresses_only() -> None:
    """A token cannot make the agent scan its network (a tcp check's exit tells open from closed):
    refused before any connection (192.0.2.1 is TEST-NET-1: nothing is sent there)."""
    from funops.node import host as node

    assert node.own_address("127.0.0.1") and node.own_address("0.0.0.0") and node.own_address("")
    assert not node.own_address("192.0.2.1") and not node.own_address("example.com")
    probe = m.HealthProbe(**{**PROBE, "type": "tcp", "port": 9, "retries": 1})
    with pytest.raises(
        values.ValueProblem, match=r"CheckHealth\.host: 192\.0\.2\.1 is not an address of this"
    ):
        node.run([m.CheckHealth("web", probe, "192.0.2.1", None, None, None, 0)], True, 10)
