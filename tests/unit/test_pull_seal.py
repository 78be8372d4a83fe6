"""`funops publish` seals in-process (funops/pull/seal.py) what the node opens with the openssl binary,
and seals again only what must be: an unchanged bundle stays in the store, while a changed secret,
template, agent certificate or funops version seals a new one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

import funops.pull.publish as publishing
from bench.pull import repo as pull_repo
from funops.load.loader import load_project
from funops.node import index_key, openssl
from funops.pull.seal import seal
from funops.pull.store import DirectoryStore

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
NODES = ["n001", "n002"]


def _structure(der: bytes, tmp: Path) -> list[str]:
    """openssl's reading of a CMS blob: each element's depth, type and length, values left out."""
    (tmp / "blob").write_bytes(der)
    out = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-in", str(tmp / "blob")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [re.sub(r"^\s*\d+:|\[HEX DUMP\].*|:[0-9A-F]+$", "", line).strip() for line in out.splitlines()]


def _certificate(directory: Path, kind: str = "ec") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "agent.key", directory / "agent.crt"
    options = (
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else ["-newkey", "rsa:2048"]
    )
    subprocess.run(
        ["openssl", "req", "-x509", *options, "-nodes", "-days", "2", "-subj", "/CN=seal test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.mark.parametrize("size", [0, 1, 127, 128, 70_000])
def test_openssl_opens_what_publish_seals_in_process(tmp_path: Path, size: int) -> None:
    key, cert = _certificate(tmp_path)
    data = os.urandom(size)
    sealed = seal(cert.read_bytes(), data)
    assert openssl.open_sealed(str(cert), str(key), sealed) == data
    # The envelope openssl itself writes, element for element (algorithms, versions, sizes).
    assert _structure(sealed, tmp_path) == _structure(openssl.seal(cert.read_bytes(), data), tmp_path)
    other_key, other_cert = _certificate(tmp_path / "other")
    with pytest.raises(openssl.OpensslError):
        openssl.open_sealed(str(other_cert), str(other_key), sealed)


def test_a_certificate_without_an_ec_key_is_sealed_by_openssl(tmp_path: Path) -> None:
    key, cert = _certificate(tmp_path, "rsa")
    assert openssl.open_sealed(str(cert), str(key), seal(cert.read_bytes(), b"bundle")) == b"bundle"


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A repo of two pull nodes (the bench's: one shared agent certificate), its store, its credentials."""
    repo, store, creds = tmp_path / "repo", tmp_path / "store", tmp_path / "creds"
    pull_repo.credentials(creds)
    pull_repo.write_repo(repo, creds, NODES, store, f"file://{store}", interval=60, splay=0)
    return repo, store, creds


def _publish(repo: Path, store: Path) -> set[str]:
    """The nodes that got a new bundle."""
    return {p.node for p in publishing.publish(load_project(repo, None), DirectoryStore(store)) if p.changed}


def _bundles(store: Path, node: str) -> int:
    return len(list((store / "nodes" / node / "bundles").iterdir()))


def test_an_unchanged_bundle_is_not_sealed_again(fleet: tuple[Path, Path, Path]) -> None:
    repo, store, _ = fleet
    assert _publish(repo, store) == set(NODES)
    assert _publish(repo, store) == set()
    assert [_bundles(store, n) for n in NODES] == [1, 1]


def test_a_changed_secret_or_template_seals_again(fleet: tuple[Path, Path, Path]) -> None:
    repo, store, _ = fleet
    _publish(repo, store)
    (repo / "secrets" / "api-token").write_text("a new token\n")
    assert _publish(repo, store) == set(NODES)
    manifest = repo / "manifests" / "pulled.yaml"
    manifest.write_text(manifest.read_text().replace("hello from {{ node.name }}", "hi from {{ node.name }}"))
    assert _publish(repo, store) == set(NODES)
    assert [_bundles(store, n) for n in NODES] == [3, 3]


def test_a_new_agent_certificate_seals_that_node_again_to_its_new_key(
    fleet: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    repo, store, creds = fleet
    _publish(repo, store)
    key, cert = _certificate(tmp_path / "reinstalled")  # `agent install` again: the node made a new key
    (repo / "certs" / "agents" / "n001.pem").write_bytes(cert.read_bytes())
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()
    pins = repo / "agent_known_hosts"
    first, *rest = pins.read_text().splitlines(keepends=True)
    pins.write_text(f"{first.split()[0]} sha256:{pin}\n" + "".join(rest))
    assert _publish(repo, store) == {"n001"}
    named = json.loads((store / index_key("n001")).read_text())["index"]["bundle"]  # sealed to the new key
    sealed = (store / named).read_bytes()
    assert openssl.open_sealed(str(cert), str(key), sealed).startswith(b"{")
    with pytest.raises(openssl.OpensslError):
        openssl.open_sealed(str(creds / "agent.crt"), str(creds / "agent.key"), sealed)


def test_another_funops_version_seals_again(
    fleet: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, store, _ = fleet
    _publish(repo, store)
    monkeypatch.setattr(publishing, "__version__", "999.0.0")
    assert _publish(repo, store) == set(NODES)
    assert _publish(repo, store) == set()
