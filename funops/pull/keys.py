"""The publishing key pair (ed25519): CI signs the indexes with the private key, the nodes hold only
the public key (settings.pull.publicKey, shipped by `agent install`). Controller side (`cryptography`)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FunopsError
from ..private_file import write_private

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..load.project import Project

DEFAULT_KEY_FILE = ".funops/pull-signing.key"
Verify = Callable[[bytes, bytes], bool]  # (data, signature) → signed by the key?


def generate() -> tuple[bytes, bytes]:
    """A new key pair: (private key PEM PKCS8, public key PEM SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()), public_pem(key)


def private_key_file(project: Project) -> Path:
    return project.root / (project.settings.pull.signing_key_file or DEFAULT_KEY_FILE)


def public_key_file(project: Project) -> Path:
    return project.root / project.settings.pull.public_key


def init(project: Project, force: bool = False) -> tuple[Path, Path]:
    """`funops agent pull-key init`: a new pair, the public key into the repo (to commit), the private
    key beside it (0600, never for git). An existing key is kept unless `force`: a new one makes
    every node refuse what it signs until `agent install` gives them its public key."""
    private_path, public_path = private_key_file(project), public_key_file(project)
    there = [p for p in (private_path, public_path) if p.exists()]
    if there and not force:
        raise FunopsError(
            f"a pull signing key exists already ({', '.join(map(str, there))}); --force makes a new "
            "one (nodes then refuse what is signed with it until `funops agent install` ships its "
            "public key to them)"
        )
    private, public = generate()
    write_private(private_path, private)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(public)
    return private_path, public_path


def load_private(project: Project) -> Ed25519PrivateKey:
    """From the env variable settings.pull.signingKeyFromEnv (CI), else the key file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    env = project.settings.pull.signing_key_from_env
    file = private_key_file(project)
    if os.environ.get(env):
        pem, where = os.environ[env].encode(), f"${env}"
    elif file.exists():
        pem, where = file.read_bytes(), str(file)
    else:
        raise FunopsError(
            f"no publishing key: set ${env} to the private key (PEM) or put it in {file} "
            "(`funops agent pull-key init` makes a pair)"
        )
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise FunopsError(f"{where}: not a private key in PEM: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise FunopsError(f"{where}: an ed25519 key is needed, not {type(key).__name__}")
    return key


def public_pem(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization as s

    return key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)


def nodes_public_key(project: Project, key: Ed25519PrivateKey) -> bytes:
    """The repo's public key (what the nodes verify with), which must be this private key's half."""
    path = public_key_file(project)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise FunopsError(f"no public key at {path} ({exc.strerror}): `funops agent pull-key init`") from exc
    if pem.strip() != public_pem(key).strip():
        raise FunopsError(
            f"the signing key is not the pair of {path}, which the nodes verify with: every node would "
            "refuse what it signs"
        )
    return pem


def digest_key(key: Ed25519PrivateKey) -> bytes:
    """A secret of the publisher's for keyed digests of bundles (a plain sha256 of a bundle would let
    anyone who reads the store test guesses of its secrets)."""
    from cryptography.hazmat.primitives import serialization as s

    raw = key.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
    return hmac.new(raw, b"funops publish: bundle digests", hashlib.sha256).digest()


def verifier(pem: bytes) -> Verify:
    """verify(data, signature) with this public key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    public = load_pem_public_key(pem)

    def verify(data: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, data)  # type: ignore[union-attr,call-arg]
        except InvalidSignature:
            return False
        return True

    return verify
