"""Certificates (issue 27), the fleet side: what is declared, where it lives on the nodes, what the
gather reads back, and what the plan decides per certificate across its edge nodes. The nodes here
are the local transport's directories, holding certificates made by a throwaway CA."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from funops.certificates import Served, decide
from funops.compile.compiler import compile_project
from funops.gather.probe import MARK, LiveFacts
from funops.kinds import cert as kind
from funops.load.loader import load_project
from funops.model.manifests import CertificateSpec
from funops.plan.planner import make_plan
from funops.plan.show import certificate_lines
from funops.schemas import schema_for

from .certs import make_certificate, place, with_certificate

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
NAMES = ["shop.test", "www.shop.test"]


def served(serial: str, days: float, names: list[str] = NAMES) -> Served:
    return Served(serial, tuple(names), NOW + dt.timedelta(days=days))


@pytest.mark.parametrize(
    ("nodes", "action", "reason", "serial"),
    [
        ({"e1": None, "e2": None}, "issue", "issue (served by no node yet)", kind.NEW),
        ({"e1": served("aa", 60), "e2": served("aa", 60)}, "none", "up to date", "aa"),
        (
            {"e1": served("aa", 12.5), "e2": served("aa", 12.5)},
            "renew",
            "renew (expires in 12 days)",
            kind.NEW,
        ),
        ({"e1": served("aa", -2), "e2": None}, "renew", "renew (expired 2 days ago)", kind.NEW),
        (
            {"e1": served("aa", 60, ["shop.test"]), "e2": served("aa", 60, ["shop.test"])},
            "reissue",
            "reissue (names changed: +www.shop.test)",
            kind.NEW,
        ),
        ({"e1": served("aa", 60), "e2": served("bb", 40)}, "deploy", "deploy aa to e2 (from e1)", "aa"),
        ({"e1": served("aa", 60), "e2": None}, "deploy", "deploy aa to e2 (from e1)", "aa"),
    ],
)
def test_what_a_certificate_needs_from_what_its_nodes_serve(
    nodes: dict[str, Served | None], action: str, reason: str, serial: str
) -> None:
    got = decide("shop", NAMES, 30 * 86400, nodes, NOW)
    assert got[:3] == (action, reason, serial)


def test_a_changed_key_type_reissues() -> None:
    nodes = {"e1": Served("aa", tuple(NAMES), NOW + dt.timedelta(days=60), "rsa2048")}
    got = decide("shop", NAMES, 30 * 86400, nodes, NOW, "ecdsa-p256")
    assert got[:2] == ("reissue", "reissue (key type changed: rsa2048 → ecdsa-p256)")
    assert decide("shop", NAMES, 30 * 86400, nodes, NOW, "rsa2048")[0] == "none"


def test_a_wildcard_covers_one_label_only() -> None:
    spec = CertificateSpec.model_validate(
        {"domains": ["*.shop.test"], "issuer": "x", "challenge": "dns-01", "dns": "y"}
    )
    assert spec.covers("a.shop.test") and not spec.covers("a.b.shop.test") and not spec.covers("shop.test")


def test_each_edge_node_gets_the_certificate_and_its_site_reads_current(example: Path) -> None:
    project = load_project(with_certificate(example))
    desired = compile_project(project)
    for node in ("node1", "node2"):
        res = desired.nodes[node].resource("cert:shop")
        assert res is not None and res.desired == {"serial": kind.NEW, "domains": NAMES}
        site = desired.nodes[node].resource("file:/etc/nginx/conf.d/funops-shop.conf")
        assert site is not None and site.content is not None
        text = site.content.decode()
        assert "ssl_certificate /etc/funops/certs/shop/current/fullchain.pem;" in text
        assert "ssl_certificate_key /etc/funops/certs/shop/current/privkey.pem;" in text
        # HTTP-01 works with the redirect to https: the challenge location is in the port-80 server.
        http_server = text.split("server {")[1]
        assert "location ^~ /.well-known/acme-challenge/" in http_server
        assert "root /var/lib/funops-acme;" in http_server and "return 301" in http_server
    assert desired.nodes["node3"].resource("cert:shop") is None


def test_the_probe_reads_the_current_certificate_and_never_the_key(tmp_path: Path) -> None:
    key, chain, serial = make_certificate(NAMES, days=40)
    node = tmp_path / "node"
    base = node / "etc/funops/certs/shop"
    (base / serial).mkdir(parents=True)
    (base / serial / "fullchain.pem").write_bytes(chain)
    (base / serial / "privkey.pem").write_bytes(key)
    (base / "current").symlink_to(serial)
    import subprocess

    root = str(node)
    script = kind.KIND.probe(["shop", "other"], lambda p: root + p)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert base64.b64encode(key).decode()[:40] not in out and "PRIVATE" not in out
    sections = {"certs": [line for line in out.splitlines() if not line.startswith(MARK)]}
    found = kind.KIND.parse(sections, lambda p: p.removeprefix(root), LiveFacts())
    assert set(found) == {"shop"}
    info = found["shop"]
    assert (info["serial"], info["domains"], info["link"], info["versions"]) == (
        serial,
        NAMES,
        serial,
        [serial],
    )
    assert dt.datetime.fromisoformat(info["notAfter"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=39)
    assert info["keyType"] == "ecdsa-p256"


def test_an_unreadable_current_certificate_is_a_fact_not_a_crash() -> None:
    found = kind.KIND.parse({"certs": ["/etc/funops/certs/shop|ab||bm90IGEgY2VydA=="]}, str, LiveFacts())
    assert "cannot be read" in found["shop"]["error"]
    facts = LiveFacts(live={"cert": found})
    assert kind.KIND.live("shop", facts) == {"serial": "(unreadable)", "domains": None}


def _plan(repo: Path):
    project = load_project(repo)
    return make_plan(project, ["node1", "node2"])


def test_plan_issues_a_certificate_no_node_serves(example: Path) -> None:
    plan = _plan(with_certificate(example))
    (cert,) = plan.doc.certificates
    assert (cert.action, cert.reason, cert.serial) == ("issue", "issue (served by no node yet)", kind.NEW)
    for node in plan.doc.nodes:
        (change,) = [c for c in node.changes if c.id == "cert:shop"]
        assert change.action == "create"
    assert certificate_lines(plan.doc) == [
        "shop (shop.test, www.shop.test): issue (served by no node yet) · issuer pebble, http-01 · "
        "node1, node2"
    ]


def test_plan_is_quiet_when_both_nodes_serve_one_fresh_certificate(example: Path) -> None:
    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=80)
    for node in ("node1", "node2"):
        place(repo, node, "shop", key, chain, serial)
    plan = _plan(repo)
    (cert,) = plan.doc.certificates
    assert (cert.action, cert.serial, cert.mismatch) == ("none", serial, False)
    assert cert.nodes["node1"] is not None and cert.nodes["node1"].days_left == 79
    for node in plan.doc.nodes:
        assert not [c for c in node.changes if c.id == "cert:shop"]
    assert certificate_lines(plan.doc) == []


def test_plan_renews_inside_the_window_and_deploys_to_a_mismatched_node(example: Path) -> None:
    repo = with_certificate(example, renew_before="30d")
    key, chain, serial = make_certificate(NAMES, days=12.5)
    for node in ("node1", "node2"):
        place(repo, node, "shop", key, chain, serial)
    (cert,) = _plan(repo).doc.certificates
    assert (cert.action, cert.reason) == ("renew", "renew (expires in 12 days)")

    key2, chain2, serial2 = make_certificate(NAMES, days=80)
    place(repo, "node1", "shop", key2, chain2, serial2)
    plan = _plan(repo)
    (cert,) = plan.doc.certificates
    assert (cert.action, cert.serial, cert.mismatch) == ("deploy", serial2, True)
    assert cert.reason == f"deploy {serial2} to node2 (from node1)"
    changes = {n.name: [c for c in n.changes if c.id == "cert:shop"] for n in plan.doc.nodes}
    assert changes["node1"] == []
    (change,) = changes["node2"]
    assert [(f.field, f.old, f.new) for f in change.fields] == [("serial", serial, serial2)]


def test_plan_reissues_when_the_names_change(example: Path) -> None:
    repo = with_certificate(example)
    key, chain, serial = make_certificate(["shop.test"], days=80)
    for node in ("node1", "node2"):
        place(repo, node, "shop", key, chain, serial)
    (cert,) = _plan(repo).doc.certificates
    assert (cert.action, cert.reason) == ("reissue", "reissue (names changed: +www.shop.test)")


def test_the_key_appears_in_no_plan_output(example: Path) -> None:
    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=5)
    place(repo, "node1", "shop", key, chain, serial)
    plan = _plan(repo)
    from funops.plan.show import to_markdown

    body = "".join(key.decode().splitlines()[1:-1])
    for text in (plan.doc.to_json(), to_markdown(plan.doc)):
        assert body[:40] not in text and "PRIVATE KEY" not in text


# ---- the ACME phase of apply: an order stands in for the CA here (the lab runs pebble) ----------------


def _order_with_a_throwaway_ca(seen: dict):
    from funops.acme import IssuedCertificate
    from funops.acme.inspect import describe

    def order(project, decision, presenter):
        presenter.present({"tok-A_1": "tok-A_1.thumb"})
        seen["tokens"] = {
            n: (
                project.root / ".funops/nodes" / n / "var/lib/funops-acme/.well-known/acme-challenge/tok-A_1"
            ).read_text()
            for n in ("node1", "node2")
        }
        presenter.cleanup(["tok-A_1"])
        key, chain, _ = make_certificate(decision.domains, days=90)
        info = describe(chain)
        seen["key"] = key
        return IssuedCertificate(key, chain, info.serial, info.domains, info.not_before, info.not_after,
                                 info.issuer)  # fmt: skip

    return order


def _with_sites(repo: Path) -> None:
    """The ingress's site already on both nodes (a renewal): no bootstrap site needed."""
    for node in ("node1", "node2"):
        site = repo / ".funops/nodes" / node / "etc/nginx/conf.d/funops-shop.conf"
        site.parent.mkdir(parents=True, exist_ok=True)
        site.write_text("# the site\n")


def test_the_acme_phase_places_tokens_on_every_edge_node_and_fills_the_resources(example: Path) -> None:
    from funops.certs.phase import obtain
    from funops.transports import Connections

    repo = with_certificate(example)
    _with_sites(repo)
    plan = _plan(repo)
    seen: dict = {}
    events: list[dict] = []
    project = plan.project
    obtain(plan, Connections(project.nodes, project.settings, project.root), events.append,
           _order_with_a_throwaway_ca(seen))  # fmt: skip
    assert seen["tokens"] == {"node1": "tok-A_1.thumb", "node2": "tok-A_1.thumb"}
    for node in ("node1", "node2"):  # removed after
        assert not (
            repo / ".funops/nodes" / node / "var/lib/funops-acme/.well-known/acme-challenge/tok-A_1"
        ).exists()
        res = plan.desired.nodes[node].resource("cert:shop")
        assert res is not None and res.content is not None and seen["key"] in res.content
        assert kind.SERIAL.fullmatch(res.desired["serial"])
    assert [e["event"] for e in events] == ["certificate-start", "acme-challenge", "certificate-done"]
    assert "PRIVATE" not in repr(events) and "PRIVATE" not in repr(plan.desired.nodes["node1"].resources)


def test_a_mismatched_node_gets_the_files_of_a_node_serving_the_fleet_serial(example: Path) -> None:
    from funops.certs.phase import obtain
    from funops.transports import Connections

    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=80)
    place(repo, "node1", "shop", key, chain, serial)
    plan = _plan(repo)
    project = plan.project
    obtain(plan, Connections(project.nodes, project.settings, project.root), lambda e: None)
    res = plan.desired.nodes["node2"].resource("cert:shop")
    assert res is not None and res.content == key + chain and res.desired["serial"] == serial
    assert kind.split_bundle(res.content) == (key, chain)


def test_a_failed_order_names_the_certificate_and_stops_before_any_node(example: Path) -> None:
    from funops.acme import AcmeError
    from funops.certs.phase import CertificateFailed, obtain
    from funops.transports import Connections

    repo = with_certificate(example)
    _with_sites(repo)
    plan = _plan(repo)

    def refused(project, decision, presenter):
        raise AcmeError(
            "validating shop.test",
            domain="shop.test",
            challenge="http-01",
            problem={"type": "urn:ietf:params:acme:error:connection", "detail": "refused"},
        )

    project = plan.project
    with pytest.raises(CertificateFailed) as failed:
        obtain(plan, Connections(project.nodes, project.settings, project.root), lambda e: None, refused)
    assert str(failed.value) == (
        "certificate shop: validating shop.test [shop.test, http-01] "
        "(CA: urn:ietf:params:acme:error:connection: refused)"
    )
    assert plan.desired.nodes["node1"].resource("cert:shop").content is None  # type: ignore[union-attr]


# ---- funops certs, renew, rollback ------------------------------------------------------------------


def _funops(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args, "-C", str(repo)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip


def test_certs_lists_serials_per_node_and_flags_a_mismatch(example: Path) -> None:
    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=60)
    key2, chain2, serial2 = make_certificate(NAMES, days=20)
    place(repo, "node1", "shop", key, chain, serial)
    place(repo, "node2", "shop", key2, chain2, serial2)
    done = _funops(repo, "certs", "-o", "json")
    assert done.returncode == 2, done.stderr  # something is due: the mismatch
    listed = json.loads(done.stdout)
    jsonschema.Draft202012Validator(schema_for("certs")).validate(listed)
    (cert,) = listed["certificates"]
    assert (cert["mismatch"], cert["action"], cert["due"]) == (True, "deploy", True)
    assert {n: s["serial"] for n, s in cert["nodes"].items()} == {"node1": serial, "node2": serial2}
    text = _funops(repo, "certs").stdout
    assert serial2 in text and "≠" in text and "59" in text


def test_certs_renew_exits_0_when_nothing_is_due(example: Path) -> None:
    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=60)
    for node in ("node1", "node2"):
        place(repo, node, "shop", key, chain, serial)
    done = _funops(repo, "certs", "renew", "--auto-approve")
    assert done.returncode == 0 and "No certificate is due." in done.stdout + done.stderr
    assert _funops(repo, "certs").returncode == 0


def test_a_certificates_only_plan_leaves_every_other_change_pending(example: Path) -> None:
    from funops.certs.ops import only_certificates, previous_versions

    repo = with_certificate(example)
    plan = _plan(repo)
    assert any(c.kind != "cert" for n in plan.doc.nodes for c in n.changes)  # a fresh repo: all to create
    narrowed = only_certificates(plan)
    changes = [(n.name, c.id, c.action) for n in narrowed.doc.nodes for c in n.changes]
    assert changes == [("node1", "cert:shop", "create"), ("node2", "cert:shop", "create")]
    assert all(not nd.apps for nd in narrowed.desired.nodes.values())

    old_key, old_chain, old = make_certificate(NAMES, days=60)
    key, chain, new = make_certificate(NAMES, days=80)
    for node in ("node1", "node2"):
        place(repo, node, "shop", old_key, old_chain, old)
        os.utime(repo / ".funops/nodes" / node / "etc/funops/certs/shop" / old, (1, 1))
        place(repo, node, "shop", key, chain, new)
    plan = _plan(repo)
    back = previous_versions(plan, "shop")
    assert back == {"node1": old, "node2": old}
    narrowed = only_certificates(plan, {"shop": back})
    (cert,) = narrowed.doc.certificates
    assert (cert.action, cert.reason) == ("rollback", f"rollback to {old}")
    for node in narrowed.doc.nodes[:2]:
        (change,) = node.changes
        assert [(f.field, f.old, f.new) for f in change.fields] == [("serial", new, old)]


def certificate_drift(repo: Path) -> dict[tuple[str, str], dict]:
    """`drift -o json` (exit 2: drifted): its certificate items by (node, class)."""
    done = _funops(repo, "drift", "-o", "json")
    assert done.returncode == 2, done.stderr
    return {
        (n["name"], i["class"]): i
        for n in json.loads(done.stdout)["nodes"]
        for i in n["drift"]
        if i["kind"] == "cert"
    }


def test_drift_reports_a_certificate_in_its_renew_window_and_a_mismatched_node(example: Path) -> None:
    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=60)
    key2, chain2, serial2 = make_certificate(NAMES, days=5)
    place(repo, "node1", "shop", key, chain, serial)
    place(repo, "node2", "shop", key2, chain2, serial2)
    found = certificate_drift(repo)
    assert set(found) == {("node2", "mismatched")}
    assert (
        found[("node2", "mismatched")]["summary"]
        == f"certificate shop: serves {serial2}, the other nodes {serial}"
    )
    assert not found[("node2", "mismatched")]["fixable"]

    place(repo, "node1", "shop", key2, chain2, serial2)
    found = certificate_drift(repo)
    assert set(found) == {("node1", "expiring"), ("node2", "expiring")}
    assert "renew (expires in 4 days); `funops certs renew`" in found[("node1", "expiring")]["summary"]
    assert "expiring" in _funops(repo, "drift").stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_certificate_tasks_pass_shellcheck(tmp_path: Path) -> None:
    from funops.node.shell import bundle, render
    from funops.tasks import model as m

    tasks = [
        m.CheckChallenge("127.0.7.1", 80, "www.lab.test", "tok-A_1", "ab" * 32),
        m.DeletePaths(("/var/lib/funops-acme/.well-known/acme-challenge/tok-A_1", "/x y")),
        m.PruneVersions("/etc/funops/certs/www", 5),
        m.PointLink("/etc/funops/certs/www/current", "1a2b"),
    ]
    script = tmp_path / "bundle.sh"
    script.write_text(bundle([render(t, lambda p: p) for t in tasks]))
    done = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_prune_keeps_the_newest_versions_and_the_current_one(tmp_path: Path) -> None:
    from funops.node.shell import render
    from funops.tasks import model as m

    base = tmp_path / "etc/funops/certs/www"
    for i, version in enumerate(["a1", "b2", "c3", "d4"]):
        (base / version).mkdir(parents=True)
        os.utime(base / version, (1000 + i, 1000 + i))
    (base / "current").symlink_to("a1")  # rolled back to the oldest
    script = render(m.PruneVersions("/etc/funops/certs/www", 2), lambda p: str(tmp_path) + p).script
    subprocess.run(["sh", "-c", script], check=True)
    assert sorted(p.name for p in base.iterdir()) == ["a1", "c3", "current", "d4"]


def test_a_failed_renewal_is_posted_to_the_webhook(example: Path) -> None:
    from tests.conftest import webhook

    repo = with_certificate(example)
    key, chain, serial = make_certificate(NAMES, days=60)
    place(repo, "node1", "shop", key, chain, serial)  # node2 serves none: a deploy, which fails there:
    # a directory stands where its `current` link goes, so the switch after the version is written fails.
    (repo / ".funops/nodes/node2/etc/funops/certs/shop/current").mkdir(parents=True)
    (repo / ".funops/nodes/node2/etc/funops/certs/shop/current/in-the-way").write_text("x\n")
    with webhook() as (url, got):
        hook = repo / "hook"
        hook.write_text(url + "\n")
        done = _funops(repo, "certs", "renew", "--auto-approve", "--notify-file", str(hook))
    assert done.returncode == 3, done.stdout + done.stderr
    (body,) = got
    report = json.loads(body)
    assert report["kind"] == "certificates-renew" and report["exitCode"] == 3
    assert report["certificates"][0]["action"] == "deploy"
    assert report["apply"]["nodes"]["node2"]["status"] == "failed"
    assert report["apply"]["certificates"] == [
        {
            "name": "shop",
            "action": "deploy",
            "reason": f"deploy {serial} to node2 (from node1)",
            "serial": serial,
        }
    ]
    assert b"PRIVATE" not in body and "TOKEN123" not in done.stdout + done.stderr
    # The key went to node2 (its version dir), and into no output, journal or report.
    assert (repo / ".funops/nodes/node2/etc/funops/certs/shop" / serial / "privkey.pem").read_bytes() == key
    body_lines = [line for line in key.decode().splitlines() if len(line) > 40]
    journal = (repo / ".funops" / "journal.jsonl").read_text()
    for text in (done.stdout + done.stderr, journal, body.decode()):
        assert not [line for line in body_lines if line in text]


# ---- pull mode: publish orders, the bundle carries certificate and key, the node switches ------------

PULL_MANIFESTS = """\
apiVersion: funops/v1
kind: Certificate
metadata: {name: hello}
spec: {domains: [hello.test], issuer: le, challenge: dns-01, dns: primary}
---
apiVersion: funops/v1
kind: Service
metadata: {name: hello}
spec: {app: hello}
---
apiVersion: funops/v1
kind: Ingress
metadata: {name: hello}
spec:
  selector: {nodes: [n1]}
  domains: [hello.test]
  redirectHttp: false
  tls: {certificateRef: hello}
  rules: [{path: /, service: hello}]
"""
PULL_SETTINGS = """acme:
  issuers:
    le: {directory: "https://127.0.0.1:14000/dir"}
  dns:
    primary: {server: 127.0.0.1, zone: hello.test, tsigKeyName: k, tsigSecret: {fromEnv: NO_SUCH_SECRET}}
"""


def test_publish_orders_a_due_certificate_and_seals_it_into_the_pull_nodes_bundle(tmp_path: Path) -> None:
    from bench.fleet.simlocal import SimulatedNode
    from funops.acme import IssuedCertificate
    from funops.acme.inspect import describe
    from funops.pull.publish import publish
    from funops.pull.store import DirectoryStore
    from tests.unit.test_pull import _poll
    from tests.unit.test_pull import setup as pull_setup

    repo, root, store = pull_setup.__wrapped__(tmp_path)  # type: ignore[attr-defined]
    (repo / "manifests" / "hello-tls.yaml").write_text(PULL_MANIFESTS)
    with (repo / "funops.yaml").open("a") as f:
        f.write(PULL_SETTINGS)
    orders: list[str] = []

    def order(project, decision, presenter):
        orders.append(decision.action)
        key, chain, _ = make_certificate(decision.domains, days=90)
        info = describe(chain)
        return IssuedCertificate(key, chain, info.serial, info.domains, info.not_before, info.not_after,
                                 info.issuer)  # fmt: skip

    def published() -> list:
        project = load_project(repo, None)
        node = SimulatedNode(project.nodes["n1"], root)
        return publish(project, DirectoryStore(store), connect=lambda _: node, order=order)

    (done,) = published()
    assert orders == ["issue"] and done.changed
    sealed = next((store / "nodes/n1/bundles").iterdir()).read_bytes()
    assert b"PRIVATE KEY" not in sealed  # sealed to the node's agent certificate
    status = _poll(repo, root, store)
    assert status["result"] == "converged", status
    base = root / "etc/funops/certs/hello"
    serial = os.readlink(base / "current")
    assert (base / serial / "privkey.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert describe((base / serial / "fullchain.pem").read_bytes()).domains == ("hello.test",)

    # Served now, not due: no order; the next bundle names the served serial and carries no key (the
    # key stays only on the node), and the node changes nothing for it.
    (again,) = published()
    assert orders == ["issue"] and again.changed
    status = _poll(repo, root, store)
    assert status["result"] == "converged" and os.readlink(base / "current") == serial, status
    assert not [c for c in status["attempt"].get("changes", []) if "cert:" in c], status
    (third,) = published()
    assert orders == ["issue"] and not third.changed


def test_publish_refuses_http01_for_a_pull_node(tmp_path: Path) -> None:
    from funops.errors import FunopsError
    from funops.pull.publish import publish
    from funops.pull.store import DirectoryStore
    from tests.unit.test_pull import setup as pull_setup

    repo, _, store = pull_setup.__wrapped__(tmp_path)  # type: ignore[attr-defined]
    (repo / "manifests" / "hello-tls.yaml").write_text(
        PULL_MANIFESTS.replace(", challenge: dns-01, dns: primary", "")
    )
    with (repo / "funops.yaml").open("a") as f:
        f.write(PULL_SETTINGS)
    with pytest.raises(FunopsError, match="n1 is in pull mode, where HTTP-01 tokens cannot be placed"):
        publish(load_project(repo, None), DirectoryStore(store))


def test_read_on_a_node_without_a_certificate_parser_the_version_dir_names_the_serial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pull mode: the node gathers itself, with the standard library only (no cryptography)."""
    monkeypatch.setitem(sys.modules, "funops.acme.inspect", None)  # its import now fails
    found = kind.KIND.parse(
        {"certs": ["/etc/funops/certs/shop|ab12|ab12 99|bm90IGEgY2VydA=="]}, str, LiveFacts()
    )
    assert found["shop"]["serial"] == "ab12" and "domains" not in found["shop"]
    facts = LiveFacts(live={"cert": found})
    live = kind.KIND.live("shop", facts)
    assert live == {"serial": "ab12", "domains": None}
    desired = {"serial": "ab12", "domains": NAMES}
    assert kind.KIND.in_terms_of(desired, live, "shop", facts) == desired
    assert kind.KIND.in_terms_of({**desired, "serial": "cd34"}, live, "shop", facts) == live
