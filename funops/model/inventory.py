"""The inventory: the nodes funops manages."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from .common import EnvName, FieldError, Labels, SafeName, Strict, UnixName, no_dotdot, pattern


class NodeSsh(Strict):
    identity_file: str | None = None
    """The private key ssh logs in with (relative: to the repo root; default: ~/.ssh/config's
    IdentityFile, else the ssh agent and the usual keys)."""
    known_hosts_file: str | None = None
    """The known_hosts file with the node's host key (relative: to the repo; default ~/.ssh/known_hosts)."""
    strict_host_key_checking: bool | None = None
    """Refuse a host key that is not known (default: funops.yaml ssh.strictHostKeyChecking, true)."""
    connect_timeout: Annotated[float, Field(gt=0)] | None = None
    """Seconds to wait for the connection (default: funops.yaml ssh.connectTimeout)."""
    become: bool = False
    """Run as root through sudo -n when user is not root (default false)."""
    client: Literal["paramiko", "openssh"] = "paramiko"
    """The ssh client: paramiko (default, inside funops) or openssh (the system's ssh, keeping one
    connection per node open between runs: see controlPersist)."""
    control_persist: Annotated[int, Field(ge=1, le=86400)] | None = None
    """client openssh: seconds an idle connection stays open after a run, for the next run (default 60)."""

    @model_validator(mode="after")
    def _openssh_only(self) -> NodeSsh:
        if self.control_persist is not None and self.client != "openssh":
            raise FieldError(("controlPersist",), "controlPersist needs client: openssh")
        return self


class NodeAgent(Strict):
    """How to reach `funops agent serve` on the node (see `funops agent install`)."""

    url: Annotated[
        str, Field(pattern=pattern(r"^https://[^/]+/?$", "https://HOST:PORT (the agent speaks TLS only)"))
    ]
    """The agent's address: https://HOST:PORT."""
    token_from_env: EnvName | None = None
    """The environment variable holding the agent token (else tokenFile)."""
    token_file: str | None = None
    """The file holding the agent token (default .funops/agent/<node>.token, which agent install writes)."""
    known_hosts_file: str = "agent_known_hosts"
    """The file of pinned agent certificate fingerprints (default agent_known_hosts)."""
    # mTLS: the client certificate and key presented (default .funops/agent/client.{crt,key} when
    # `agent ca init` made them); with one, a token is sent only if there is one.
    client_cert: str | None = None
    """The client certificate for mTLS (default .funops/agent/client.crt, made by agent ca init)."""
    client_key: str | None = None
    """The client certificate's private key (default .funops/agent/client.key); goes with clientCert."""
    fallback: Literal["ssh"] | None = None
    """ssh: when the agent does not answer, the rest of the run goes over ssh (not when it refuses)."""

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
    """Where the node fetches its signed index and bundles: an https://, http:// or file:// URL."""
    interval_seconds: Annotated[float, Field(ge=5, le=86400)] = 60
    """Seconds between two polls (default 60)."""
    splay_seconds: Annotated[float, Field(ge=0, le=86400)] = 30
    """Seconds of random delay before each poll, so nodes do not poll at once (default 30)."""
    cohort: SafeName = "default"
    """The node's cohort: funops publish --cohort publishes to one cohort at a time (default "default")."""
    ca_file: str | None = None
    """On the node: the CA bundle for an https store (default: the system's)."""


class Node(Strict):
    name: SafeName
    """The node's name, as selectors, --node and plans know it."""
    address: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")]
    """The host name or IP address funops connects to."""
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    """The ssh port (default 22)."""
    user: UnixName = "root"
    """The user funops logs in as (default root)."""
    transport: Literal["ssh", "agent", "local"] = "ssh"
    """How funops reaches the node: ssh (default), agent (funops agent, HTTPS) or local (this machine)."""
    bind_address: (
        Annotated[str, Field(pattern=pattern(r"^[0-9a-fA-F.:]+$", "an IPv4 or IPv6 address"))] | None
    ) = None
    """The address workloads and nginx bind to on this node (default: all interfaces)."""
    labels: Labels = {}
    """Labels that selectors match (key: value)."""
    vars: dict[str, Any] = {}
    """Values for templates (node.vars)."""
    cordoned: bool = False
    """A cordoned node gets no new placements; what runs there stays (default false)."""
    root: Annotated[str, AfterValidator(no_dotdot)] | None = None
    """Local transport only: a directory every node path is placed under (relative: to the repo root)."""
    ssh: NodeSsh = NodeSsh()
    """ssh options of this node."""
    agent: NodeAgent | None = None
    """How to reach the funops agent on the node (for transport agent and pull mode)."""
    pull: NodePull | None = None
    """Pull mode: the node converges itself from the signed revision published for it."""

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
    """Fields every node of this file gets unless it sets them."""
    nodes: list[dict[str, Any]]
    """The nodes."""
