"""A certificate in pull mode (issue 27) against the lab's pebble and BIND: `funops publish` reads what
the pull node serves through its agent, orders by DNS-01, seals certificate and key into the node's
bundle; the node's timer converges it, and nginx there serves it (curl against pebble's root). The
pull fleet is test_pull.py's (its module fixture, set up anew for this module)."""

from __future__ import annotations

from pathlib import Path

from lab import Lab
from lab.acme import AcmeLab
from tests.lab.fleet import funops
from tests.lab.test_acme import ask
from tests.lab.test_certificates import served_serial
from tests.lab.test_pull import _publish, _status
from tests.lab.test_pull import repo as repo  # the pull fleet (module fixture)

NAME = "pull.lab.test"
MANIFESTS = f"""\
apiVersion: funops/v1
kind: Certificate
metadata: {{name: pullcert}}
spec: {{domains: [{NAME}], issuer: pebble, challenge: dns-01, dns: lab}}
---
apiVersion: funops/v1
kind: Service
metadata: {{name: hello}}
spec: {{app: hello}}
---
apiVersion: funops/v1
kind: Ingress
metadata: {{name: pullcert}}
spec:
  selector: {{nodes: [node1]}}
  domains: [{NAME}]
  redirectHttp: false
  tls: {{certificateRef: pullcert}}
  rules: [{{path: /, service: hello}}]
"""


def _serial(lab: Lab, root: Path) -> str:
    return served_serial(lab, "node1", root, NAME)


def test_a_pull_node_serves_the_certificate_publish_sealed_into_its_bundle(
    lab: Lab, acme_lab: AcmeLab, repo: Path, tmp_path: Path
) -> None:
    import shutil

    (repo / "certs").mkdir(exist_ok=True)
    shutil.copy(acme_lab.ca_bundle, repo / "certs" / "pebble-https-ca.pem")
    (repo / "secrets").mkdir(exist_ok=True)
    (repo / "secrets" / "lab.tsig").write_text(acme_lab.tsig_secret + "\n")
    with (repo / "funops.yaml").open("a") as f:
        f.write(
            "acme:\n  issuers:\n    pebble:\n"
            f"      directory: {acme_lab.directory}\n      caBundle: certs/pebble-https-ca.pem\n"
            f"  dns:\n    lab:\n      server: {acme_lab.dns_server}\n      port: {acme_lab.dns_port}\n"
            f"      zone: {acme_lab.zone.rstrip('.')}\n      tsigKeyName: {acme_lab.tsig_key_name}\n"
            f"      tsigAlgorithm: {acme_lab.tsig_algorithm}\n"
            "      tsigSecret: {fromFile: secrets/lab.tsig}\n"
            "      propagationSeconds: 30\n"
        )
    (repo / "manifests" / "pullcert.yaml").write_text(MANIFESTS)
    try:
        done = funops(repo, "acme", "account", "init", "--issuer", "pebble")
        assert done.returncode == 0, done.stdout + done.stderr
        done = _publish(lab, repo)
        assert done.returncode == 0, done.stdout + done.stderr
        code, found = _status(repo, "--wait", timeout=240)
        assert code == 0, found
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(acme_lab.fetch_root())
        serial = _serial(lab, root)
        assert lab.exec("node1", "readlink /etc/funops/certs/pullcert/current").stdout.strip() == serial
        assert ask(acme_lab, "_acme-challenge.pull.lab.test.", "TXT") == []
        # Served now: the next publish orders nothing, and the node keeps serving the same one.
        listed = funops(repo, "certs", "-o", "json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        done = _publish(lab, repo)
        assert done.returncode == 0, done.stdout + done.stderr
        code, found = _status(repo, "--wait", timeout=240)
        assert code == 0, found
        assert _serial(lab, root) == serial
    finally:
        (repo / "manifests" / "pullcert.yaml").unlink()
        _publish(lab, repo)
        _status(repo, "--wait", timeout=240)
