"""Pull mode end to end on one simulated node: `publish` to a directory store, then the node's polls
(the node is a directory with the simulated fleet's systemctl and nginx shims, the engine is real):
converge, a no-op poll, a re-signed index, and each index or bundle a node must refuse."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.fleet.simlocal import SimulatedNode
from bench.pull.repo import credentials, prepare_root
from funops.errors import FunopsError
from funops.load.loader import load_project
from funops.node import index as idx
from funops.node import index_key
from funops.node.poll import PullConfig, poll
from funops.pull import keys
from funops.pull import status as st
from funops.pull.converge import converge_index
from funops.pull.publish import Published, publish
from funops.pull.status import PullStatus, judge
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
    return poll(config, now, SimulatedNode(project.nodes["n1"], root), converge=converge_index)


def test_a_published_revision_converges_the_node_and_a_no_op_poll_does_nothing(
    setup: tuple[Path, Path, Path],
) -> None:
    repo, root, store = setup
    signed_at = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    done = publish(load_project(repo, None), DirectoryStore(store))
    first = done[0].generation
    assert [(p.node, p.changed, p.cohort) for p in done] == [("n1", True, "canary")]
    assert first >= signed_at  # the signer's clock in ms, not a count kept in the store
    sealed = next((store / "nodes/n1/bundles").iterdir()).read_bytes()
    assert b"s3cret-token-of-n1" not in sealed  # sealed to the node's certificate
    status = _poll(repo, root, store)
    assert (status["result"], status["generation"], status["attempt"]["status"]) == (
        "converged",
        first,
        "succeeded",
    )
    assert (root / "srv/hello/health").read_text() == "ok\n"
    assert 'API_TOKEN="s3cret-token-of-n1"' in (root / "etc/funops/apps/hello.env").read_text()
    state = json.loads((root / "var/lib/funops/state.json").read_text())
    assert state["apps"]["hello"]["version"] == "1"
    assert (root / "var/lib/funops/pull.json").exists()

    again = _poll(repo, root, store)  # the index did not change: nothing is fetched, nothing runs
    assert (again["lastPollFetch"], again["result"]) == ("not-modified", "converged")
    assert again["generation"] == first

    # Published again, unchanged: a new generation, the same bundle, the index signed anew (notAfter).
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    (done,) = publish(load_project(repo, None), DirectoryStore(store), now=later)
    assert done.generation > first and not done.changed
    assert len(list((store / "nodes/n1/bundles").iterdir())) == 1
    resigned = _poll(repo, root, store)  # fetched, taken, not converged again (the same attempt)
    assert (resigned["lastPollFetch"], resigned["result"]) == ("fetched", "converged")
    assert (resigned["generation"], resigned["attempt"]) == (done.generation, status["attempt"])


def test_the_node_refuses_what_it_must_not_apply(setup: tuple[Path, Path, Path]) -> None:
    repo, root, store = setup
    (one,) = publish(load_project(repo, None), DirectoryStore(store))
    assert _poll(repo, root, store)["generation"] == one.generation
    first = (store / index_key("n1")).read_bytes()

    (repo / "manifests" / "hello.yaml").write_text(APP.replace("VERSION", "2"))
    (done,) = publish(load_project(repo, None), DirectoryStore(store))
    assert done.generation > one.generation
    # A tampered bundle: its digest is not the signed one.
    index = json.loads((store / index_key("n1")).read_text())["index"]
    bundle = store / index["bundle"]
    good = bundle.read_bytes()
    bundle.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    failed = _poll(repo, root, store)
    assert failed["result"] == "failed" and "sha256" in failed["error"], failed
    bundle.write_bytes(good)
    assert _poll(repo, root, store)["generation"] == done.generation  # a failed poll keeps no ETag

    # A replayed older index (validly signed): refused, the node stays on the second generation.
    (store / index_key("n1")).write_bytes(first)
    replay = _poll(repo, root, store)
    assert (replay["result"], replay["generation"]) == ("refused", done.generation)
    assert "replay: generation" in replay["error"]

    # An index signed by another key.
    other, _ = keys.generate()
    (repo / ".funops" / "pull-signing.key").write_bytes(other)
    with pytest.raises(Exception, match="not the pair of"):
        publish(load_project(repo, None), DirectoryStore(store))
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from funops.node import index as idx

    forged = idx.Index.of_doc({**index, "generation": done.generation + 1})
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
    converged = _poll(repo, root, store)
    assert converged["result"] == "converged"
    applied = converged["generation"]
    (store / index_key("n1")).unlink()
    gone = _poll(repo, root, store)  # the node keeps what it runs, and says it cannot reach the store
    assert (gone["result"], gone["generation"]) == ("converged", applied)
    assert "cannot reach the store" in gone["storeError"]


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
    from funops.node import index as idx
    from funops.pull import status as st

    repo, _, _ = setup
    project = load_project(repo, None)
    now = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    fresh = (now - dt.timedelta(seconds=40)).isoformat()
    doc = {"lastPoll": fresh, "lastContact": fresh, "intervalSeconds": 30, "splaySeconds": 10,
           "result": "converged", "generation": 4, "digest": "d4", "revision": "abc"}  # fmt: skip

    def index(generation: int, content: str = "d4") -> idx.Index:
        return idx.Index(
            node="n1", project="pulltest", generation=generation, revision="abc", ref=None, bundle="b",
            bundle_sha256="s", digest=content, cohort="canary", published_at=fresh, not_after=fresh,
        )  # fmt: skip

    def state(published: int, content: str = "d4", **changes: object) -> str:
        return st.judge(project, "n1", index(published, content), {**doc, **changes}, now).state

    assert state(4) == st.CONVERGED
    assert state(5, "d5") == st.PENDING  # published, not polled yet
    assert state(5) == st.CONVERGED  # the content applied, signed again: nothing for the node to do
    assert state(3) == st.FAILED  # the store holds an older index than the node applied: a replay
    assert state(4, "d5") == st.FAILED  # the applied generation, other content: never converged
    assert state(4, digest=None) == st.PENDING  # a node that recorded no digest yet: it will converge
    assert state(5, result="failed", error="health") == st.FAILED
    assert state(4, result="refused", error="bad signature") == st.FAILED
    old = (now - dt.timedelta(seconds=71)).isoformat()  # over 2 intervals + splay ago
    assert state(4, lastContact=old, storeError="cannot reach the store") == st.STALE
    assert st.judge(project, "n1", index(4), None, now).state == st.NOT_REPORTING
    assert st.settled([st.judge(project, "n1", index(4), doc, now)])


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
        assert store.read(index_key("n1")) is not None
        project = load_project(repo, None)
        config = PullConfig(node="n1", store=f"{endpoint}/fleet/prod", root=str(root))
        status = poll(config, None, SimulatedNode(project.nodes["n1"], root), converge=converge_index)
        assert (status["result"], status["generation"]) == ("converged", done.generation), status
        again = poll(config, None, SimulatedNode(project.nodes["n1"], root), converge=converge_index)
        assert again["lastPollFetch"] == "not-modified"  # S3 answers If-None-Match with a 304
        (resigned,) = publish(load_project(repo, None), store)  # its bundle found there (HEAD): kept
        assert not resigned.changed and resigned.generation > done.generation
        bundle = json.loads(store.read(index_key("n1")) or b"{}")["index"]["bundle"]
        s3.delete_object(Bucket="fleet", Key=f"prod/{bundle}")
        (lost,) = publish(load_project(repo, None), store)  # gone from the bucket: sealed again
        assert lost.changed and store.has(json.loads(store.read(index_key("n1")) or b"{}")["index"]["bundle"])
    finally:
        server.stop()


def test_each_wave_of_one_commit_takes_a_newer_generation(setup: tuple[Path, Path, Path]) -> None:
    """A wave never reuses the generation of an earlier publish (sharing one across cohorts would let a
    restored store hand a node an older generation than it applied); its index names the commit."""
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
    generations = []
    for commit in ("one", "two"):
        if commit == "two":
            (repo / "manifests" / "hello.yaml").write_text(APP.replace("VERSION", "2"))
            subprocess.run([*git, "commit", "-qam", "two"], check=True)
        head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
        for cohort, node in (("canary", "n1"), ("main", "n2")):
            (done,) = publish(load_project(repo, None), DirectoryStore(store), cohort)
            generations.append(done.generation)
            index = json.loads((store / index_key(node)).read_text())["index"]
            assert (index["generation"], index["revision"]) == (done.generation, head.stdout.strip())
    assert generations == sorted(set(generations))  # each newer than the one before


def test_a_replaced_index_never_keeps_its_etag_on_a_web_server(tmp_path: Path) -> None:
    """nginx's ETag is mtime (seconds) and size: two same-size versions in one second must differ."""
    store = DirectoryStore(tmp_path)
    store.write("nodes/n1/latest.json", b"a" * 17)
    first = (tmp_path / "nodes/n1/latest.json").stat().st_mtime
    store.write("nodes/n1/latest.json", b"b" * 17)
    assert int((tmp_path / "nodes/n1/latest.json").stat().st_mtime) > int(first)


def _version(root: Path) -> str:
    return json.loads((root / "var/lib/funops/state.json").read_text())["apps"]["hello"]["version"]


def _publish_version(repo: Path, store: Path, version: str) -> Published:
    (repo / "manifests" / "hello.yaml").write_text(APP.replace("VERSION", version))
    (done,) = publish(load_project(repo, None), DirectoryStore(store))
    return done


def _judge(repo: Path, store: Path, doc: dict) -> PullStatus:
    """`funops status`'s verdict on n1: the store's index against what the node's agent reports."""
    published = idx.Index.of_doc(json.loads((store / index_key("n1")).read_text())["index"])
    return judge(load_project(repo, None), "n1", published, doc)


def test_a_store_restored_from_an_older_copy_never_freezes_the_node(setup: tuple[Path, Path, Path]) -> None:
    """Issue 28: a restored store's next publish took the next number after its indexes, one the node
    had already applied with other content: the node skipped it and status said converged."""
    repo, root, store = setup
    _publish_version(repo, store, "1")
    assert _poll(repo, root, store)["result"] == "converged"
    old = store.with_name("old-store")
    shutil.copytree(store, old)
    second = _publish_version(repo, store, "2")
    converged = _poll(repo, root, store)
    assert converged["generation"] == second.generation and _version(root) == "2"

    shutil.rmtree(store)
    shutil.copytree(old, store)  # restored from the copy, then the next publish
    third = _publish_version(repo, store, "3")
    assert third.generation > second.generation
    assert _judge(repo, store, converged).state == st.PENDING  # not polled yet: not converged
    polled = _poll(repo, root, store)
    assert (polled["result"], polled["generation"], _version(root)) == ("converged", third.generation, "3")
    assert _judge(repo, store, polled).state == st.CONVERGED

    shutil.rmtree(store)
    shutil.copytree(old, store)  # restored again: the first publish's index, validly signed
    replayed = _poll(repo, root, store)
    assert replayed["result"] == "refused" and "replay: " in replayed["error"], replayed
    assert _judge(repo, store, replayed).state == st.FAILED
    # The repo back at the content the restored store holds: its bundle is kept, its index signed
    # again with a new generation, and the node (on other content) converges it.
    reverted = _publish_version(repo, store, "1")
    assert not reverted.changed and reverted.generation > third.generation
    polled = _poll(repo, root, store)
    assert (polled["result"], polled["generation"], _version(root)) == ("converged", reverted.generation, "1")
    assert _judge(repo, store, polled).state == st.CONVERGED


def test_a_wiped_store_then_a_publish_converges_the_node(setup: tuple[Path, Path, Path]) -> None:
    repo, root, store = setup
    first = _publish_version(repo, store, "1")
    assert _poll(repo, root, store)["generation"] == first.generation
    shutil.rmtree(store)  # a new store: nothing in it says what was published before
    again = _publish_version(repo, store, "2")
    assert again.generation > first.generation
    polled = _poll(repo, root, store)
    assert (polled["result"], polled["generation"], _version(root)) == ("converged", again.generation, "2")


def test_a_bundle_lost_from_the_store_is_sealed_again_by_an_unchanged_publish(
    setup: tuple[Path, Path, Path],
) -> None:
    """The digest in the store's index says the bundle is still right, but the bundle itself is gone
    (deleted, a store restored without it): the index must not name a missing file."""
    repo, root, store = setup
    first = _publish_version(repo, store, "1")
    assert _poll(repo, root, store)["generation"] == first.generation
    for bundle in (store / "nodes/n1/bundles").iterdir():
        bundle.unlink()
    again = _publish_version(repo, store, "1")
    assert again.changed and again.generation > first.generation
    index = json.loads((store / index_key("n1")).read_text())["index"]
    assert (store / index["bundle"]).is_file()
    polled = _poll(repo, root, store)
    assert (polled["result"], polled["generation"], _version(root)) == ("converged", again.generation, "1")


def test_a_replayed_index_is_refused_and_status_says_so_even_without_pull_json(
    setup: tuple[Path, Path, Path],
) -> None:
    repo, root, store = setup
    _publish_version(repo, store, "1")
    _poll(repo, root, store)
    older = (store / index_key("n1")).read_bytes()
    second = _publish_version(repo, store, "2")
    converged = _poll(repo, root, store)
    assert converged["generation"] == second.generation

    (store / index_key("n1")).write_bytes(older)  # put back: validly signed, not expired
    before_poll = _judge(repo, store, converged)
    assert before_poll.state == st.FAILED and (before_poll.detail or "").startswith("replay: "), before_poll
    refused = _poll(repo, root, store)
    assert refused["result"] == "refused" and "replay: " in refused["error"]
    assert _judge(repo, store, refused).state == st.FAILED

    # The node's status file lost: the replay floor is kept apart (pull/floor.json), still refused.
    (root / "var/lib/funops/pull.json").unlink()
    without = _poll(repo, root, store)
    assert without["result"] == "refused" and "replay: " in without["error"], without
    assert _version(root) == "2"
    # And the floor file lost instead: pull.json keeps the floor too, and the poll writes the file again.
    (root / "var/lib/funops/pull/floor.json").unlink()
    assert "replay: " in _poll(repo, root, store)["error"]
    floor = json.loads((root / "var/lib/funops/pull/floor.json").read_text())
    assert floor == {"generation": second.generation}


def _serve(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_an_oversize_bundle_or_index_is_refused(
    setup: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """publish refuses a bundle over the cap; through a web server on loopback, the node refuses an
    index or bundle over it before the body is read into memory."""
    from funops.node import MAX_INDEX_BYTES
    from funops.node import poll as pull_node
    from funops.pull import publish as pull_publish

    repo, root, store = setup
    monkeypatch.setattr(pull_publish, "MAX_BUNDLE_BYTES", 100)  # publish refuses what no node would read
    with pytest.raises(FunopsError, match=r"node n1: its sealed bundle is \d+ bytes, above the 100"):
        publish(load_project(repo, None), DirectoryStore(store))
    monkeypatch.undo()
    _publish_version(repo, store, "1")
    server, url = _serve(store)
    try:
        project = load_project(repo, None)
        config = PullConfig(node="n1", store=url, root=str(root), interval=30)
        monkeypatch.setattr(pull_node, "MAX_BUNDLE_BYTES", 100)  # a real bundle is some KiB
        failed = poll(config, None, SimulatedNode(project.nodes["n1"], root), converge=converge_index)
        assert failed["result"] == "failed" and "a node reads at most 100 bytes" in failed["error"], failed
        assert not (root / "srv/hello/health").exists()
        monkeypatch.undo()

        index = store / index_key("n1")
        index.write_bytes(index.read_bytes() + b" " * MAX_INDEX_BYTES)  # still valid JSON, and huge
        refused = poll(config, None, SimulatedNode(project.nodes["n1"], root), converge=converge_index)
        assert refused["result"] == "refused" and f"at most {MAX_INDEX_BYTES} bytes" in refused["error"]
    finally:
        server.shutdown()
        server.server_close()
