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
    """Seconds to wait for a connection to a node (default 10)."""
    command_timeout: Annotated[float, Field(gt=0)] = 300
    """Seconds a command on a node may run (default 300)."""
    strict_host_key_checking: bool = True
    """Refuse a node whose host key is not known (default true)."""


class InjectedEnv(Strict):
    """An env variable every matching app gets, e.g. a per-app MONGODB_URI."""

    name: EnvName
    """The variable's name."""
    template: str
    """Its value: a jinja2 template (project, node, app, release)."""
    types: list[RunningTypeName] = list(RUNNING)
    """The app types that get it (default: every type funops runs)."""


class PullSettings(Strict):
    """Pull mode: where `funops publish` writes, and the ed25519 key pair that signs what it writes."""

    store: str | None = None
    """The directory funops publish writes to (what a web server serves to the nodes); --store overrides."""
    public_key: str = "certs/pull-signing.pub"
    """The public key the nodes check signatures with, in the repo (default certs/pull-signing.pub)."""
    signing_key_from_env: EnvName = "FUNOPS_PULL_SIGNING_KEY"
    """The environment variable holding the private signing key, PEM (default FUNOPS_PULL_SIGNING_KEY)."""
    signing_key_file: str | None = None
    """Else the file holding it (default .funops/pull-signing.key)."""
    # An index older than this is refused by the nodes (a frozen store cannot hold them on old code).
    not_after_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24 * 7
    """Hours a published index stays valid: the nodes refuse an older one (default 168, a week)."""


class AcmeEab(Strict):
    """External account binding: some CAs (ZeroSSL, Google, a company's own) tie an ACME account to an
    account of theirs through a key id and an HMAC key they issue."""

    kid: str
    """The key id the CA issued."""
    hmac_key: SecretRef
    """The HMAC key the CA issued (base64url), as a secret reference."""


class AcmeIssuer(Strict):
    """An ACME CA that Certificates name (`spec.issuer`)."""

    directory: Annotated[str, Field(pattern=r"^https://\S+$")]
    """The CA's ACME directory URL (https)."""
    email: str | None = None
    """The account's contact address: the CA's expiry warnings go there."""
    eab: AcmeEab | None = None
    """External account binding, for CAs that require one."""
    ca_bundle: RepoPath | None = None
    """A private CA's root certificates (PEM, in the repo), for HTTPS to its directory."""
    account_key_from_env: EnvName | None = None
    """The variable holding the account's private key, PEM (default: .funops/acme/<issuer>.key)."""


class AcmeDns(Strict):
    """An authoritative DNS server that takes RFC 2136 updates signed with TSIG (BIND, Knot, PowerDNS)
    for DNS-01: Certificates name it (`spec.dns`)."""

    server: str
    """The address or name of the primary server that takes the updates."""
    port: Annotated[int, Field(ge=1, le=65535)] = 53
    """Its port (default 53)."""
    zone: str
    """The zone the TXT records go in, such as example.com."""
    tsig_key_name: str
    """The TSIG key's name."""
    tsig_algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"] = (
        "hmac-sha256"
    )
    """The TSIG algorithm (default hmac-sha256)."""
    tsig_secret: SecretRef
    """The TSIG secret (base64, as tsig-keygen prints it), as a secret reference."""
    propagation_seconds: Annotated[float, Field(gt=0, le=3600)] = 120
    """Seconds at most to wait for every authoritative server to serve the record (default 120)."""


class AcmeSettings(Strict):
    issuers: dict[SafeName, AcmeIssuer] = {}
    """ACME CAs by name, which Certificates name as their issuer."""
    dns: dict[SafeName, AcmeDns] = {}
    """DNS servers by name, which Certificates using dns-01 name as their dns."""


class Settings(Strict):
    api_version: Literal["funops/v1"] = "funops/v1"
    """The format of the file: funops/v1."""
    project: SafeName = "funops"
    """The project's name: in templates (project.name), plans and pull bundles (default funops)."""
    parallel: Annotated[int, Field(ge=1, le=256)] = 20
    """How many nodes are worked on at once (default 20; -p overrides)."""
    state_dir: AbsolutePath = "/var/lib/funops"
    """Where funops keeps its state on each node (default /var/lib/funops)."""
    journal: str = ".funops/journal.jsonl"
    """The controller's journal of runs (relative: to the repo root; default .funops/journal.jsonl)."""
    allowed_roots: list[AbsolutePath] = DEFAULT_ALLOWED_ROOTS
    """The directories below which apps' files and directories may go on the nodes."""
    strategy: UpdateStrategy = UpdateStrategy()
    """The rollout strategy of apps that set none."""
    ssh: SshSettings = SshSettings()
    """ssh defaults: timeouts and host key checking."""
    placement: PlacementSettings = PlacementSettings()
    """Thresholds of disk-aware placement."""
    inject_env: list[InjectedEnv] = []
    """Environment variables every app of the given types gets, such as a per-app MONGODB_URI."""
    pull: PullSettings = PullSettings()
    """Pull mode: where funops publish writes and the key that signs it."""
    acme: AcmeSettings = AcmeSettings()
    """ACME CAs and DNS servers, for Certificates."""
    keep_releases: Annotated[int, Field(ge=1, le=100)] = 5
    """Releases each node keeps with their artifacts, for rollback and history (default 5)."""
    saved_plan_max_age_seconds: Annotated[float, Field(gt=0)] = 3600
    """apply PLANFILE refuses a saved plan older than this many seconds (default 3600)."""
