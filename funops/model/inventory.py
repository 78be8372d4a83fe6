"""The inventory: the nodes funops manages."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from .common import EnvName, FieldError, Labels, SafeName, Strict, UnixName, no_dotdot, pattern


class NodeSsh(Strict):
    identity_file: str | None = None
    known_hosts_file: str | None = None
    strict_host_key_checking: bool | None = None  # None: the project default (strict)
    connect_timeout: Annotated[float, Field(gt=0)] | None = None
    become: bool = False  # run as root through `sudo -n` when user is not root


class NodeAgent(Strict):
    """How to reach `funops agent serve` on the node (see `funops agent install`)."""

    url: Annotated[
        str, Field(pattern=pattern(r"^https://[^/]+/?$", "https://HOST:PORT (the agent speaks TLS only)"))
    ]
    token_from_env: EnvName | None = None  # else token_file
    token_file: str | None = None  # default .funops/agent/<node>.token, which `agent install` writes
    known_hosts_file: str = "agent_known_hosts"  # the pinned certificate fingerprints
    # mTLS: the client certificate and key presented (default .funops/agent/client.{crt,key} when
    # `agent ca init` made them); with one, a token is sent only if there is one.
    client_cert: str | None = None
    client_key: str | None = None
    fallback: Literal["ssh"] | None = None  # when the agent does not answer (not: when it refuses)

    @model_validator(mode="after")
    def _client_pair(self) -> NodeAgent:
        if (self.client_cert is None) != (self.client_key is None):
            raise FieldError(("clientKey" if self.client_key is None else "clientCert",),
                             "clientCert and clientKey go together")  # fmt: skip
        return self


class NodePull(Strict):
    """Pull mode (`funops publish`, `funops agent pull`): the node converges itself from the signed
    revision published for it; a push `apply` leaves it alone."""

    # Where the node fetches its index and bundles: the web server (or object store endpoint) in front
    # of the directory `funops publish` writes. http is enough for integrity (everything is signed);
    # https keeps the revision private.
    store: Annotated[
        str, Field(pattern=pattern(r"^(https?|file)://\S+$", "an https://, http:// or file:// URL"))
    ]
    interval_seconds: Annotated[float, Field(ge=5, le=86400)] = 60
    splay_seconds: Annotated[float, Field(ge=0, le=86400)] = 30  # the timer's RandomizedDelaySec
    cohort: SafeName = "default"  # `funops publish --cohort K` publishes to one cohort at a time
    ca_file: str | None = None  # on the node: the CA bundle for an https store (default: the system's)


class Node(Strict):
    name: SafeName
    address: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    user: UnixName = "root"
    transport: Literal["ssh", "agent", "local"] = "ssh"
    # The address workloads and nginx bind to on this node; None = all interfaces.
    bind_address: (
        Annotated[str, Field(pattern=pattern(r"^[0-9a-fA-F.:]+$", "an IPv4 or IPv6 address"))] | None
    ) = None
    labels: Labels = {}
    vars: dict[str, Any] = {}
    cordoned: bool = False
    # local transport only: prefix of every path on the node (relative: to the repo root)
    root: Annotated[str, AfterValidator(no_dotdot)] | None = None
    ssh: NodeSsh = NodeSsh()
    agent: NodeAgent | None = None
    pull: NodePull | None = None

    @model_validator(mode="after")
    def _transport_options(self) -> Node:
        if self.root is not None and self.transport != "local":
            raise FieldError(("root",), "root is only valid with transport: local")
        if self.transport == "agent" and self.agent is None:
            raise FieldError(("agent",), "transport: agent needs an agent: {url, tokenFromEnv} section")
        if self.pull is not None and self.agent is None:  # its status is read through the agent
            raise FieldError(("pull",), "pull mode needs the agent: give the node an agent: {url} section")
        return self

    def matches(self, match_labels: dict[str, str], names: list[str]) -> bool:
        """A selector matches by name, or by all of its labels; an empty selector matches all."""
        if self.name in names:
            return True
        if names and not match_labels:
            return False
        return all(self.labels.get(k) == v for k, v in match_labels.items())


class InventoryFile(Strict):
    """One inventory/*.yaml file: shared defaults, then the nodes."""

    defaults: dict[str, Any] = {}
    nodes: list[dict[str, Any]]
