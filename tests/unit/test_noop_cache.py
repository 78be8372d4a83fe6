"""The no-op cache's key, digests and store (funops/cache). The replay itself, against real agents,
is tests/lab/test_noop_cache.py."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from funops import node
from funops.cache import key as keys
from funops.cache import replay, store
from funops.cache.record import noop
from funops.node import probe
from funops.transports import exchange

from ..conftest import copy_example

ENV = {"PATH": "/usr/bin", "HOME": "/root"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")


def key_of(repo: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    env = env or ENV
    req = keys.request(["-C", str(repo), *(argv or ("plan",))], env)
    assert req is not None
    found = keys.key(req, env)
    assert found is not None
    return found


# ---- the command lines it answers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["plan"],
        ["plan", "--no-diff", "-n", "node1", "--app", "web", "--skip-unreachable"],
        ["apply", "--auto-approve", "--allow-dirty", "-p", "4", "--diff-context=1"],
        ["-C", ".", "plan", "-o", "text"],
        ["validate", "-C", "."],
    ],
)
def test_plain_plans_applies_and_validates_are_answered(argv: list[str]) -> None:
    req = keys.request(argv, ENV)
    assert req is not None and req.command in argv


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "-r", "HEAD~1"],  # another revision: the working tree is not its input
        ["plan", "--revision=HEAD"],
        ["plan", "-i", "other.yaml"],  # an inventory from anywhere
        ["plan", "--out", "plan.json"],
        ["plan", "--help"],
        ["apply", "plan.json"],  # a saved plan
        ["apply", "--resume"],
        ["apply", "--metrics-push", "http://pushgateway:9091"],
        ["plan", "-n"],  # a value missing: typer says so
        ["validate", "-o", "json"],
        ["render"],
        ["--debug", "plan"],
        [],
    ],
)
def test_what_it_does_not_understand_goes_to_the_full_path(argv: list[str]) -> None:
    assert keys.request(argv, ENV) is None


def test_variables_bringing_other_inputs_or_outputs_go_to_the_full_path() -> None:
    for name in ("FUNOPS_INVENTORY", "FUNOPS_METRICS_PUSH", "FUNOPS_METRICS_TEXTFILE", "FUNOPS_LOG"):
        assert keys.request(["plan"], {**ENV, name: "x"}) is None


def test_the_repo_is_where_the_app_would_read_it(repo: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert keys.request(["-C", "repo", "plan"], ENV).root == repo.resolve()
    assert keys.request(["plan", "-C", "repo"], ENV).root == repo.resolve()
    assert keys.request(["plan", "--repo=repo"], ENV).root == repo.resolve()
    assert keys.request(["plan"], {**ENV, "FUNOPS_REPO": "repo"}).root == repo.resolve()
    assert keys.request(["plan", "-C", "missing"], ENV) is None


# ---- the key ---------------------------------------------------------------------------------------


def test_the_key_is_stable_across_runs_and_what_runs_write(repo: Path) -> None:
    before = key_of(repo)
    (repo / ".funops").mkdir(exist_ok=True)
    (repo / ".funops" / "journal.jsonl").write_text('{"run": 1}\n')
    store.write(repo, "k", {"nodes": {}})
    assert key_of(repo) == before
    assert key_of(repo, env={**ENV, "OLDPWD": "/elsewhere", "_": "/usr/bin/env"}) == before


@pytest.mark.parametrize(
    "change",
    [
        "template",
        "manifest",
        "inventory",
        "settings",
        "secret file",
        "new file",
        "token",
        "pins",
        "environment",
        "command line",
    ],
)
def test_any_input_changed_is_another_key(repo: Path, change: str) -> None:
    before = key_of(repo)
    env, argv = ENV, ("plan",)
    if change == "template":
        (repo / "templates" / "web" / "version.json.j2").write_text("{}\n")
    elif change == "manifest":
        web = repo / "manifests" / "web.yaml"
        web.write_text(web.read_text().replace('version: "1"', 'version: "2"'))
    elif change == "inventory":
        path = next((repo / "inventory").glob("*.yaml"))
        path.write_text(path.read_text() + "\n# a comment\n")
    elif change == "settings":
        (repo / "funops.yaml").write_text((repo / "funops.yaml").read_text() + "\n")
    elif change == "secret file":
        (repo / "secrets").mkdir(exist_ok=True)
        (repo / "secrets" / "token").write_text("s3cret\n")
        before = key_of(repo)
        (repo / "secrets" / "token").write_text("s3cret2\n")
    elif change == "new file":
        (repo / "manifests" / "new.yaml").write_text("")
    elif change == "token":
        (repo / ".funops" / "agent").mkdir(parents=True, exist_ok=True)
        (repo / ".funops" / "agent" / "node1.token").write_text("a")
        before = key_of(repo)
        (repo / ".funops" / "agent" / "node1.token").write_text("b")
    elif change == "pins":
        (repo / "agent_known_hosts").write_text("127.0.0.1:7391 sha256:00\n")
    elif change == "environment":
        manifest = repo / "manifests" / "web.yaml"
        manifest.write_text(manifest.read_text() + "# reads WEB_TOKEN\n")
        before = key_of(repo)  # the repo names it now: a secret's `fromEnv` would
        env = {**ENV, "WEB_TOKEN": "from the environment"}
    elif change == "command line":
        argv = ("plan", "--node", "node1")
    assert key_of(repo, *argv, env=env) != before


def test_another_funops_is_another_key(tmp_path: Path, monkeypatch) -> None:
    """The code's identity covers every file of the package (its version is in one of them)."""
    package = tmp_path / "funops"
    shutil.copytree(Path(keys.__file__).parent.parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(keys, "__file__", str(package / "cache" / "key.py"))
    before = keys.code_identity()
    init = package / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9'))
    assert keys.code_identity() != before


def test_a_commit_is_another_key(repo: Path) -> None:
    """The plan's header names the commit: git's view of the repo is in the key."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "one")
    one = key_of(repo)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "two")
    assert key_of(repo) != one


def test_a_variable_nothing_reads_is_not_keyed(repo: Path) -> None:
    """A CI job's id, the shell's bookkeeping: runs that differ only there share an entry; what
    funops, Python or its libraries read, and any name the repo holds, is keyed."""
    before = key_of(repo)
    assert (
        key_of(repo, env={**ENV, "GITHUB_RUN_ID": "42", "OLDPWD": "/elsewhere", "_": "/usr/bin/env"})
        == before
    )
    for read in (
        "FUNOPS_PARALLEL",
        "PYTHONHASHSEED",
        "SSL_CERT_FILE",
        "COLUMNS",
        "NO_COLOR",
        "LC_ALL",
        "https_proxy",
    ):
        assert key_of(repo, env={**ENV, read: "1"}) != before, read
    assert key_of(repo, env={**ENV, "API_TOKEN": "x"}) != before  # named in manifests/api.yaml


def test_a_virtualenv_and_bytecode_in_the_repo_are_not_hashed(repo: Path) -> None:
    before = key_of(repo)
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / ".venv" / "lib" / "x.py").write_text("pass\n")
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert key_of(repo) == before
    (repo / "venv-like").mkdir()
    (repo / "venv-like" / "x.py").write_text("pass\n")  # no pyvenv.cfg: an input like any other
    assert key_of(repo) != before


def test_a_fifo_in_the_repo_is_not_opened(repo: Path) -> None:
    os.mkfifo(repo / "pipe")
    assert key_of(repo)  # no hang: its mode is hashed, not its content


def test_a_tree_too_large_to_hash_on_every_run_has_no_key(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(keys, "_MAX_FILES", 3)
    assert keys.key(keys.request(["-C", str(repo), "plan"], ENV), ENV) is None


def test_a_fleet_of_thousands_of_agent_nodes_is_keyed(repo: Path) -> None:
    """A token file per agent node: 2,000 nodes' repo holds over 2,000 files, and is still keyed."""
    tokens = repo / ".funops" / "agent"
    tokens.mkdir(parents=True)
    for i in range(2500):
        (tokens / f"n{i:04d}.token").write_text("t\n")
    before = key_of(repo)
    (tokens / "n0042.token").write_text("u\n")
    assert key_of(repo) != before


def test_what_a_run_writes_under_dot_funops_keeps_the_key_of_a_repo_that_does_not_ignore_it(
    repo: Path,
) -> None:
    """git's view is the loader's: funops's own files (journal, caches, node records) are neither
    in it nor hashed, so a repo without a .gitignore for them still hits run after run."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one")
    before = key_of(repo)
    (repo / ".funops" / "cache" / "compiled").mkdir(parents=True)
    (repo / ".funops" / "cache" / "compiled" / "x.pickle").write_bytes(b"\0")
    (repo / ".funops" / "journal.jsonl").write_text("{}\n")
    (repo / ".funops" / "nodes").mkdir()
    (repo / ".funops" / "nodes" / "n1.json").write_text("{}\n")
    assert key_of(repo) == before
    (repo / "manifests" / "new.yaml").write_text("# untracked\n")
    assert key_of(repo) != before


# ---- the digest of a node's answer -------------------------------------------------------------------

SECRET = b"k" * 32


def answer(
    *, sha: str = "ab", active: str = "active", since: str = "Mon 01:00", free: int = 100, key: str = "a2V5",
    started: str = "2026-12-07T01:00:00+00:00", managed: str = "file:/etc/x", lock: str = "",
) -> str:  # fmt: skip
    state = {
        "managed": {managed: {"owner": "app/web", "kind": "file"}},
        "releases": {"web": [{"id": "web-1", "status": "succeeded", "started": started, "rollout": started}]},
    }
    m = probe.MARK
    return (
        f"{m}sha256\n{sha}  /etc/x\n{m}units\nId=web.service\nActiveState={active}\n"
        f"ActiveEnterTimestamp={since}\nNRestarts=0\n{m}df\nrootfs 1000 900 {free} 10% /\n"
        f"{m}state\npresent\n{base64.b64encode(json.dumps(state).encode()).decode()}\n"
        f"{m}key\n{key}\n{m}lock\n{lock}{m}end\n"
    )


def test_what_a_text_plan_does_not_read_is_left_out_of_the_digest() -> None:
    same = replay.fingerprint(0, answer(), SECRET)
    assert same is not None
    for changed in (
        answer(free=5),
        answer(since="Tue 02:00"),
        answer(started="2026-12-08T00:00:00+00:00"),
        answer(key="b3RoZXI="),
    ):
        assert replay.fingerprint(0, changed, SECRET) == same


def test_what_a_plan_compares_is_in_the_digest() -> None:
    same = replay.fingerprint(0, answer(), SECRET)
    for changed in (answer(sha="cd"), answer(active="failed"), answer(managed="file:/etc/y")):
        assert replay.fingerprint(0, changed, SECRET) != same
    assert replay.fingerprint(1, answer(), SECRET) != same
    assert replay.fingerprint(0, answer(), b"o" * 32) != same  # keyed: no guessing a secret's hash


def test_a_node_with_a_lock_is_never_cached() -> None:
    assert replay.fingerprint(0, answer(lock="aW5mbw==\nexpires=5\nnow=1\n"), SECRET) is None


def test_the_constants_it_shares_with_the_node_side_match() -> None:
    assert replay.MARK == probe.MARK
    assert str(node.PROTOCOL[1]) == replay.PROTOCOL_HEADER


def test_its_probe_request_is_the_agent_transports() -> None:
    body = b'{"task": {}}'
    for host, authority in (("127.0.0.1", "127.0.0.1:7391"), ("::1", "[::1]:7391")):
        for token in ("t0k", None):
            headers = {"Content-Type": "application/json", "X-Funops-Protocol": replay.PROTOCOL_HEADER}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            sent = exchange.request(authority, "/v1/gather", body, headers)
            assert replay._request(host, 7391, body, token) == sent


def test_each_node_gets_the_first_pin_of_its_address(tmp_path: Path) -> None:
    pins = tmp_path / "agent_known_hosts"
    pins.write_text("10.0.0.1:7391 sha256:aa\n# a note\n10.0.0.2:7391 sha256:bb\n10.0.0.1:7391 sha256:cc\n")
    shared = replay._Shared()
    assert shared.pin(str(pins), "10.0.0.1:7391") == "aa"
    assert shared.pin(str(pins), "10.0.0.2:7391") == "bb"
    assert shared.pin(str(pins), "10.0.0.3:7391") is None
    assert shared.pin(str(tmp_path / "missing"), "10.0.0.1:7391") is None


# ---- the store ----------------------------------------------------------------------------------------


def test_entries_and_the_key_are_private_to_the_user(tmp_path: Path) -> None:
    assert store.local_key(tmp_path) is None and not (tmp_path / ".funops").exists()
    secret = os.urandom(32)
    assert store.keep_key(tmp_path, secret) and not store.keep_key(tmp_path, b"o" * 32)
    assert store.local_key(tmp_path) == secret
    store.write(tmp_path, "abc", {"nodes": {}, "stdout": "out"})
    assert store.read(tmp_path, "abc") == {"nodes": {}, "stdout": "out", "format": store.FORMAT}
    folder = tmp_path / store.FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (folder / "key", store.path_of(tmp_path, "abc")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.read(tmp_path, "missing") is None


def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    for i in range(store.KEEP + 3):
        store.write(tmp_path, f"k{i}", {"nodes": {}})
        os.utime(store.path_of(tmp_path, f"k{i}"), ns=(i * 10**9, i * 10**9))
    store.write(tmp_path, "last", {"nodes": {}})
    assert len(list((tmp_path / store.FOLDER).glob("*.json"))) == store.KEEP
    assert store.read(tmp_path, "last") is not None and store.read(tmp_path, "k0") is None


def test_nothing_is_noted_unless_recording() -> None:
    import funops.cache.record as record

    assert not record.active
    noop(object(), object(), True)  # not even looked at
    assert record.pending is None


def test_a_recorded_plans_own_connections_rest_once_gathered(tmp_path: Path, monkeypatch) -> None:
    """The connections a recorded plan makes for itself rest as make_plan's own do (make_plan calls
    `rest_once_gathered` after each node's gather); those lent by apply stay open for its run."""
    from types import SimpleNamespace

    import funops.cache.record as record
    from funops.model.inventory import Node
    from funops.settings import Settings
    from funops.transports import Connections

    node = Node.model_validate({"name": "l1", "address": "127.0.0.1", "transport": "local"})
    project = SimpleNamespace(nodes={"l1": node}, settings=Settings(), root=tmp_path)
    monkeypatch.setattr(record, "active", True)
    plans = record.connect(project)
    assert isinstance(plans("l1"), record._Watched)
    assert isinstance(plans.rest_once_gathered.__self__, Connections)
    applys = Connections(project.nodes, project.settings, tmp_path)
    lent = record.connect(project, applys)
    assert isinstance(lent("l1"), record._Watched)
    assert not hasattr(lent, "rest_once_gathered")
