"""Property: for every string field of the manifest schema, a hostile value (control characters,
quotes, braces, `;`, `}`, `..`, unicode line separators, template syntax) ends in either a located
error (file, line, field; never a traceback) or rendered files whose structure is unchanged: units and
env files keep their lines, the nginx site passes a real `nginx -t`, the container spec is JSON.

Deterministic in CI (derandomized, a modest number of examples); run the long profile by hand:
    FUNOPS_HYPOTHESIS_PROFILE=long .venv/bin/pytest -q tests/unit/test_hostile_strings.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from funops.apptypes.application import HARDENING_DIRECTIVES, KINDS
from funops.compile.compiler import compile_project
from funops.errors import InputError
from funops.load.loader import load_project
from funops.model.inventory import Node
from funops.settings import Settings
from tests.conftest import copy_example

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("FUNOPS_HYPOTHESIS_EXAMPLES", "100")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FUNOPS_HYPOTHESIS_EXAMPLES", "5000")),
    derandomize=False,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("FUNOPS_HYPOTHESIS_PROFILE", "ci")

KEY = "<key>"  # a path element: the dict's key itself is the value under test

# ---- every string field of the schema -----------------------------------------------------------


def _model_paths(model: type[BaseModel], prefix: tuple) -> Iterator[tuple]:
    for name, info in model.model_fields.items():
        yield from _type_paths(info.annotation, (*prefix, info.alias or name))


def _type_paths(tp: Any, path: tuple) -> Iterator[tuple]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is str or (origin is typing.Literal and all(isinstance(a, str) for a in args)):
        yield path
    elif origin is typing.Annotated:
        yield from _type_paths(args[0], path)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _type_paths(arg, path)
    elif origin is list:
        yield from _type_paths(args[0], (*path, 0))
    elif origin is dict:
        yield (*path, KEY)
        yield from _type_paths(args[1], (*path, "k"))
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        yield from _model_paths(tp, path)


def _doc_key(doc: dict) -> tuple[str, str]:
    if "nodes" in doc:
        return "Inventory", "demo"
    if "kind" not in doc:
        return "Settings", "funops"
    return doc["kind"], doc["metadata"]["name"]


# The documents to mutate, from the example; the systemd app gets every optional string field set.
BASE_DOCS = {
    ("Application", "web"): "manifests/web.yaml",
    ("Application", "api"): "manifests/api.yaml",
    ("Service", "web"): "manifests/web.yaml",
    ("Ingress", "site"): "manifests/ingress.yaml",
    ("Release", "api"): "manifests/api.yaml",
    ("Settings", "funops"): "funops.yaml",  # their values reach templates too (injectEnv, node vars)
    ("Inventory", "demo"): "inventory/demo.yaml",
}
SCHEMAS: dict[str, Any] = {**KINDS, "Settings": Settings}
EXTRA_WEB_SPEC = {
    "env": {"GREETING": "hello {{ node.name }}", "TOKEN": {"fromFile": "secrets/api-token"}},
    "vars": {"k": "v"},
    "workingDirectory": "/srv/web",
    "user": "www-data",
    "resources": {"memory": "256M"},
    "metadata_annotations": {"k": "v"},
}

CASES = sorted(
    {(key, path) for key in BASE_DOCS if key[0] in SCHEMAS for path in _model_paths(SCHEMAS[key[0]], ())}
    | {(("Inventory", "demo"), ("nodes", 0, *path)) for path in _model_paths(Node, ())}
    | {(("Inventory", "demo"), ("nodes", 0, "vars", "k"))},
    key=lambda c: (c[0], tuple(map(str, c[1]))),
)

# ---- hostile values --------------------------------------------------------------------------------

PIECES = [
    "\n", "\r", "\r\n", "\x00", "\x1b[2J", "\x85", "\u2028", "\u2029", "\t", "\\", '"', "'", "`",
    "{", "}", ";", "};", "..", "../", "/", "$", "${HOME}", "$(id)", "%n", "%%", "#", "[x]", "[/x]",
    "{{", "}}", "{{ node.name }}", "{{ 1/0 }}", "{{ cycler.__init__.__globals__ }}", "{% if x %}", "{#",
    "\nExecStartPre=/bin/touch /tmp/pwned", "\nLD_PRELOAD=/tmp/x.so", "; return 200;", "} server {",
    " ", "a", "web", "0644", "1.10", "NO", "é", "\U0001f600",
]  # fmt: skip
VALUES = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(alphabet=st.characters(codec="utf-8"), max_size=3)),
    min_size=1,
    max_size=6,
).map("".join)

# ---- the structure of rendered files --------------------------------------------------------------

UNIT_KEYS = {
    "Description", "After", "Wants", "Type", "ExecStart", "User", "WorkingDirectory", "EnvironmentFile",
    "Restart", "RestartSec", "TimeoutStopSec", "MemoryMax", "CPUQuota", "NoNewPrivileges", "PrivateTmp",
    "ProtectSystem", "ProtectHome", "WantedBy", "DynamicUser", "StateDirectory", "KillSignal",
    *HARDENING_DIRECTIVES,  # the sandbox (spec.hardening, spec.hardeningOverrides)
}  # fmt: skip
TIMER_KEYS = {"Description", "OnCalendar", "Persistent", "RandomizedDelaySec", "Unit", "WantedBy"}  # a job's


def _check_unit(text: str, timer: bool = False) -> None:
    allowed, section = (TIMER_KEYS, "[Timer]") if timer else (UNIT_KEYS, "[Service]")
    keys = []
    for line in text.split("\n"):
        assert not line.endswith("\\"), line
        if not line or line.startswith("#") or line in ("[Unit]", section, "[Install]"):
            continue
        key, sep, _ = line.partition("=")
        assert sep and key in allowed, f"unexpected unit line {line!r}"
        keys.append(key)
    assert len(keys) == len(set(keys)), keys


def _check_env(text: str, names: set[str]) -> None:
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert [line.split("=", 1)[0] for line in lines] == sorted(names), lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=[^\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]*", line), line


_NGINX_OK: set[str] = set()


def _check_nginx(site: bytes, files: dict[str, bytes], prefix: Path) -> None:
    digest = hashlib.sha256(site).hexdigest()
    if digest in _NGINX_OK:
        return
    shutil.rmtree(prefix, ignore_errors=True)
    (prefix / "logs").mkdir(parents=True)
    for name, data in files.items():
        target = prefix / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.replace(b"/etc/funops/", f"{prefix}/etc/funops/".encode()))
    conf = prefix / "nginx.conf"
    site_file = prefix / "site.conf"
    site_file.write_bytes(site.replace(b"/etc/funops/", f"{prefix}/etc/funops/".encode()))
    conf.write_text(
        f"error_log {prefix}/logs/error.log;\npid {prefix}/nginx.pid;\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  include {site_file};\n}}\n"
    )
    done = subprocess.run(["nginx", "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _NGINX_OK.add(digest)


# ---- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="funops-hostile-"))
    root = copy_example(base / "repo")
    # Two nodes (an edge, an app node) and one api replica: every template renders, at half the cost.
    inventory = root / "inventory" / "demo.yaml"
    nodes = yaml.safe_load(inventory.read_text())
    nodes["nodes"] = nodes["nodes"][:2]
    inventory.write_text(yaml.safe_dump(nodes, sort_keys=False))
    api = root / "manifests" / "api.yaml"
    api.write_text(api.read_text().replace("replicas: 2", "replicas: 1"))
    web = root / "manifests" / "web.yaml"
    docs = list(yaml.safe_load_all(web.read_text()))
    extra = dict(EXTRA_WEB_SPEC)
    docs[0]["metadata"]["annotations"] = extra.pop("metadata_annotations")
    docs[0]["spec"].update(extra)
    web.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    compile_project(load_project(root))  # the base renders
    yield root
    shutil.rmtree(base, ignore_errors=True)


def _set(doc: Any, path: tuple, value: str) -> None:
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if part == KEY:
            return
        if isinstance(doc, list):
            if not doc:
                doc.append({} if not isinstance(nxt, int) else [])
            doc = doc[0]
            continue
        if not isinstance(doc.get(part), dict | list):
            doc[part] = [] if isinstance(nxt, int) else {}
        doc = doc[part]
    last = path[-1]
    if last == KEY:
        if isinstance(doc, dict) and doc:
            first = next(iter(doc))
            doc[value] = doc.pop(first)
        else:
            doc[value] = "x"
    elif isinstance(doc, list):
        doc[:1] = [value]
    else:
        doc[last] = value


# The classic payloads, tried on every field (deterministic); hypothesis adds random mixtures below.
PAYLOADS = [
    "x\nExecStartPre=/bin/touch /tmp/pwned",
    "42\nLD_PRELOAD=/tmp/x.so",
    "a\u2028b\\",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
]


@pytest.mark.parametrize("value", PAYLOADS, ids=range(len(PAYLOADS)))
@pytest.mark.parametrize("case", CASES, ids=[f"{k[0]}-{k[1]}-{'.'.join(map(str, p))}" for k, p in CASES])
def test_a_classic_payload_is_a_located_error_or_changes_no_structure(repo: Path, case, value: str) -> None:
    _try(repo, case, value)


@settings(settings.get_profile(PROFILE))
@given(case=st.sampled_from(CASES), value=VALUES)
def test_a_hostile_string_is_a_located_error_or_changes_no_structure(repo: Path, case, value: str) -> None:
    _try(repo, case, value)


def _try(repo: Path, case: tuple, value: str) -> None:
    (kind, name), path = case
    file = BASE_DOCS[(kind, name)]
    original = (repo / file).read_text()
    docs = list(yaml.safe_load_all(original))
    for doc in docs:
        if _doc_key(doc) == (kind, name):
            _set(doc, path, value)
    (repo / file).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    try:
        try:
            project = load_project(repo)
            state = compile_project(project)
        except InputError as exc:
            for p in exc.problems:
                located = p.file == file and p.line and p.field
                located = located or (p.file == file == "funops.yaml" and p.field)  # a default's problem
                in_template = p.file.startswith("templates/") and "(rendering manifests/" in p.message
                from_settings = p.file == "funops.yaml" and p.field.startswith("injectEnv")
                assert located or in_template or from_settings, f"not located: {p}"
            return
        _check_rendered(state, project, repo)
    finally:
        (repo / file).write_text(original)


def _check_rendered(state: Any, project: Any, repo: Path) -> None:
    for node, desired in state.nodes.items():
        files = {r.name: r.content or b"" for r in desired.resources if r.kind == "file"}
        for res in desired.resources:
            if res.run_spec is not None:
                assert json.loads(json.dumps(res.run_spec)) == res.run_spec
            if res.kind != "file":
                continue
            text = (res.content or b"").decode("utf-8")
            if res.name.startswith("/etc/systemd/system/"):
                _check_unit(text, timer=res.name.endswith(".timer"))
            elif res.name.startswith("/etc/funops/apps/"):
                app = project.apps[res.name.rsplit("/", 1)[1].removesuffix(".env")]
                injected = {i.name for i in project.settings.inject_env if app.spec.type in i.types}
                _check_env(text, set(app.spec.env) | injected)
            elif res.name.startswith("/etc/nginx/"):
                _check_nginx(res.content or b"", files, repo.parent / "nginx" / node)
