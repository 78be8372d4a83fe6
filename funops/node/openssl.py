"""The `openssl` CLI for what the node's standard-library Python cannot do: check an ed25519
signature, and open a bundle sealed to the agent's certificate (CMS, ECDH + AES-256-GCM). The agent
already needs openssl (it makes its own key and certificate). `funops publish` writes the same CMS
in-process (funops/pull/seal.py: `cryptography`'s own CMS builder seals to RSA recipients only);
`seal` here is its fallback for other keys, and the reference its tests compare with."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


class OpensslError(Exception):
    pass


def verify(public_key_file: str, data: bytes, signature: bytes) -> bool:
    """Is `signature` the ed25519 signature of `data` by the key in `public_key_file` (PEM)?"""
    with _scratch() as tmp:
        _write(f"{tmp}/data", data)
        _write(f"{tmp}/sig", signature)
        done = _openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", public_key_file, "-rawin",
            "-in", f"{tmp}/data", "-sigfile", f"{tmp}/sig",
        )  # fmt: skip
        return done.returncode == 0


def seal(certificate_pem: bytes, data: bytes) -> bytes:
    """`data` encrypted to the holder of the certificate's key (CMS, DER)."""
    with _scratch() as tmp:
        _write(f"{tmp}/cert.pem", certificate_pem)
        _write(f"{tmp}/data", data)
        done = _openssl(
            "cms", "-encrypt", "-binary", "-aes-256-gcm", "-recip", f"{tmp}/cert.pem",
            "-outform", "DER", "-in", f"{tmp}/data", "-out", f"{tmp}/sealed",
        )  # fmt: skip
        if done.returncode != 0:
            raise OpensslError(f"cannot seal to the node's certificate: {_why(done)}")
        with open(f"{tmp}/sealed", "rb") as f:
            return f.read()


def open_sealed(certificate_file: str, key_file: str, sealed: bytes) -> bytes:
    with _scratch() as tmp:
        _write(f"{tmp}/sealed", sealed)
        done = _openssl(
            "cms", "-decrypt", "-binary", "-inform", "DER", "-recip", certificate_file,
            "-inkey", key_file, "-in", f"{tmp}/sealed", "-out", f"{tmp}/data",
        )  # fmt: skip
        if done.returncode != 0:
            raise OpensslError(f"cannot open the bundle with this node's key: {_why(done)}")
        with open(f"{tmp}/data", "rb") as f:
            return f.read()


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("openssl")
    if binary is None:
        raise OpensslError("the openssl command is not installed (apt install openssl)")
    return subprocess.run([binary, *args], capture_output=True, check=False, timeout=60)


def _why(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[0] if lines else f"exit {done.returncode}"


@contextmanager
def _scratch() -> Iterator[str]:
    """A private directory (0700: the opened bundle holds secrets), removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="funops-pull-")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
