"""funops/observe and `funops history`'s figures: the exposition text, the Pushgateway URL, the
textfile, the metrics of a run, the CLI's export (a failed push never changes the exit code),
`funops prometheus targets|ca` (a real TLS server on loopback, its certificate pinned) and the
agent certificate's subjectAltName (made by the rendered script with the real openssl).
The lab test tests/lab/test_prometheus.py runs the same paths against a real Prometheus."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ipaddress
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from funops.apply.executor import NodeOutcome
from funops.apply.rollout import RolloutResult
from funops.cli.main import app
from funops.errors import FunopsError
from funops.load.loader import load_project
from funops.node.shell import render as render_task
from funops.observe import deploy, export
from funops.observe.exposition import Family, render
from funops.observe.targets import bundle, file_sd, pinned_certificates
from funops.release import stats
from funops.release.history import Release
from funops.state.records import RevisionRef
from funops.tasks import model as m
from funops.tasks.values import ValueProblem, check
from tests.conftest import recording_server

runner = CliRunner()


# ---- exposition, push URL, textfile ------------------------------------------------------------------


def test_render_escapes_label_values_and_help() -> None:
    fam = Family("funops_x", "help with \\ and\nnewline").add(1, app='a"b\\c\nd').add(0.25)
    assert render([fam], common={"command": "apply"}) == (
        "# HELP funops_x help with \\\\ and\\nnewline\n"
        "# TYPE funops_x gauge\n"
        'funops_x{app="a\\"b\\\\c\\nd",command="apply"} 1\n'
        'funops_x{command="apply"} 0.25\n'
    )
    assert render([Family("funops_empty", "no samples")]) == ""


def test_push_url_encodes_what_is_not_plain() -> None:
    url = export.push_url("http://pg:9091/", {"command": "apply", "project": "a/b", "empty": ""})
    assert url == "http://pg:9091/metrics/job/funops/command/apply/project@base64/YS9i/empty@base64/="


def test_credentials_in_the_push_url_become_basic_auth() -> None:
    url, header = export._credentials("https://ci:s%40cret@pg.example:9091/metrics/job/funops")
    assert url == "https://pg.example:9091/metrics/job/funops"
    assert header == {"Authorization": "Basic Y2k6c0BjcmV0"}  # ci:s@cret
    assert export.describe("https://ci:s%40cret@pg.example:9091") == "https://pg.example:9091"


def test_textfile_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "funops.prom"
    target.write_text("old\n")
    assert export.write_replacing(target, "new\n") is None
    assert target.read_text() == "new\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["funops.prom"]  # no temporary file left
    assert export.write_replacing(tmp_path / "missing" / "x.prom", "x") is not None


# ---- a run's metrics ---------------------------------------------------------------------------------


def _rollout(statuses: dict[str, str], apps: dict[str, list[str]]) -> RolloutResult:
    from funops.plan.releases import NodeReleases

    result = RolloutResult(id="r1", outcomes={n: NodeOutcome(n, s) for n, s in statuses.items()})
    for app_name, nodes in apps.items():
        for node in nodes:
            record = type("Rec", (), {"app": app_name, "id": f"{app_name}-1"})()
            result.releases.setdefault(node, NodeReleases()).records.append(record)  # type: ignore[arg-type]
    return result


def _samples(families: list[Family]) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {f.name: f.samples for f in families}


def test_a_failed_apply_counts_nodes_and_apps() -> None:
    run = deploy.Run("apply", project="shop", started=100.0, exit_code=3)
    run.rollouts.append(
        _rollout({"n1": "succeeded", "n2": "failed", "n3": "skipped"}, {"web": ["n1"], "api": ["n1", "n2"]})
    )
    got = _samples(deploy.families(run, now=112.5))
    assert got["funops_deploy_last_success"] == [({}, 0)]
    assert got["funops_deploy_exit_code"] == [({}, 3)]
    assert got["funops_deploy_duration_seconds"] == [({}, 12.5)]
    assert got["funops_deploy_nodes_changed"] == [({}, 1)] and got["funops_deploy_nodes_failed"] == [({}, 1)]
    assert got["funops_deploy_app_success"] == [({"app": "api"}, 0), ({"app": "web"}, 1)]


def test_an_auto_rollback_does_not_make_the_failed_app_a_success() -> None:
    failed = _rollout({"n1": "failed"}, {"api": ["n1"]})
    back = _rollout({"n1": "succeeded"}, {"api": ["n1"]})
    assert deploy.app_results([failed, back]) == {"api": False}


# ---- the CLI's export --------------------------------------------------------------------------------


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """Records each request (method, path, body); the real Pushgateway is in the lab test."""
    got: list[tuple[str, str, bytes]] = []
    with recording_server(lambda *request: got.append(request)) as url:
        yield url, got


def test_an_apply_that_fails_early_pushes_its_failure(
    example: Path, pushgateway: tuple[str, list[tuple[str, str, bytes]]], tmp_path: Path
) -> None:
    url, got = pushgateway
    (example / "manifests" / "web.yaml").write_text("kind: [broken\n")
    prom = tmp_path / "funops.prom"
    done = runner.invoke(app, ["apply", "-C", str(example), "--auto-approve", "--metrics-push", url,
                               "--metrics-textfile", str(prom)])  # fmt: skip
    assert done.exit_code == 1, done.output
    ((method, path, body),) = got
    project = yaml.safe_load((example / "funops.yaml").read_text())["project"]
    assert (method, path) == ("PUT", f"/metrics/job/funops/command/apply/project/{project}")
    assert "funops_deploy_last_success 0\n" in body.decode()
    assert "funops_deploy_exit_code 1\n" in body.decode()
    assert f'funops_deploy_last_success{{command="apply",project="{project}"}} 0\n' in prom.read_text()


def test_a_failed_push_warns_and_keeps_the_exit_code(example: Path) -> None:
    done = runner.invoke(app, ["drift", "-C", str(example), "--metrics-push", "http://127.0.0.1:1/x"])
    plain = runner.invoke(app, ["drift", "-C", str(example)])
    assert done.exit_code == plain.exit_code
    assert "metrics not exported: http://127.0.0.1:1 did not take the metrics" in done.output


def test_a_bad_push_url_is_refused_before_anything() -> None:
    done = runner.invoke(app, ["publish", "--metrics-push", "ftp://x"])
    assert done.exit_code == 1 and "http:// or https://" in done.output


# ---- history's figures -------------------------------------------------------------------------------


def test_window_and_percentiles() -> None:
    assert stats.parse_window("7d") == dt.timedelta(days=7)
    assert stats.parse_window("30m") == dt.timedelta(minutes=30)
    with pytest.raises(FunopsError, match=r"e\.g\. 30m"):
        stats.parse_window("7 days")
    assert stats.percentile(list(map(float, range(1, 101))), 95) == 95.0
    assert stats.percentile([3.0], 95) == 3.0 and stats.percentile([], 95) is None


def _release(
    app_name: str, number: int, status: str, started: dt.datetime, seconds: float, kind: str = "deploy"
) -> Release:
    finished = (started + dt.timedelta(seconds=seconds)).isoformat()
    return Release(
        id=f"{app_name}-{number}", app=app_name, number=number, kind=kind, status=status,
        revision=RevisionRef(commit=None, dirty=False), versions=[], nodes={}, who=None,
        started=started.isoformat(), finished=finished, restores=None,
    )  # fmt: skip


def test_per_app_figures_over_the_window() -> None:
    now = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    rels = [
        _release("web", 1, "succeeded", now - dt.timedelta(days=9), 100),  # before the window
        _release("web", 2, "succeeded", now - dt.timedelta(days=3), 10),
        _release("web", 3, "failed", now - dt.timedelta(days=2), 30),
        _release("web", 4, "rolled_back", now - dt.timedelta(days=1), 20),
        _release("web", 5, "succeeded", now - dt.timedelta(hours=1), 12, kind="rollback"),
        _release("api", 1, "running", now - dt.timedelta(hours=1), 5),  # not finished
    ]
    (web,) = stats.per_app(rels, now - dt.timedelta(days=7))
    assert (web.name, web.runs, web.succeeded, web.success_rate) == ("web", 3, 1, 0.3333)
    assert (web.median_seconds, web.p95_seconds) == (20, 30)


def test_journal_figures() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    entries = [
        {"event": "apply", "kind": "deploy", "when": "2026-01-02T00:00:00Z", "exitCode": 0, "seconds": 4},
        {"event": "apply", "kind": "deploy", "when": "2026-01-03T00:00:00Z", "exitCode": 3, "seconds": 8},
        {"event": "apply", "kind": "deploy", "when": "2025-12-30T00:00:00Z", "exitCode": 3, "seconds": 8},
        {"event": "apply", "kind": "rollback", "when": "2026-01-03T00:00:00Z", "exitCode": 0, "seconds": 2},
    ]
    got = {f.name: f for f in stats.per_kind(entries, start)}
    assert (got["deploy"].runs, got["deploy"].succeeded, got["deploy"].median_seconds) == (2, 1, 6)
    assert got["rollback"].success_rate == 1.0


def test_history_json_carries_the_figures_and_matches_its_schema(example: Path) -> None:
    import jsonschema

    done = runner.invoke(app, ["history", "-C", str(example), "-o", "json", "--since", "2w"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "funops/schemas/history.schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert doc["stats"]["window"] == "2w" and doc["stats"]["apps"] == []


# ---- prometheus targets and ca ----------------------------------------------------------------------


def _inventory(example: Path, port: int = 7391) -> None:
    (example / "inventory" / "demo.yaml").unlink()
    (example / "inventory" / "nodes.yaml").write_text(yaml.safe_dump({
        "nodes": [
            {"name": "node1", "address": "127.0.0.1", "transport": "agent",
             "labels": {"role": "edge", "zone": "a"}, "agent": {"url": f"https://127.0.0.1:{port}"}},
            {"name": "node2", "address": "127.0.0.2", "labels": {"role": "app", "app.kind/x": "1"},
             "agent": {"url": "https://127.0.0.2:7391"}},
            {"name": "node3", "address": "127.0.0.3", "transport": "local", "root": ".funops/nodes/node3"},
        ]
    }))  # fmt: skip


def test_targets_are_the_agent_nodes_with_their_labels(example: Path) -> None:
    _inventory(example)
    found = file_sd(load_project(example, None, None, manifests=False))
    node1 = {"role": "edge", "zone": "a", "node": "node1", "transport": "agent", "address": "127.0.0.1"}
    node2 = {"app_kind_x": "1", "role": "app", "node": "node2", "transport": "ssh", "address": "127.0.0.2"}
    assert found.groups == [
        {"targets": ["127.0.0.1:7391"], "labels": {**node1, "mode": "push"}},
        {"targets": ["127.0.0.2:7391"], "labels": {**node2, "mode": "push"}},
    ]
    assert list(found.skipped) == ["node3"]
    out = example / "targets.json"
    done = runner.invoke(app, ["prometheus", "targets", "-C", str(example), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text()) == found.groups


def _self_signed(tmp_path: Path, names: list[x509.GeneralName]) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "funops-agent node1")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )  # fmt: skip
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_file, key_file = tmp_path / "agent.crt", tmp_path / "agent.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def tls_agent(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    """A TLS server on 127.0.0.1 presenting a self-signed certificate naming 127.0.0.1."""
    cert, key, der = _self_signed(tmp_path, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, der
    finally:
        server.shutdown()
        server.server_close()


def test_ca_bundle_is_the_pinned_certificates(example: Path, tls_agent: tuple[int, bytes]) -> None:
    port, der = tls_agent
    _inventory(example, port)
    pin = hashlib.sha256(der).hexdigest()
    (example / "agent_known_hosts").write_text(f"127.0.0.1:{port} sha256:{pin}\n")
    pinned, problems = pinned_certificates(load_project(example, None, None, manifests=False))
    assert [p.node for p in pinned] == ["node1"] and pinned[0].verifiable
    assert ssl.PEM_cert_to_DER_cert(pinned[0].pem) == der
    assert problems == {"node2": "no pinned agent certificate (run `funops agent install` first)"}
    assert bundle(pinned).startswith(f"# node1 127.0.0.1:{port} sha256:{pin}\n-----BEGIN CERTIFICATE-----")
    out = example / "agents.pem"
    done = runner.invoke(app, ["prometheus", "ca", "-C", str(example), "-o", str(out)])
    assert done.exit_code == 4 and "node2" in done.output  # node2's is missing: said, the rest written
    assert ssl.PEM_cert_to_DER_cert(out.read_text().split("\n", 1)[1]) == der
    # what Prometheus (Go) does with it: the bundle as the only CA, the address checked against the SAN
    context = ssl.create_default_context(cafile=str(out))
    with context.wrap_socket(
        __import__("socket").create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1"
    ):
        pass


def test_a_certificate_other_than_the_pinned_one_is_not_given(
    example: Path, tls_agent: tuple[int, bytes]
) -> None:
    port, _ = tls_agent
    _inventory(example, port)
    (example / "agent_known_hosts").write_text(f"127.0.0.1:{port} sha256:{'0' * 64}\n")
    pinned, problems = pinned_certificates(load_project(example, None, None, manifests=False))
    assert pinned == [] and "other than the one pinned" in problems["node1"]


# ---- the agent certificate's names -------------------------------------------------------------------


def test_the_agent_certificate_names_its_address(tmp_path: Path) -> None:
    task = m.MakeCertificate(str(tmp_path / "a.crt"), str(tmp_path / "a.key"), "funops-agent node1",
                             ("10.0.0.11", "node1"))  # fmt: skip
    check(task)
    script = render_task(task, lambda p: p).script
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("sha256:")
    cert = x509.load_pem_x509_certificate((tmp_path / "a.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.11")]
    assert san.get_values_for_type(x509.DNSName) == ["node1"]
    with pytest.raises(ValueProblem, match="names"):
        check(m.MakeCertificate("/etc/a.crt", "/etc/a.key", "x", ("a,DNS:evil",)))
