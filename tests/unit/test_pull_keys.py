"""Pull mode's signing key (funops/pull/keys.py, `funops agent pull-key init`): what `sign` makes, the
nodes' `openssl pkeyutl -verify -rawin` accepts, and nothing else."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from funops.cli.main import app
from funops.errors import FunopsError
from funops.load.loader import load_project
from funops.pull import keys


def _verify(tmp: Path, public: bytes, data: bytes, signature: bytes) -> int:
    (tmp / "pub.pem").write_bytes(public)
    (tmp / "data").write_bytes(data)
    (tmp / "sig").write_bytes(signature)
    return subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", tmp / "pub.pem", "-rawin",
         "-in", tmp / "data", "-sigfile", tmp / "sig"],
        capture_output=True,
    ).returncode  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_openssl_accepts_what_the_key_signs_and_refuses_tampered_data(tmp_path: Path) -> None:
    private_pem, public = keys.generate()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    private = load_pem_private_key(private_pem, None)
    data = b'{"generation": 7, "sha256": "ab"}'
    signature = private.sign(data)  # type: ignore[union-attr,call-arg]
    assert len(signature) == 64
    assert _verify(tmp_path, public, data, signature) == 0
    assert _verify(tmp_path, public, data.replace(b"7", b"8"), signature) != 0
    assert _verify(tmp_path, keys.generate()[1], data, signature) != 0


def test_init_writes_the_pair_and_keeps_an_existing_one(example: Path) -> None:
    project = load_project(example, None, None, manifests=False)
    private, public = keys.init(project)
    assert private == example / ".funops" / "pull-signing.key"
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert public == example / "certs" / "pull-signing.pub"
    before = private.read_bytes()
    with pytest.raises(FunopsError, match="exists already"):
        keys.init(project)
    keys.init(project, force=True)
    assert private.read_bytes() != before


def test_the_signing_key_comes_from_the_env_else_the_file(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(example, None, None, manifests=False)
    monkeypatch.delenv("FUNOPS_PULL_SIGNING_KEY", raising=False)
    with pytest.raises(FunopsError, match=r"set \$FUNOPS_PULL_SIGNING_KEY .* pull-key init"):
        keys.load_private(project)
    keys.init(project)
    from_file = keys.load_private(project)
    other, _ = keys.generate()
    monkeypatch.setenv("FUNOPS_PULL_SIGNING_KEY", other.decode())
    from_env = keys.load_private(project)
    assert from_env.public_key() != from_file.public_key()
    monkeypatch.setenv("FUNOPS_PULL_SIGNING_KEY", "not a key")
    with pytest.raises(FunopsError, match=r"\$FUNOPS_PULL_SIGNING_KEY: not a private key"):
        keys.load_private(project)


def test_pull_key_init_prints_where_each_half_went(example: Path) -> None:
    done = CliRunner().invoke(app, ["agent", "pull-key", "init", "-C", str(example)])
    assert done.exit_code == 0, done.output
    assert "certs/pull-signing.pub (commit it)" in done.output
    assert ".funops/pull-signing.key (0600" in done.output and "$FUNOPS_PULL_SIGNING_KEY" in done.output
    again = CliRunner().invoke(app, ["agent", "pull-key", "init", "-C", str(example)])
    assert again.exit_code != 0 and "exists already" in again.output
