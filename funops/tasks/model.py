"""Tasks as values: what to do on a node, never how. Paths are node paths.

Resource kinds plan these (funops/kinds/), the apply runner sends them, and a transport decides how
to run them: `shell.py` renders them into one `sh -s` bundle for ssh and local nodes; the agent runs
the same values natively. Each has the `name` people see in events, journals and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import values

ARTIFACT_MARKER = ".funops-artifact"  # in each complete release dir: the sha256 it was made from


@dataclass(frozen=True)
class Task:
    """A task's base: its `name` for people, and the data it reads on stdin. Every field is checked as
    the task is made (values.py): a task value that exists holds what its fields may."""

    def __post_init__(self) -> None:
        values.check(self)

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def stdin(self) -> bytes | None:
        """Data the task reads (file contents, an upload): sent on stdin, never on a command line."""
        return None


# ---- files and directories -------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteFile(Task):
    """Atomic write (temp file in the same dir, fsync, rename); with `backup` the previous version is
    kept there. Without `content` it comes from the node's artifact store (by `sha256`), checked."""

    path: str
    sha256: str
    mode: str
    owner: str
    group: str
    backup: str | None
    content: bytes | None = field(default=None, repr=False)
    store: str | None = None  # the artifact store path of `sha256`, when there is no content
    private_dirs: bool = False  # directories it creates: 0700 owned by the file's owner (secrets)
    label: str = ""

    @property
    def name(self) -> str:
        return f"write {self.label or self.path}"

    @property
    def stdin(self) -> bytes | None:
        return self.content


@dataclass(frozen=True)
class RestoreFile(Task):
    """Undo a write: put the kept previous version back, or remove a file that was new."""

    path: str
    backup: str

    @property
    def name(self) -> str:
        return f"restore file:{self.path}"


@dataclass(frozen=True)
class RemoveFile(Task):
    """Remove a file funops wrote, keeping it as `backup` for a rollback."""

    path: str
    backup: str

    @property
    def name(self) -> str:
        return f"remove file:{self.path}"


@dataclass(frozen=True)
class EnsureDirectory(Task):
    """Create (with parents) and set owner, group and mode; an existing one only gets those set."""

    path: str
    mode: str
    owner: str
    group: str

    @property
    def name(self) -> str:
        return f"ensure directory:{self.path}"


@dataclass(frozen=True)
class RemoveDirectory(Task):
    """Only an empty directory goes: what an app left in it is data, not funops's to delete."""

    path: str

    @property
    def name(self) -> str:
        return f"remove directory:{self.path}"


@dataclass(frozen=True)
class KeepArtifacts(Task):
    """The artifact store keeps the content of every file a kept release names, and only that."""

    store: str
    files: tuple[tuple[str, str], ...]  # (sha256, node path) to copy in while the live file has it
    keep: frozenset[str]

    @property
    def name(self) -> str:
        return "keep release artifacts"


@dataclass(frozen=True)
class DeletePaths(Task):
    """Remove these files (an ACME challenge's tokens, a `current` link): gone is fine."""

    paths: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"delete {len(self.paths)} path(s)"


@dataclass(frozen=True)
class CheckChallenge(Task):
    """The node's own http server answers an ACME HTTP-01 token with its key authorization (the body's
    `sha256`): the self-check before the CA is asked to look (cert-manager's), retried for a few
    seconds (a reload in progress)."""

    address: str
    port: int
    host: str
    token: str
    sha256: str

    @property
    def name(self) -> str:
        return f"check acme-challenge {self.token[:12]}… on {self.host}"


@dataclass(frozen=True)
class PruneVersions(Task):
    """In `directory` (a certificate's versions), keep the newest `keep` version dirs and the one its
    `current` link names; the rest go."""

    directory: str
    keep: int

    @property
    def name(self) -> str:
        return f"prune versions in {self.directory}"


# ---- systemd ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonReload(Task):
    """systemd reads its unit files again. With `unit_files` (those this run wrote or removed), only
    if one of them is not loaded from that file as it is now: systemd loads a unit file it had not
    found when the unit is next used (v245 on), so a new unit needs no reload, and a reload makes
    systemd parse every unit and re-serialize its state (seconds on a busy node)."""

    unit_files: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "daemon-reload"


@dataclass(frozen=True)
class StartUnit(Task):
    """Enable and start; `restart` when its unit file, env or config changed."""

    unit: str
    restart: bool

    @property
    def name(self) -> str:
        return f"{'restart' if self.restart else 'start'} unit:{self.unit}"


@dataclass(frozen=True)
class StopUnit(Task):
    """Disable and stop (a unit that is already gone is fine)."""

    unit: str

    @property
    def name(self) -> str:
        return f"stop unit:{self.unit}"


@dataclass(frozen=True)
class EnsureUser(Task):
    """A system user without login or home; left alone if it exists."""

    user: str

    @property
    def name(self) -> str:
        return f"ensure user {self.user}"


# ---- containers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContainer(Task):
    """Pull if missing, stop gracefully and remove the old container, run the new one."""

    spec: Mapping[str, Any]  # the run spec (compile/container/run.json.j2); envFile is a node path

    @property
    def name(self) -> str:
        return f"run container:{self.spec['name']}"


@dataclass(frozen=True)
class StartContainer(Task):
    """Start a stopped container as it is."""

    container: str

    @property
    def name(self) -> str:
        return f"start container:{self.container}"


@dataclass(frozen=True)
class RemoveContainer(Task):
    """Stop gracefully and remove; with `remove_image`, its image too unless a kept release needs it."""

    container: str
    remove_image: bool
    keep_images: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"remove container:{self.container}"


@dataclass(frozen=True)
class PruneImages(Task):
    """Images of these repositories that no kept release needs (and no container uses)."""

    repositories: frozenset[str]
    keep: frozenset[str]

    @property
    def name(self) -> str:
        return "prune images"


# ---- artifacts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceArtifact(Task):
    """Fetch (`url`) or receive (`content`) into a temp dir, check the sha256, unpack, rename into the
    release dir, switch the `link` by renaming a new link over it, keep the newest `keep`."""

    link: str
    directory: str  # the release dir
    release: str
    sha256: str
    keep: int
    url: str | None = None
    upload: str | None = None  # the repo path an upload came from (for messages)
    file: str = ""  # a single file kept under this name; "" to unpack a tar
    content: bytes | None = field(default=None, repr=False)
    label: str = ""

    @property
    def name(self) -> str:
        return f"place {self.label or self.link}"

    @property
    def stdin(self) -> bytes | None:
        return self.content


@dataclass(frozen=True)
class RemoveArtifact(Task):
    """The app is gone from the node: its release dirs go, `link` and all."""

    link: str

    @property
    def name(self) -> str:
        return f"remove artifact:{self.link}"


# ---- nginx ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NginxTest(Task):
    """`nginx -t`: a config that fails it is never reloaded."""

    @property
    def name(self) -> str:
        return "nginx -t"


@dataclass(frozen=True)
class NginxReload(Task):
    """Reload nginx to the config just tested."""

    @property
    def name(self) -> str:
        return "reload nginx"


@dataclass(frozen=True)
class NginxReloadSettled(NginxReload):
    """A reload done only once nginx serves the new configuration: a drain waits next for the
    requests the old workers still have in flight."""


# ---- the app and the node ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthProbe:
    """An app's health check as a task carries it (the manifest's `healthCheck`, in plain values)."""

    type: str  # http, tcp or process
    path: str
    port: int | None
    expect_status: int
    interval: float
    timeout: float
    retries: int

    def __post_init__(self) -> None:
        values.check(self)

    @classmethod
    def of(cls, check: Any) -> HealthProbe:
        """From the manifest's HealthCheck model."""
        return cls(**{f: getattr(check, f) for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CheckHealth(Task):
    """Retry the check until it passes (or give up), then hold for `min_healthy_seconds` and check
    again, so a process that crashes right after start fails. `unit`/`container`: it must be running."""

    app: str
    check: HealthProbe
    host: str
    port: int | None
    unit: str | None
    container: str | None
    min_healthy_seconds: float

    @property
    def name(self) -> str:
        return f"health {self.check.type} {self.app}"


@dataclass(frozen=True)
class WriteState(Task):
    """The node state file: atomic, root only."""

    path: str
    content: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return "record state"

    @property
    def stdin(self) -> bytes | None:
        return self.content


# ---- draining an instance behind the ingress (apply/drain.py) ---------------------------------------


@dataclass(frozen=True)
class DrainWrite(Task):
    """Swap a site nginx already serves for one with some instances marked down, the old one kept
    beside it (`.funops-drain`, not `.conf`: nginx ignores it) until `DrainTest` settles it."""

    path: str
    mode: str
    content: bytes = field(repr=False)
    label: str = ""

    @property
    def name(self) -> str:
        return f"drain-write {self.label or self.path}"

    @property
    def stdin(self) -> bytes | None:
        return self.content


@dataclass(frozen=True)
class DrainTest(Task):
    """`nginx -t`: a failure puts the old sites back and fails; a pass drops the kept ones."""

    paths: tuple[str, ...]

    @property
    def name(self) -> str:
        return "nginx -t"


@dataclass(frozen=True)
class AwaitIdle(Task):
    """Until no connection is established to these local ports, at most `timeout` seconds. `host`:
    the address the instance listens on ("" or 0.0.0.0: any), so that another instance on the same
    port of another address (a node's second address, a neighbour sharing its network) is not waited for."""

    ports: tuple[int, ...]
    timeout: float
    host: str = ""

    @property
    def name(self) -> str:
        return "await idle"


# ---- reads: run alone, their output parsed by the controller (gather, diffs, the drift check) ------


@dataclass(frozen=True)
class Probe(Task):
    """The live facts of these resources, the node's state file and lock (gather/probe.py's script,
    built from each kind's fragment)."""

    ids: tuple[str, ...]
    state_file: str
    # Count the running containers (placement by count needs it): the docker CLI costs the node ~20 ms
    # of CPU over ssh, so a plan with nothing to place asks not to.
    containers: bool = True

    @property
    def name(self) -> str:
        return "probe"


@dataclass(frozen=True)
class ReadFiles(Task):
    """Each file's size, and its bytes when within `limit` (what a diff shows)."""

    paths: tuple[str, ...]
    limit: int

    @property
    def name(self) -> str:
        return "read files"


@dataclass(frozen=True)
class ProbeExtras(Task):
    """The drift check's extra look: files in funops's own places, `nginx -t`, contents for diffs."""

    nginx_test: bool
    fetch: tuple[str, ...]
    limit: int

    @property
    def name(self) -> str:
        return "probe extras"


@dataclass(frozen=True)
class ReadLogs(Task):
    """An app's logs as its runtime keeps them (the journal of its units, or its container's log),
    streamed: only what the app wrote, never its env or secrets. A node without them prints nothing."""

    units: tuple[str, ...] = ()  # systemd units; empty for a container
    container: str | None = None
    since_seconds: int | None = None  # only entries from this many seconds ago on …
    since_time: str | None = None  # … or from this node-local time, YYYY-MM-DDTHH:MM:SS
    lines: int | None = None  # the last N entries (then new ones, with follow)
    follow: bool = False

    @property
    def name(self) -> str:
        return f"read logs of {self.container or ', '.join(self.units)}"


# ---- an operator's command (`funops exec`) -----------------------------------------------------------


@dataclass(frozen=True)
class RunCommand(Task):
    """Run `argv` as root, as a command and its arguments (each one word, never read by a shell),
    with no stdin; its output and exit code are the result."""

    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"run {' '.join(self.argv)[:200]}"


# ---- the node's apply lock (apply/lock.py) -----------------------------------------------------------


@dataclass(frozen=True)
class TakeLock(Task):
    """Build the lock aside and rename it into place; an expired one is broken under a mutex. Exit
    LOCK_HELD with the holder's info on stdout when another holder has it."""

    lock_dir: str
    key_file: str  # the node's digest key, made by the first lock holder
    token: str
    ttl: int
    info: bytes = field(repr=False)  # the holder's JSON

    @property
    def name(self) -> str:
        return "take lock"

    @property
    def stdin(self) -> bytes | None:
        return self.info


@dataclass(frozen=True)
class RenewLock(Task):
    """Push the expiry out if the lock still holds `token`; else exit LOCK_HELD."""

    lock_dir: str
    token: str
    ttl: int

    @property
    def name(self) -> str:
        return "renew lock"


@dataclass(frozen=True)
class ReleaseLock(Task):
    """Remove the lock if it still holds `token`."""

    lock_dir: str
    token: str

    @property
    def name(self) -> str:
        return "release lock"


@dataclass(frozen=True)
class BreakLock(Task):
    """Remove a dead holder's lock if it still holds that holder's `token`, under the breakers' mutex."""

    lock_dir: str
    token: str

    @property
    def name(self) -> str:
        return "break lock"


LOCK_HELD = 3  # TakeLock / RenewLock: another holder has the lock


# ---- the agent's own installation (agent/install.py, over ssh) ---------------------------------------


@dataclass(frozen=True)
class MakeCertificate(Task):
    """The node makes its own TLS key and self-signed certificate, once (its private key never leaves
    it); prints `sha256:<hex>` of the certificate for the controller to pin. `names` go in its
    subjectAltName (IP addresses as IP, others as DNS): a verifier that checks names (Prometheus,
    Go) needs one for the address it dials; funops itself checks the pin."""

    cert: str
    key: str
    subject: str
    names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"certificate {self.cert}"


@dataclass(frozen=True)
class PointLink(Task):
    """Point `link` at `target` (atomically: a new link renamed over the old one)."""

    link: str
    target: str

    @property
    def name(self) -> str:
        return f"link {self.link} → {self.target}"


@dataclass(frozen=True)
class ProbePython(Task):
    """The node's /usr/bin/python3 as one JSON line (cache tag, machine, libc and its version), or
    `{}` when there is none: `agent install` ships a compiled runtime for pull mode only to a python
    that can load it."""

    @property
    def name(self) -> str:
        return "probe python"
