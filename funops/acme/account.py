"""The ACME account key of each issuer: `.funops/acme/<issuer>.key` (0600, never in git) on an
operator's machine, the environment variable `account_key_from_env` names where CI runs (CI keeps
nothing). `funops acme account init` makes the key when there is none and registers it; registering
again finds the same account (onlyReturnExisting first), so it is safe to repeat."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FunopsError
from ..private_file import write_private
from . import IssuerConfig

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from ..load.project import Project

KEY_DIR = ".funops/acme"


@dataclass(frozen=True)
class Account:
    issuer: str
    uri: str  # the account's URL at the CA (its `kid`)
    created: bool  # registered now (else it existed)
    key_source: str  # the file or $VARIABLE the key came from; never the key
    key_made: bool  # the key file was made now


def key_file(root: Path, issuer: str) -> Path:
    return root / KEY_DIR / f"{issuer}.key"


def load_key(root: Path, issuer: str, env: str | None) -> tuple[PrivateKeyTypes, str]:
    """The account key and where it came from: `$env` when set (CI), else the key file."""
    file = key_file(root, issuer)
    if env and os.environ.get(env):
        pem, where = os.environ[env].encode(), f"${env}"
    elif file.exists():
        pem, where = file.read_bytes(), str(file)
    else:
        hint = f"set ${env} to it (PEM) or " if env else ""
        raise FunopsError(
            f"no ACME account key for issuer {issuer}: {hint}run "
            f"`funops acme account init --issuer {issuer}` (it makes {file})"
        )
    return parse_key(pem, where), where


def parse_key(pem: bytes, where: str) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise FunopsError(f"{where}: not an unencrypted private key in PEM ({exc})") from None
    if isinstance(key, rsa.RSAPrivateKey) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    ):
        return key
    raise FunopsError(f"{where}: an ACME account key must be ECDSA P-256 or RSA")


def init(project: Project, issuer_name: str) -> Account:
    """The issuer's account key (made when there is none) and its account at the CA (registered
    when there is none). Raises AcmeError when the CA refuses or cannot be reached."""
    from .client import connect, ensure_account, new_private_key, private_pem
    from .config import issuer_config

    issuer: IssuerConfig = issuer_config(project, issuer_name)
    env = project.settings.acme.issuers[issuer_name].account_key_from_env
    made = False
    if not (env and os.environ.get(env)) and not key_file(project.root, issuer_name).exists():
        write_private(key_file(project.root, issuer_name), private_pem(new_private_key("ecdsa-p256")))
        made = True
    key, where = load_key(project.root, issuer_name, env)
    client = connect(issuer, key)
    regr, created = ensure_account(client, issuer)
    return Account(issuer=issuer_name, uri=regr.uri, created=created, key_source=where, key_made=made)
