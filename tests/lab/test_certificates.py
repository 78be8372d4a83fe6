"""Certificates across the edge nodes (issue 27) against the lab's real pebble and BIND: two edge
nodes serve www.lab.test (BIND answers both addresses); HTTP-01 with the tokens on both; both serve
the same serial, verified with curl against pebble's root; a second apply changes nothing; renewal
switches both; a challenge that cannot succeed on one node exits 3 with the old certificate still
served; the key appears in no output; rollback switches back without the CA."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from lab import Lab
from lab.acme import AcmeLab
from lab.load import Load, Target
from tests.lab.fleet import funops, make_repo

NAME = "www.lab.test"
CERTS = "/etc/funops/certs/www"

MANIFESTS = """\
apiVersion: funops/v1
kind: Certificate
metadata:
  name: www
spec:
  domains: {domains}
  issuer: pebble
  renewBefore: {renew_before}
---
apiVersion: funops/v1
kind: Ingress
metadata:
  name: www
spec:
  selector: {{nodes: [node1, node2]}}
  domains: {domains}
  tls: {{certificateRef: www}}
  rules:
    - {{path: /, service: web}}
"""


def write_manifests(repo: Path, domains: list[str] | None = None, renew_before: str = "30d") -> None:
    (repo / "manifests" / "www.yaml").write_text(
        MANIFESTS.format(domains=json.dumps(domains or [NAME]), renew_before=renew_before)
    )


@pytest.fixture(params=["ssh"])
def repo(lab: Lab, acme_lab: AcmeLab, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    repo = acme_repo(lab, acme_lab, tmp_path / "repo", request.param)
    yield repo
    for node in ("node1", "node2"):
        lab.exec(node, "systemctl start nginx || true")


def acme_repo(lab: Lab, acme_lab: AcmeLab, where: Path, transport: str = "ssh") -> Path:
    """The lab's repo with pebble as its issuer, www.lab.test's certificate on both edge nodes, an
    ACME account, and no version of an earlier test on the nodes."""
    repo = make_repo(lab, where, transport=transport)
    shutil.copy(acme_lab.ca_bundle, repo / "certs" / "pebble-https-ca.pem")
    settings = yaml.safe_load((repo / "funops.yaml").read_text())
    settings["acme"] = {
        "issuers": {
            "pebble": {
                "directory": acme_lab.directory,
                "email": "ops@lab.test",
                "caBundle": "certs/pebble-https-ca.pem",
            }
        }
    }
    (repo / "funops.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    write_manifests(repo)
    done = funops(repo, "acme", "account", "init", "--issuer", "pebble")
    assert done.returncode == 0, done.stdout + done.stderr
    for node in ("node1", "node2"):  # a fresh start: no version of an earlier test run
        lab.exec(node, f"rm -rf {CERTS} /etc/nginx/conf.d/funops-www.conf && nginx -s reload || true")
    return repo


def served_serial(lab: Lab, node: str, root: Path, name: str = NAME) -> str:
    """The serial the node's nginx serves for `name`, the chain verified by curl against
    pebble's root (and nothing else)."""
    address = lab.node(node).address
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{ssl_verify_result}", "--cacert", str(root),
            "--resolve", f"{name}:443:{address}", f"https://{name}/"]  # fmt: skip
    curl = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    # A connection an old worker accepted just before the apply's reload told it to quit is closed
    # unanswered (HTTP/2's GOAWAY: curl's 16; an empty reply: 52): a client retries a GET once.
    if curl.returncode in (16, 52):
        curl = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert curl.returncode == 0 and curl.stdout == "0", (node, curl.stdout, curl.stderr)
    context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection((address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return f"{x509.load_der_x509_certificate(der).serial_number:x}"


def apply(repo: Path) -> subprocess.CompletedProcess[str]:
    return funops(repo, "apply", "--auto-approve", "--allow-dirty", timeout=600)


def test_issue_serve_renew_fail_and_roll_back(
    lab: Lab, acme_lab: AcmeLab, repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(acme_lab.fetch_root())
    outputs: dict[str, str] = {}

    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = funops(repo, *args, timeout=600)
        outputs[name] = done.stdout + done.stderr
        return done

    # Issue: HTTP-01 with the tokens on both edge nodes; both serve the same serial.
    plan = run("plan-1", "plan", "-o", "json")
    assert plan.returncode == 2, plan.stderr
    (cert,) = json.loads(plan.stdout)["certificates"]
    assert (cert["action"], cert["nodes"]) == ("issue", {"node1": None, "node2": None})
    done = run("apply-1", "apply", "--auto-approve", "--allow-dirty")
    assert done.returncode == 0, done.stdout + done.stderr
    first = served_serial(lab, "node1", root)
    assert served_serial(lab, "node2", root) == first
    for node in ("node1", "node2"):  # the tokens and the bootstrap site are gone
        left = lab.exec(node, "ls /var/lib/funops-acme/.well-known/acme-challenge/ /etc/nginx/conf.d/").stdout
        assert "funops-acme-bootstrap" not in left and left.count("\n") >= 1
        assert lab.exec(node, f"stat -c '%a %U' {CERTS}/{first}/privkey.pem").stdout.strip() == "600 root"
        assert lab.exec(node, f"readlink {CERTS}/current").stdout.strip() == first

    # A second apply changes nothing.
    again = run("plan-2", "plan")
    assert again.returncode == 0, again.stdout + again.stderr

    # Renewal: renewBefore longer than the certificate's life; requests through both edge nodes
    # meanwhile fail none (lab/load.py's rule).
    write_manifests(repo, renew_before="99999d")
    plan = run("plan-3", "plan")
    assert plan.returncode == 2 and "renew (expires in" in plan.stdout, plan.stdout
    loads = [Load(Target(lab.node(n).address, NAME, get=("/",)), threads=2) for n in ("node1", "node2")]
    with loads[0].running() as one, loads[1].running() as two:
        done = run("apply-3", "apply", "--auto-approve", "--allow-dirty")
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"\nrenewal under load: node1 {one.line()}; node2 {two.line()}")
    assert one.failures == [] and two.failures == [] and one.served and two.served
    second = served_serial(lab, "node1", root)
    assert second != first and served_serial(lab, "node2", root) == second
    versions = lab.exec("node1", f"ls {CERTS}").stdout.split()
    assert sorted(versions) == sorted(["current", first, second])

    # A challenge that cannot succeed: nginx stopped on node2, a new name (no authorization to reuse).
    from tests.lab.test_acme import set_a_record

    extra = "fail.lab.test"
    for node in ("node1", "node2"):
        set_a_record(acme_lab, extra, lab.node(node).address)
    write_manifests(repo, domains=[NAME, extra])
    lab.exec("node2", "systemctl stop nginx", check=True)
    done = run("apply-4", "apply", "--auto-approve", "--allow-dirty")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "certificate www" in done.stdout + done.stderr and extra in done.stdout + done.stderr
    assert served_serial(lab, "node1", root) == second  # the old certificate keeps serving
    assert lab.exec("node2", f"readlink {CERTS}/current").stdout.strip() == second
    lab.exec("node2", "systemctl start nginx", check=True)
    assert served_serial(lab, "node2", root) == second
    write_manifests(repo, renew_before="99999d")

    # Rollback: back to the previous version on both nodes, without the CA.
    done = run("rollback", "rollback", "www", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert served_serial(lab, "node1", root) == first and served_serial(lab, "node2", root) == first

    # The certificate's key appears in no output, journal or event.
    outputs["journal"] = (repo / ".funops" / "journal.jsonl").read_text()
    key = lab.exec("node1", f"cat {CERTS}/{first}/privkey.pem").stdout.splitlines()
    account_key = (repo / ".funops" / "acme" / "pebble.key").read_text().splitlines()
    forbidden = [line for line in [*key, *account_key] if len(line) > 40]
    assert forbidden
    leaks = sorted((name, item) for name, text in outputs.items() for item in forbidden if item in text)
    assert leaks == []


def use_lab_dns(repo: Path, acme_lab: AcmeLab) -> None:
    """The lab's BIND as the repo's DNS server `lab` (TSIG key in secrets/lab.tsig) for DNS-01."""
    (repo / "secrets").mkdir(exist_ok=True)
    (repo / "secrets" / "lab.tsig").write_text(acme_lab.tsig_secret + "\n")
    settings = yaml.safe_load((repo / "funops.yaml").read_text())
    settings["acme"]["dns"] = {
        "lab": {
            "server": acme_lab.dns_server,
            "port": acme_lab.dns_port,
            "zone": acme_lab.zone.rstrip("."),
            "tsigKeyName": acme_lab.tsig_key_name,
            "tsigAlgorithm": acme_lab.tsig_algorithm,
            "tsigSecret": {"fromFile": "secrets/lab.tsig"},
            "propagationSeconds": 30,
        }
    }
    (repo / "funops.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))


def test_a_wildcard_by_dns01_through_bind(lab: Lab, acme_lab: AcmeLab, repo: Path, tmp_path: Path) -> None:
    """DNS-01 for *.lab.test by TSIG-signed updates to the lab's BIND; the TXT record is gone after."""
    from tests.lab.test_acme import ask

    use_lab_dns(repo, acme_lab)
    (repo / "manifests" / "www.yaml").write_text(
        MANIFESTS.format(domains='["*.lab.test"]', renew_before="30d")
        .replace("  issuer: pebble\n", "  issuer: pebble\n  challenge: dns-01\n  dns: lab\n")
        .replace('  domains: ["*.lab.test"]\n  tls', '  domains: ["w1.lab.test"]\n  tls')
    )
    done = apply(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(acme_lab.fetch_root())
    serials = {served_serial(lab, n, root, "w1.lab.test") for n in ("node1", "node2")}
    assert len(serials) == 1
    assert ask(acme_lab, "_acme-challenge.lab.test.", "TXT") == []
    again = funops(repo, "plan")
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.parametrize("repo", ["agent"], indirect=True)
def test_issue_through_the_agents(lab: Lab, acme_lab: AcmeLab, repo: Path, tmp_path: Path) -> None:
    """The same issuance with every node on the agent transport: tokens, self-checks, versions and
    the switch are the same task values, run by the agent."""
    done = apply(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(acme_lab.fetch_root())
    assert served_serial(lab, "node1", root) == served_serial(lab, "node2", root)
    again = funops(repo, "plan")
    assert again.returncode == 0, again.stdout + again.stderr
    listed = funops(repo, "certs", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (cert,) = json.loads(listed.stdout)["certificates"]
    assert cert["action"] == "none" and cert["nodes"]["node1"]["serial"] == cert["nodes"]["node2"]["serial"]

    # The agent's /metrics (issue 30) gives each node's served certificate its notAfter; neither the
    # metrics nor the agent's request log in the journal hold the certificate's or the account's key.
    serial = cert["nodes"]["node1"]["serial"]
    metrics = _scrape(lab, "node1", (repo / ".funops" / "agent" / "node1.token").read_text().strip())
    not_after = dt.datetime.fromisoformat(cert["nodes"]["node1"]["notAfter"]).timestamp()
    sample = (
        f'funops_certificate_not_after_timestamp_seconds{{node="node1",certificate="www",serial="{serial}"}}'
    )
    assert f"{sample} {not_after:.0f}\n" in metrics, metrics
    journal = lab.exec("node1", "journalctl -u funops-agent --no-pager -o cat").stdout
    assert '"path":"/v1/tasks"' in journal
    key = lab.exec("node1", f"cat {CERTS}/{serial}/privkey.pem").stdout.splitlines()
    account_key = (repo / ".funops" / "acme" / "pebble.key").read_text().splitlines()
    forbidden = [line for line in [*key, *account_key] if len(line) > 40]
    assert forbidden
    assert [item for item in forbidden if item in metrics or item in journal] == []


def _scrape(lab: Lab, node: str, token: str) -> str:
    conn = http.client.HTTPSConnection(lab.node(node).address, 7391, context=ssl._create_unverified_context())
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()
