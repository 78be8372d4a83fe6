"""funops.yaml: project-wide settings and defaults.

Above the app types (docs/architecture.md, "Layers and imports"): `injectEnv.types` takes the names
of the types funops runs, from their registry.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .apptypes import RUNNING, RunningTypeName
from .model.common import AbsolutePath, EnvName, RepoPath, SafeName, SecretRef, Strict
from .model.placement import PlacementSettings
from .model.strategy import UpdateStrategy

DEFAULT_ALLOWED_ROOTS = ["/etc/funops", "/etc/nginx/conf.d", "/srv", "/opt", "/var/lib"]


class SshSettings(Strict):
    connect_timeout: Annotated[float, Field(gt=0)] = 10
    command_timeout: Annotated[float, Field(gt=0)] = 300
    strict_host_key_checking: bool = True


class InjectedEnv(Strict):
    """An env variable every matching app gets, e.g. a per-app MONGODB_URI."""

    name: EnvName
    template: str
    types: list[RunningTypeName] = list(RUNNING)  # app types funops runs (all of them by default)


class PullSettings(Strict):
    """Pull mode: where `funops publish` writes, and the ed25519 key pair that signs what it writes."""

    store: str | None = None  # a directory (what a web server serves to the nodes); --store overrides
    public_key: str = "certs/pull-signing.pub"  # in the repo; `agent install` gives it to the nodes
    signing_key_from_env: EnvName = "FUNOPS_PULL_SIGNING_KEY"  # the private key (PEM), where CI runs
    signing_key_file: str | None = None  # else this file (default .funops/pull-signing.key)
    # An index older than this is refused by the nodes (a frozen store cannot hold them on old code).
    not_after_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24 * 7


class AcmeEab(Strict):
    """External account binding: some CAs (ZeroSSL, Google, a company's own) tie an ACME account to an
    account of theirs through a key id and an HMAC key they issue."""

    kid: str
    hmac_key: SecretRef  # base64url, as the CA gives it


class AcmeIssuer(Strict):
    """An ACME CA that Certificates name (`spec.issuer`)."""

    directory: Annotated[str, Field(pattern=r"^https://\S+$")]  # the CA's directory URL
    email: str | None = None  # the account's contact: the CA's expiry warnings go there
    eab: AcmeEab | None = None
    ca_bundle: RepoPath | None = None  # a private ACME CA's root(s), PEM, for HTTPS to its directory
    # The account's private key (PEM): this variable where CI runs, else .funops/acme/<issuer>.key
    account_key_from_env: EnvName | None = None


class AcmeDns(Strict):
    """An authoritative DNS server that takes RFC 2136 updates signed with TSIG (BIND, Knot, PowerDNS)
    for DNS-01: Certificates name it (`spec.dns`)."""

    server: str  # address (or name) of the primary that takes the updates
    port: Annotated[int, Field(ge=1, le=65535)] = 53
    zone: str  # the zone the TXT records go in, e.g. example.com
    tsig_key_name: str
    tsig_algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"] = (
        "hmac-sha256"
    )
    tsig_secret: SecretRef  # base64, as tsig-keygen prints it
    propagation_seconds: Annotated[float, Field(gt=0, le=3600)] = 120  # wait for every authoritative server


class AcmeSettings(Strict):
    issuers: dict[SafeName, AcmeIssuer] = {}
    dns: dict[SafeName, AcmeDns] = {}


class Settings(Strict):
    api_version: Literal["funops/v1"] = "funops/v1"
    project: SafeName = "funops"
    parallel: Annotated[int, Field(ge=1, le=256)] = 20
    state_dir: AbsolutePath = "/var/lib/funops"
    journal: str = ".funops/journal.jsonl"
    allowed_roots: list[AbsolutePath] = DEFAULT_ALLOWED_ROOTS
    strategy: UpdateStrategy = UpdateStrategy()
    ssh: SshSettings = SshSettings()
    placement: PlacementSettings = PlacementSettings()
    inject_env: list[InjectedEnv] = []
    pull: PullSettings = PullSettings()
    acme: AcmeSettings = AcmeSettings()
    # Releases each node keeps with their artifacts (files, images), for rollback and history.
    keep_releases: Annotated[int, Field(ge=1, le=100)] = 5
    # `apply PLANFILE` refuses a saved plan older than this.
    saved_plan_max_age_seconds: Annotated[float, Field(gt=0)] = 3600
