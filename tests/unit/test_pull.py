"""Pull mode end to end on one simulated node: `publish` to a directory store, then the node's polls
(the node is a directory with the simulated fleet's systemctl and nginx shims, the engine is real):
converge, a no-op poll, a re-signed index, and each index or bundle a node must refuse."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.fleet.simlocal import SimulatedNode
from bench.pull.repo import credentials, prepare_root
from funops.load.loader import load_project
from funops.pull import index_key, keys
from funops.pull.node import PullConfig, poll
from funops.pull.publish import publish
from funops.pull.store import DirectoryStore

APP = """apiVersion: funops/v1
kind: Application
metadata: {name: hello}
spec:
  type: systemd
  selector: {}
  version: "VERSION"
  command: /usr/bin/python3 -m http.server --bind {{ node.bind }} --directory /srv/hello 8090
  port: 8090
  env:
    GREETING: "hello from {{ node.name }}"
    API_TOKEN: {fromFile: secrets/api-token}
  configFiles:
    - {path: /srv/hello/health, content: "ok\\n"}
  healthCheck: {type: process, interval: 0.2, retries: 150}  # a loaded machine: up to 30 s
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    repo, root, store = tmp_path / "repo", tmp_path / "node", tmp_path / "store"
    (repo / "inventory").mkdir(parents=True)
    (repo / "manifests").mkdir()
    (repo / "secrets").mkdir()
    (repo / "secrets" / "api-token").write_text("s3cret-token-of-n1\n")
    (repo / "funops.yaml").write_text(f"apiVersion: funops/v1\nproject: pulltest\npull: {{store: {store}}}\n")
    (repo / "inventory" / "nodes.yaml").write_text(
        "nodes:\n  - name: n1\n    address: 127.0.0.1\n    transport: agent\n"
        "    agent: {url: 'https://127.0.0.1:7391'}\n"
        f"    pull: {{store: 'file://{store}', cohort: canary, intervalSeconds: 30}}\n"
    )
    (repo / "manifests" / "hello.yaml").write_text(APP.replace("VERSION", "1"))
    # The publishing key pair, and the node's agent key and certificate (what `agent install` makes
    # there), recorded and pinned in the repo.
    creds = tmp_path / "creds"
    fingerprint = credentials(creds)
    prepare_root(root, creds)
    (repo / "certs" / "agents").mkdir(parents=True)
    (repo / ".funops").mkdir()
    shutil.copy(creds / "publish.pub", repo / "certs" / "pull-signing.pub")
    shutil.copy(creds / "publish.key", repo / ".funops" / "pull-signing.key")
    shutil.copy(creds / "agent.crt", repo / "certs" / "agents" / "n1.pem")
    (repo / "agent_known_hosts").write_text(f"127.0.0.1:7391 sha256:{fingerprint}\n")
    return repo, root, store


def _poll(repo: Path, root: Path, store: Path, now: dt.datetime | None = None) -> dict:
    project = load_project(repo, None)
    config = PullConfig(node="n1", store=f"file://{store}", root=str(root), interval=30)
    return poll(config, now, SimulatedNode(project.nodes["n1"], root))


def test_a_published_revision_converges_the_node_and_a_no_op_poll_does_nothing(
    setup: tuple[Path, Path, Path],
) -> None:
    repo, root, store = setup
    done = publish(load_project(repo, None), DirectoryStore(store))
    assert [(p.node, p.generation, p.changed, p.cohort) for p in done] == [("n1", 1, True, "canary")]
    sealed = next((store / "nodes/n1/bundles").iterdir()).read_bytes()
    assert b"s3cret-token-of-n1" not in sealed  # sealed to the node's certificate
    status = _poll(repo, root, store)
    assert (status["result"], status["generation"], status["attempt"]["status"]) == (
        "converged",
        1,
        "succeeded",
    )
    assert (root / "srv/hello/health").read_text() == "ok\n"
    assert 'API_TOKEN="s3cret-token-of-n1"' in (root / "etc/funops/apps/hello.env").read_text()
    state = json.loads((root / "var/lib/funops/state.json").read_text())
    assert state["apps"]["hello"]["version"] == "1"
    assert (root / "var/lib/funops/pull.json").exists()

    again = _poll(repo, root, store)  # the index did not change: nothing is fetched, nothing runs
    assert (again["lastPollFetch"], again["result"], again["generation"]) == ("not-modified", "converged", 1)

    # Published again, unchanged: the same generation and bundle, the index signed anew (notAfter),
    # a while later (within the same second the index would be the same bytes: nothing to fetch).
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    (done,) = publish(load_project(repo, None), DirectoryStore(store), now=later)
    assert (done.generation, done.changed) == (1, False)
    resigned = _poll(repo, root, store)  # fetched, and not converged again (the same attempt)
    assert (resigned["lastPollFetch"], resigned["result"]) == ("fetched", "converged")
    assert resigned["attempt"] == status["attempt"]


def test_the_node_refuses_what_it_must_not_apply(setup: tuple[Path, Path, Path]) -> None:
    repo, root, store = setup
    publish(load_project(repo, None), DirectoryStore(store))
    assert _poll(repo, root, store)["generation"] == 1
    first = (store / index_key("n1")).read_bytes()

    (repo / "manifests" / "hello.yaml").write_text(APP.replace("VERSION", "2"))
    (done,) = publish(load_project(repo, None), DirectoryStore(store))
    assert done.generation == 2
    # A tampered bundle: its digest is not the signed one.
    index = json.loads((store / index_key("n1")).read_text())["index"]
    bundle = store / index["bundle"]
    good = bundle.read_bytes()
    bundle.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    failed = _poll(repo, root, store)
    assert failed["result"] == "failed" and "sha256" in failed["error"], failed
    bundle.write_bytes(good)
    assert _poll(repo, root, store)["generation"] == 2  # a failed poll keeps no ETag: the next one retries

    # A replayed older index (validly signed): refused, the node stays on generation 2.
    (store / index_key("n1")).write_bytes(first)
    replay = _poll(repo, root, store)
    assert (replay["result"], replay["generation"]) == ("refused", 2) and "older" in replay["error"]

    # An index signed by another key.
    other, _ = keys.generate()
    (repo / ".funops" / "pull-signing.key").write_bytes(other)
    with pytest.raises(Exception, match="not the pair of"):
        publish(load_project(repo, None), DirectoryStore(store))
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from funops.pull import index as idx

    forged = idx.Index.of_doc({**index, "generation": 3})
    (store / index_key("n1")).write_bytes(idx.signed(forged, load_pem_private_key(other, None).sign))  # type: ignore[union-attr]
    assert "bad signature" in _poll(repo, root, store)["error"]

    # An expired index (published long ago, never renewed).
    (repo / ".funops" / "pull-signing.key").unlink()
    os.environ.pop("FUNOPS_PULL_SIGNING_KEY", None)
    with pytest.raises(Exception, match="no publishing key"):
        publish(load_project(repo, None), DirectoryStore(store))


def test_an_expired_index_and_an_unreachable_store(setup: tuple[Path, Path, Path]) -> None:
    repo, root, store = setup
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    publish(load_project(repo, None), DirectoryStore(store), now=past)
    expired = _poll(repo, root, store)
    assert expired["result"] == "refused" and "expired" in expired["error"]
    assert not (root / "srv/hello/health").exists()
    publish(load_project(repo, None), DirectoryStore(store))
    assert _poll(repo, root, store)["result"] == "converged"
    (store / index_key("n1")).unlink()
    gone = _poll(repo, root, store)  # the node keeps what it runs, and says it cannot reach the store
    assert (gone["result"], gone["generation"]) == ("converged", 1) and "cannot reach the store" in gone[
        "storeError"
    ]


def test_an_agent_in_pull_mode_serves_reads_and_refuses_pushed_changes(tmp_path: Path) -> None:
    from funops.tasks import model as m
    from funops.transports import TransportError
    from tests.unit.agentproc import AgentProcess

    pull_config = tmp_path / "pull.json"
    pull_config.write_text("{}")
    agent = AgentProcess(tmp_path, "127.0.0.1", pullConfig=str(pull_config))
    agent.start()
    transport = agent.transport()
    try:
        assert transport.call(m.ReadFiles((str(pull_config),), 1000), timeout=10).ok  # a read: served
        with pytest.raises(TransportError, match="409: this node is in pull mode"):
            transport.run_tasks([m.DaemonReload()])
        pull_config.unlink()  # no longer in pull mode
        results, _ = transport.run_tasks(
            [m.RemoveFile(str(tmp_path / "nothing-here"), str(tmp_path / "backup"))]
        )
        assert results[0].exit_code == 0
    finally:
        transport.close()
        agent.stop()


def test_status_tells_converged_pending_stale_failed_and_not_reporting(
    setup: tuple[Path, Path, Path],
) -> None:
    from funops.pull import status as st

    repo, _, _ = setup
    project = load_project(repo, None)
    now = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    fresh = (now - dt.timedelta(seconds=40)).isoformat()
    doc = {"lastPoll": fresh, "lastContact": fresh, "intervalSeconds": 30, "splaySeconds": 10,
           "result": "converged", "generation": 4, "revision": "abc"}  # fmt: skip

    def state(published: int | None, **changes: object) -> str:
        return st.judge(project, "n1", published, {**doc, **changes}, now).state

    assert state(4) == st.CONVERGED
    assert state(5) == st.PENDING  # published, not polled yet
    assert state(5, result="failed", error="health") == st.FAILED
    assert state(4, result="refused", error="bad signature") == st.FAILED
    old = (now - dt.timedelta(seconds=71)).isoformat()  # over 2 intervals + splay ago
    assert state(4, lastContact=old, storeError="cannot reach the store") == st.STALE
    assert st.judge(project, "n1", 4, None, now).state == st.NOT_REPORTING
    assert st.settled([st.judge(project, "n1", 4, doc, now)])


def test_an_s3_store_publishes_and_the_node_polls_it_over_http(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3 against an S3-compatible server on loopback (moto's, over real HTTP); the node reads the
    bucket's objects over plain HTTP with If-None-Match, as it would read S3's endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    from funops.pull.store import open_store

    repo, root, _ = setup
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._server.server_port}"  # type: ignore[union-attr]
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="fleet")
        # What the nodes read is public (everything is signed, bundles are sealed): a read-only policy.
        public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                  "Resource": "arn:aws:s3:::fleet/prod/*"}  # fmt: skip
        s3.put_bucket_policy(
            Bucket="fleet", Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]})
        )
        store = open_store("s3://fleet/prod", repo)
        (done,) = publish(load_project(repo, None), store)
        assert done.generation == 1 and store.read(index_key("n1")) is not None
        project = load_project(repo, None)
        config = PullConfig(node="n1", store=f"{endpoint}/fleet/prod", root=str(root))
        status = poll(config, None, SimulatedNode(project.nodes["n1"], root))
        assert (status["result"], status["generation"]) == ("converged", 1), status
        again = poll(config, None, SimulatedNode(project.nodes["n1"], root))
        assert again["lastPollFetch"] == "not-modified"  # S3 answers If-None-Match with a 304
    finally:
        server.stop()


def test_the_waves_of_one_commit_share_its_generation(setup: tuple[Path, Path, Path]) -> None:
    repo, _, store = setup
    inventory = repo / "inventory" / "nodes.yaml"
    inventory.write_text(
        inventory.read_text() + "  - name: n2\n    address: 127.0.0.2\n    transport: agent\n"
        "    agent: {url: 'https://127.0.0.2:7391'}\n"
        f"    pull: {{store: 'file://{store}', cohort: main}}\n"
    )
    (repo / "certs/agents/n2.pem").write_bytes((repo / "certs/agents/n1.pem").read_bytes())
    pins = repo / "agent_known_hosts"
    pins.write_text(pins.read_text() + pins.read_text().replace("127.0.0.1:", "127.0.0.2:"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    (repo / ".gitignore").write_text(".funops/\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    assert [p.generation for p in publish(load_project(repo, None), DirectoryStore(store), "canary")] == [1]
    assert [p.generation for p in publish(load_project(repo, None), DirectoryStore(store), "main")] == [1]
    (repo / "manifests" / "hello.yaml").write_text(APP.replace("VERSION", "2"))
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    assert [p.generation for p in publish(load_project(repo, None), DirectoryStore(store), "canary")] == [2]
    assert [p.generation for p in publish(load_project(repo, None), DirectoryStore(store), "main")] == [2]


def test_a_replaced_index_never_keeps_its_etag_on_a_web_server(tmp_path: Path) -> None:
    """nginx's ETag is mtime (seconds) and size: two same-size versions in one second must differ."""
    store = DirectoryStore(tmp_path)
    store.write("nodes/n1/latest.json", b"a" * 17)
    first = (tmp_path / "nodes/n1/latest.json").stat().st_mtime
    store.write("nodes/n1/latest.json", b"b" * 17)
    assert int((tmp_path / "nodes/n1/latest.json").stat().st_mtime) > int(first)
