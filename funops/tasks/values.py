"""One boundary for task values: every field of every task type (tasks/model.py) is checked here, for
its type and its rule, when the task is made. So a task that exists is valid, whoever made it: the
planner from a manifest, the agent from a request (node/wire.py), a test. No renderer or executor
then meets a string where a number goes, a port of 0, a line break in a path or a host that is not
a host; the sh renderer still quotes every value it writes (node/shell.py's `q`).

Standard library only, and the grammar of python 3.9: the agent imports it on the node.
"""

from __future__ import annotations

import dataclasses
import math
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from ..model.text import MAX_CHECK_SECONDS, MAX_RETRIES, MAX_WAIT_SECONDS, bad_char, shown

# A rollout's bounds (MAX_RETRIES, …) are model/text.py's: a manifest's healthCheck and strategy keep
# to them as well.
MAX_PATH = 4_096


class ValueProblem(ValueError):
    """A task field that does not hold what it may: `Type.field: why` (the agent answers it as a 400)."""


def check(obj: Any) -> None:
    """Every field of a task (or of a HealthProbe inside one) against its type and rule."""
    kind = type(obj).__name__
    for f in dataclasses.fields(obj):
        where = f"{kind}.{f.name}"
        value = getattr(obj, f.name)
        if not type_ok(str(f.type), value):
            raise ValueProblem(f"{where}: expected {f.type}, got {type(value).__name__}")
        if value is not None:
            rule = RULES.get(where) or RULES.get(f.name)
            if rule is None:  # a new field without a rule: tests/unit/test_task_values.py catches it
                raise ValueProblem(f"{where}: no rule for this field")
            rule(value, where)
    whole = WHOLE.get(kind)
    if whole is not None:
        whole(obj)


# ---- types, from the annotations (strings: tasks/model.py postpones them) -----------------------------


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # True is an int to isinstance


def _float(v: Any) -> bool:
    return (_int(v) or isinstance(v, float)) and math.isfinite(v)


def _str(v: Any) -> bool:
    return isinstance(v, str)


TYPES: dict[str, Callable[[Any], bool]] = {
    "str": _str,
    "int": _int,
    "float": _float,
    "bool": lambda v: isinstance(v, bool),
    "bytes": lambda v: isinstance(v, bytes),
    "HealthProbe": lambda v: type(v).__name__ == "HealthProbe" and dataclasses.is_dataclass(v),
    "tuple[str, ...]": lambda v: isinstance(v, tuple) and all(map(_str, v)),
    "tuple[int, ...]": lambda v: isinstance(v, tuple) and all(map(_int, v)),
    "tuple[tuple[str, str], ...]": lambda v: (
        isinstance(v, tuple) and all(isinstance(p, tuple) and len(p) == 2 and all(map(_str, p)) for p in v)
    ),
    "frozenset[str]": lambda v: isinstance(v, frozenset) and all(map(_str, v)),
    "Mapping[str, Any]": lambda v: isinstance(v, Mapping) and all(map(_str, v)),
}


def type_ok(annotation: str, value: Any) -> bool:
    base, optional = annotation, annotation.endswith(" | None")
    if optional:
        base = annotation[: -len(" | None")]
    if value is None:
        return optional
    return TYPES[base](value)


# ---- rules --------------------------------------------------------------------------------------------


def _fail(where: str, value: Any, why: str) -> None:
    raise ValueProblem(f"{where}: {shown(value)} is not {why}")


def _one_line(value: str, where: str, most: int = 1024) -> None:
    char = bad_char(value)
    if char is not None:
        raise ValueProblem(
            f"{where}: {shown(value)} holds a control character or line break ({repr(char)[1:-1]})"
        )
    if len(value) > most:
        raise ValueProblem(f"{where}: longer than {most} characters")


def _text(value: str, where: str) -> None:
    """Words for people (a label, where an upload came from): one line."""
    _one_line(value, where)


def _node_path(value: str, where: str) -> None:
    _one_line(value, where, MAX_PATH)
    if not value.startswith("/") or ".." in value.split("/"):
        _fail(where, value, "an absolute path without '..'")


def _link_target(value: str, where: str) -> None:
    _one_line(value, where, MAX_PATH)
    if not value:
        _fail(where, value, "a link target")


def _matches(regex: str, words: str) -> Callable[[str, str], None]:
    compiled = re.compile(regex)

    def rule(value: str, where: str) -> None:
        if not compiled.fullmatch(value):  # fullmatch: '$' would let a trailing newline through
            _fail(where, value, words)

    return rule


def _between(low: float, high: float, low_open: bool = False) -> Callable[[float, str], None]:
    def rule(value: float, where: str) -> None:
        if value > high or value < low or (low_open and value == low):
            _fail(
                where,
                value,
                f"a number {'over' if low_open else 'from'} {low:g} {'up ' if low_open else ''}to {high:g}",
            )

    return rule


def _each(rule: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def each(values: Any, where: str) -> None:
        for v in values:
            rule(v, where)

    return each


_sha256 = _matches(r"[0-9a-f]{64}", "a sha256 (64 lowercase hex digits)")
_mode = _matches(r"0?[0-7]{3,4}", 'an octal file mode such as "0644"')
_owner = _matches(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]{1,10}", "a user or group name, or a number")
_user = _matches(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?", "a user name")
_unit = _matches(r"[A-Za-z0-9_][A-Za-z0-9_:.@-]{0,254}", "a systemd unit name")
_container = _matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", "a container name")
_image = _matches(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,511}", "an image reference")
_app = _matches(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "an app name")
_release = _matches(
    r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}", "a release name (a version: letters, digits, '._-')"
)
_url = _matches(r"https?://[^\s'\"\\\x00-\x1f\x7f]{1,8185}", "an http(s) URL")
_token = _matches(r"[A-Za-z0-9_-]{1,128}", "a lock token")
_subject = _matches(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}", "a certificate name")
_alt_name = _matches(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}", "a host name or IP address")
_since_time = _matches(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}", "a time YYYY-MM-DDTHH:MM:SS")
_url_path = _matches(r"/[^\s\x00-\x1f\x7f]{0,2047}", "a URL path starting with / (no spaces)")
_port = _between(1, 65535)
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _host(value: str, where: str) -> None:
    """An IP address or a host name ("" and 0.0.0.0: this node, as the checks read them)."""
    if value == "":
        return
    for family in (socket.AF_INET, socket.AF_INET6):  # not ipaddress: the agent's memory stays as it was
        try:
            socket.inet_pton(family, value)
            return
        except OSError:
            continue
    labels = value[:-1].split(".") if value.endswith(".") else value.split(".")
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        _fail(where, value, "an IP address or a host name")


def _file_name(value: str, where: str) -> None:
    """A single file's own name (a URL's last part, as it came): "" for a tar to unpack."""
    _one_line(value, where, 255)
    if "/" in value or value in (".", ".."):
        _fail(where, value, "a file name (no '/')")


def _resource_id(value: str, where: str) -> None:
    _one_line(value, where, MAX_PATH)
    if not re.fullmatch(r"[a-z][a-z0-9-]*:.+", value, re.DOTALL):
        _fail(where, value, "a resource id (<kind>:<name>)")


def _unit_file(value: str, where: str) -> None:
    _node_path(value, where)
    _unit(value.rpartition("/")[2], where)


def _store_entry(value: tuple[str, str], where: str) -> None:
    _sha256(value[0], where)
    _node_path(value[1], where)


def _health_type(value: str, where: str) -> None:
    if value not in ("http", "tcp", "process"):
        _fail(where, value, "a health check type (http, tcp, process)")


# ---- a container's run spec (compile/container/run.json.j2, apptypes/hardening.py) --------------------


def _spec_text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        _fail(where, value, "a string")
    _one_line(value, where)


def _spec_strings(value: Any, where: str) -> None:
    if not isinstance(value, (list, tuple)):
        _fail(where, value, "a list of strings")
    for v in value:
        _spec_text(v, where)


def _spec_number(value: Any, where: str) -> None:
    if not _float(value) or value < 0:
        _fail(where, value, "a number of 0 or more")


def _spec_size(value: Any, where: str) -> None:
    """Memory: a number of bytes, or docker's "512m"."""
    if _float(value):
        return _spec_number(value, where)
    _spec_text(value, where)
    _matches(r"[0-9]+(\.[0-9]+)?[bkmgBKMG]?", "a size such as 512m")(value, where)


def _spec_labels(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        _fail(where, value, "an object of labels")
    for k, v in value.items():
        _spec_text(k, where)
        _spec_text(v, where)


_SECURITY: dict[str, Callable[[Any, str], None]] = {
    "noNewPrivileges": lambda v, w: isinstance(v, bool) or _fail(w, v, "true or false"),
    "capDrop": _spec_strings,
    "capAdd": _spec_strings,
    "pidsLimit": _spec_number,
    "readOnlyRootfs": lambda v, w: isinstance(v, bool) or _fail(w, v, "true or false"),
    "user": _spec_text,
}


def _spec_security(value: Any, where: str) -> None:
    _spec_object(value, where, _SECURITY)


_SPEC: dict[str, Callable[[Any, str], None]] = {
    "name": lambda v, w: _spec_text(v, w) or _container(v, w),
    "image": lambda v, w: _spec_text(v, w) or _image(v, w),  # last on docker's command line: no '-'
    "network": _spec_text,
    "envFile": lambda v, w: _spec_text(v, w) or _node_path(v, w),
    "restart": _spec_text,
    "volumes": _spec_strings,
    "memory": _spec_size,
    "cpus": _spec_number,
    "security": _spec_security,
    "stopSignal": _spec_text,
    "stopTimeout": _spec_number,
    "labels": _spec_labels,
}


def _spec_object(
    value: Mapping[str, Any], where: str, fields: Mapping[str, Callable[[Any, str], None]]
) -> None:
    if not isinstance(value, Mapping):
        _fail(where, value, "an object")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ValueProblem(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
    for key, v in value.items():
        if v is not None:
            fields[key](v, f"{where}.{key}")


def _run_spec(value: Mapping[str, Any], where: str) -> None:
    for key in ("name", "image"):
        if key not in value:
            raise ValueProblem(f"{where}: missing field {key}")
    _spec_object(value, where, _SPEC)


# By `Type.field`, else by the field's name: the same name means the same rule across task types.
RULES: dict[str, Callable[[Any, str], None]] = {
    # node paths
    "path": _node_path,
    "backup": _node_path,
    "store": _node_path,
    "link": _node_path,
    "PlaceArtifact.directory": _node_path,
    "state_file": _node_path,
    "lock_dir": _node_path,
    "key_file": _node_path,
    "MakeCertificate.cert": _node_path,
    "MakeCertificate.key": _node_path,
    "paths": _each(_node_path),
    "fetch": _each(_node_path),
    "unit_files": _each(_unit_file),
    "target": _link_target,
    # files
    "sha256": _sha256,
    "WriteFile.sha256": lambda v, w: v == "" or _sha256(v, w),  # WriteState's own write has none
    "mode": _mode,
    "owner": _owner,
    "group": _owner,
    "user": _user,
    "content": lambda v, w: None,  # bytes, on stdin: any
    "info": lambda v, w: None,
    "private_dirs": lambda v, w: None,
    "label": _text,
    "upload": _text,
    "files": _each(_store_entry),
    "KeepArtifacts.keep": _each(_sha256),
    # systemd, containers
    # (fields named as a kind is are keyed by their type: no stage module names a kind)
    "StartUnit.unit": _unit,
    "StopUnit.unit": _unit,
    "CheckHealth.unit": _unit,
    "units": _each(_unit),
    "restart": lambda v, w: None,
    "spec": _run_spec,
    "StartContainer.container": _container,
    "RemoveContainer.container": _container,
    "CheckHealth.container": _container,
    "ReadLogs.container": _container,
    "remove_image": lambda v, w: None,
    "keep_images": _each(_image),
    "repositories": _each(_image),
    "PruneImages.keep": _each(_image),
    # artifacts
    "release": _release,
    "PlaceArtifact.keep": _between(1, 1000),
    "url": _url,
    "PlaceArtifact.file": _file_name,
    # certificates
    "PruneVersions.directory": _node_path,
    "PruneVersions.keep": _between(1, 1000),
    "CheckChallenge.address": _host,
    "CheckChallenge.token": _matches(r"[A-Za-z0-9_-]{1,256}", "an ACME token (base64url)"),
    # health
    "app": _app,
    "check": lambda v, w: None,  # a HealthProbe: checked as it was made
    "host": _host,
    "port": _port,
    "min_healthy_seconds": _between(0, MAX_WAIT_SECONDS),
    "HealthProbe.type": _health_type,
    "HealthProbe.path": _url_path,
    "HealthProbe.expect_status": _between(100, 599),
    "HealthProbe.interval": _between(0, MAX_CHECK_SECONDS, low_open=True),
    "HealthProbe.timeout": _between(0, MAX_CHECK_SECONDS, low_open=True),
    "HealthProbe.retries": _between(1, MAX_RETRIES),
    # draining
    "ports": _each(_port),
    "AwaitIdle.timeout": _between(0, MAX_WAIT_SECONDS, low_open=True),
    # reads
    "ids": _each(_resource_id),
    "containers": lambda v, w: None,
    "limit": _between(0, 1 << 30),
    "nginx_test": lambda v, w: None,
    "since_seconds": _between(0, 100 * 365 * 86400),
    "since_time": _since_time,
    "lines": _between(0, 10_000_000),
    "follow": lambda v, w: None,
    # an operator's command: each argument one line (a word of any characters but control ones)
    "argv": _each(_one_line),
    # locks, the agent's installation
    "token": _token,
    "ttl": _between(1, 7 * 86400),
    "subject": _subject,
    "MakeCertificate.names": lambda v, w: [_alt_name(n, w) for n in v],
}


def _read_logs(task: Any) -> None:
    if (task.container is None) == (not task.units):
        raise ValueProblem("ReadLogs: the units of an app, or its container (one of the two)")


def _run_command(task: Any) -> None:
    if not task.argv or not task.argv[0]:
        raise ValueProblem("RunCommand.argv: a command to run (its first word empty or missing)")


def _remove_artifact(task: Any) -> None:
    """Its link's directory goes, all of it: never a top-level one (`/current` would take `/`)."""
    if task.link.rstrip("/").count("/") < 2:
        raise ValueProblem(f"RemoveArtifact.link: {shown(task.link)} is not a link inside an app's directory")


WHOLE: dict[str, Callable[[Any], None]] = {
    "ReadLogs": _read_logs,
    "RemoveArtifact": _remove_artifact,
    "RunCommand": _run_command,
}
