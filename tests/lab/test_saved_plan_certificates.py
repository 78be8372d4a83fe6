"""Issue 29, the rest: a saved plan that orders a certificate runs without the repo. Against the lab's
real pebble: the plan holds the order's parameters (names, challenge, issuer's directory and CA
bundle, key type) and the edge nodes' tasks for a placeholder version; the repo loses its manifests
and templates; `apply FILE`, from a directory holding only the ACME account key, orders (HTTP-01 on
both edge nodes), binds the CA's answer into the planned tasks and runs exactly them: both nodes
serve the new serial. A node changed since the plan refuses it; the key is in no file or output.
DNS-01 through the lab's BIND likewise, its TSIG key read where apply runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lab import Lab
from lab.acme import AcmeLab

from ..conftest import apply_job_keys
from .fleet import FUNOPS, events, funops
from .test_certificates import CERTS, acme_repo, served_serial, use_lab_dns, write_manifests
from .test_releases import commit, git
from .test_saved_plan import apply_file, planned_task_names

SITE = "/etc/nginx/conf.d/funops-www.conf"


@pytest.fixture
def repo(lab: Lab, acme_lab: AcmeLab, tmp_path: Path) -> Path:
    repo = acme_repo(lab, acme_lab, tmp_path / "repo")
    (repo / ".gitignore").write_text(".funops/\n")
    git(repo, "init", "-q")
    commit(repo, "example with a certificate")
    return repo


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return apply_job_keys(tmp_path_factory.mktemp("keys"))


def test_apply_file_orders_the_certificate_and_runs_the_planned_tasks_without_the_repo(
    lab: Lab, acme_lab: AcmeLab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    done = funops(repo, "plan", "--out", str(saved), "--seal-to", str(keys[0]), timeout=600)
    assert done.returncode == 2, done.stderr
    program = json.loads(saved.read_text())["program"]
    assert program["needsRepo"] == []
    order = program["orders"]["www"]
    assert (order["action"], order["domains"], order["challenge"]) == ("issue", ["www.lab.test"], "http-01")
    assert order["issuer"]["url"] == acme_lab.directory
    assert order["issuer"]["caBundle"] == Path(acme_lab.ca_bundle).read_text()  # public: the CA's root
    assert [e["node"] for e in order["edges"]] == ["node1", "node2"]
    shown = subprocess.run([*FUNOPS, "show", str(saved)], capture_output=True, text=True, timeout=60)
    assert "certificate www: issue www.lab.test (http-01" in shown.stdout, shown.stdout
    planned = planned_task_names(program, keys[1])
    assert any(order["placeholder"] in name for name in planned["node1"])  # the version's tasks

    # The repo changes and loses its manifests and templates; the apply job holds the artifact and
    # the ACME account key (where `funops acme account init` keeps it).
    shutil.rmtree(repo / "manifests")
    shutil.rmtree(repo / "templates")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(repo / ".funops" / "acme", elsewhere / ".funops" / "acme")

    # A node changed since the plan: refused, nothing ordered or written.
    lab.exec("node2", f"echo '# by hand' > {SITE}")
    refused = apply_file(saved, elsewhere, keys[1])
    assert refused.returncode == 1 and "node2 changed since the plan was made" in refused.stderr
    assert lab.exec("node1", f"ls {CERTS} 2>&1 || true").stdout.count("No such file") == 1
    lab.exec("node2", f"rm -f {SITE}")  # as the plan saw it again

    done = apply_file(saved, elsewhere, keys[1])
    assert done.returncode == 0, done.stdout + done.stderr
    serial = next(e["serial"] for e in events(done.stdout) if e["event"] == "certificate-done")
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(acme_lab.fetch_root())
    assert served_serial(lab, "node1", root) == serial == served_serial(lab, "node2", root)
    entry = json.loads((elsewhere / ".funops" / "journal.jsonl").read_text().splitlines()[-1])
    ran = {name: [t["name"] for t in node["tasks"]] for name, node in entry["nodes"].items()}
    bound = {n: [t.replace(order["placeholder"], serial) for t in ts] for n, ts in planned.items()}
    assert ran == bound  # exactly the planned tasks, the CA's serial in place of the placeholder
    key = lab.exec("node1", f"cat {CERTS}/{serial}/privkey.pem").stdout.strip()
    assert "PRIVATE KEY" in key
    for text in (
        saved.read_text(),
        done.stdout,
        done.stderr,
        *(p.read_text() for p in elsewhere.rglob("*.jsonl")),
    ):
        assert key not in text


def test_a_saved_dns01_order_reads_its_tsig_key_where_apply_runs(
    lab: Lab, acme_lab: AcmeLab, repo: Path, keys: tuple[Path, str], tmp_path: Path
) -> None:
    """DNS-01 through the lab's BIND from a saved plan: the file names the TSIG key's file, never its
    value; the apply job holds that file (and the account key), not the repo."""
    from .test_acme import ask

    use_lab_dns(repo, acme_lab)
    write_manifests(repo, ["w1.lab.test"])
    www = repo / "manifests" / "www.yaml"
    www.write_text(
        www.read_text().replace("  issuer: pebble\n", "  issuer: pebble\n  challenge: dns-01\n  dns: lab\n")
    )
    commit(repo, "www by dns-01")

    saved = tmp_path / "plan.json"
    done = funops(repo, "plan", "--out", str(saved), "--seal-to", str(keys[0]), timeout=600)
    assert done.returncode == 2, done.stderr
    order = json.loads(saved.read_text())["program"]["orders"]["www"]
    assert (order["challenge"], order["domains"]) == ("dns-01", ["w1.lab.test"])
    assert order["dns"]["tsigSecret"]["fromFile"] == "secrets/lab.tsig"  # a reference, not the key
    assert acme_lab.tsig_secret not in saved.read_text()

    shutil.rmtree(repo / "manifests")
    shutil.rmtree(repo / "templates")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(repo / ".funops" / "acme", elsewhere / ".funops" / "acme")
    (elsewhere / "secrets").mkdir()
    shutil.copy(repo / "secrets" / "lab.tsig", elsewhere / "secrets" / "lab.tsig")

    done = apply_file(saved, elsewhere, keys[1])
    assert done.returncode == 0, done.stdout + done.stderr
    serial = next(e["serial"] for e in events(done.stdout) if e["event"] == "certificate-done")
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(acme_lab.fetch_root())
    assert {served_serial(lab, n, root, "w1.lab.test") for n in ("node1", "node2")} == {serial}
    assert ask(acme_lab, "_acme-challenge.w1.lab.test.", "TXT") == []  # the record removed after
    assert acme_lab.tsig_secret not in done.stdout + done.stderr
