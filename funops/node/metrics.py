"""`GET /metrics`: the node as Prometheus reads it (text exposition format 0.0.4), read in this process
as the gather reads it — systemd over its bus (kinds/systemd_bus.py), containers from the engine's
socket, the state file, the lock, the certificates and the pull status as files — with no process
spawned per scrape. The metric names are a contract (README.md, "Monitoring"; alert rules use them).

An app's health check is run here, against the node's own address only (node.own_address, as apply's
health gate), once per HEALTH_EVERY seconds at most: a scrape between two checks gets the last result.
What is exported is never a secret: no token (the lock's is left out), no file content, no env value.
Standard library only (Python 3.9): the agent imports it.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from ..kinds import systemd_bus
from ..kinds.cert import CERTS_DIR
from ..kinds.file import ARTIFACTS_DIR
from . import AGENT_VERSION, exposition, native
from . import STATUS_FILE as PULL_STATUS
from .host import UnixHTTP, own_address
from .shell import health_host

CONTENT_TYPE = exposition.CONTENT_TYPE
HEALTH_EVERY = 30.0  # seconds between two health checks of one app, however often it is scraped
HEALTH_TIMEOUT = 2.0  # a check's own timeout, capped so: a hung app cannot hold a scrape
DISK_PATHS = ("/", "/srv")  # with the state dir and its artifact store: where placement and apply write
UNIT_PROPERTIES = ("ActiveState", "ActiveEnterTimestamp", "NRestarts")

# name → (type, help): every family this exposes, in this order.
FAMILIES = {
    "funops_agent_info": ("gauge", "The agent's version (always 1)."),
    "funops_agent_start_time_seconds": ("gauge", "When the agent started (unix time)."),
    "funops_agent_read_error": ("gauge", "A source this scrape could not read (systemd, docker): 1."),
    "funops_app_up": (
        "gauge",
        "Whether the app instance runs (1: unit active, container running) or not (0).",
    ),
    "funops_app_health_check_ok": (
        "gauge",
        "The app's last health check, run by the agent on the node's own address: passed (1) or failed (0).",
    ),
    "funops_app_health_check_duration_seconds": ("gauge", "How long the app's last health check took."),
    "funops_app_restarts_total": (
        "counter",
        "Restarts of the app instance (systemd NRestarts, container RestartCount).",
    ),
    "funops_app_state_change_timestamp_seconds": (
        "gauge",
        "When the app instance last became active or started (unix time).",
    ),
    "funops_node_disk_free_bytes": (
        "gauge",
        "Bytes free (to unprivileged users) under a path funops writes to.",
    ),
    "funops_node_last_apply_timestamp_seconds": (
        "gauge",
        "When the node's last apply (or pull converge) ended (unix time).",
    ),
    "funops_node_last_apply_success": (
        "gauge",
        "Whether the node's last apply (or pull converge) succeeded (1) or not (0).",
    ),
    "funops_node_last_apply_info": (
        "gauge",
        "The node's last apply: revision, pull generation, result (always 1).",
    ),
    "funops_node_pull_last_success_timestamp_seconds": (
        "gauge",
        "A pull node's last poll that reached the store and left it converged (unix time).",
    ),
    "funops_node_lock_held": ("gauge", "Whether an apply holds the node's lock (1) or not (0)."),
    "funops_certificate_not_after_timestamp_seconds": (
        "gauge",
        "When the certificate served from /etc/funops/certs/<name>/current expires (unix time).",
    ),
}
ALWAYS = (  # declared (HELP, TYPE) even without a sample: a node with no app yet
    "funops_app_up",
    "funops_app_health_check_ok",
    "funops_app_health_check_duration_seconds",
    "funops_app_restarts_total",
    "funops_app_state_change_timestamp_seconds",
    "funops_certificate_not_after_timestamp_seconds",
)

Labels = dict[str, str]
Sample = tuple[Labels, float]


class Exposition:
    """FAMILIES' samples, each family with its HELP and TYPE once, in FAMILIES' order."""

    def __init__(self) -> None:
        self._samples: dict[str, list[Sample]] = {name: [] for name in ALWAYS}
        self.unread: set[str] = set()  # sources this scrape could not read (systemd, docker)

    def add(self, name: str, value: float, **labels: str) -> None:
        self._samples.setdefault(name, []).append((labels, value))

    def text(self) -> str:
        out = []
        for name, (kind, help_text) in FAMILIES.items():
            if name in self._samples:
                out += exposition.family(name, kind, help_text, self._samples[name])
        return "\n".join(out) + "\n"


# ---- what is read ----------------------------------------------------------------------------------


class Collector:
    """One per agent: its start time and the cached health results live as long as it does."""

    def __init__(
        self,
        node: str,
        state_dir: str,
        own_address: Callable[[str], bool] = own_address,
        docker_socket: str = "/var/run/docker.sock",
        certs_dir: str = CERTS_DIR,
    ) -> None:
        self.node, self.state_dir, self.own_address = node, state_dir, own_address
        self.docker_socket, self.certs_dir = docker_socket, certs_dir
        self.started = time.time()
        self._health: dict[str, tuple[float, bool, float]] = {}  # app → (when, ok, seconds)
        self._health_lock = threading.Lock()
        # (fullchain, mtime) → (serial, notAfter): a certificate is parsed once per version
        self._certs: dict[tuple[str, float], tuple[str, float]] = {}

    def text(self) -> str:
        out = Exposition()
        self._agent(out)
        state = _read_json(os.path.join(self.state_dir, "state.json"))
        self._apps(out, state if isinstance(state, dict) else {})
        self._disk(out)
        pull = _read_json(os.path.join(self.state_dir, PULL_STATUS))
        if isinstance(pull, dict):
            self._pull(out, pull)
        else:
            self._last_apply(out, state if isinstance(state, dict) else {})
        self._lock(out)
        self._certificates(out)
        for source in sorted(out.unread):  # its app metrics are left out, not guessed
            out.add("funops_agent_read_error", 1, node=self.node, source=source)
        return out.text()

    def _agent(self, out: Exposition) -> None:
        out.add("funops_agent_info", 1, node=self.node, version=AGENT_VERSION)
        out.add("funops_agent_start_time_seconds", self.started, node=self.node)

    # -- apps --

    def _apps(self, out: Exposition, state: dict[str, Any]) -> None:
        apps = state.get("apps") if isinstance(state.get("apps"), dict) else {}
        releases = state.get("releases") if isinstance(state.get("releases"), dict) else {}
        placed = []
        for app, record in sorted(apps.items()):
            record = record if isinstance(record, dict) else {}
            latest = _latest_record(releases.get(app))
            placement = latest.get("placement") if isinstance(latest.get("placement"), dict) else {}
            labels = {
                "app": app,
                "node": self.node,
                "kind": _app_kind(placement),
                "release": str(latest.get("id") or ""),
                "version": str(record.get("version") or ""),
            }
            placed.append((labels, placement))
        units = [
            p["unit"]
            for labels, p in placed
            if labels["kind"] != "container" and isinstance(p.get("unit"), str)
        ]
        live = self._units(out, units)
        containers = {}
        for labels, placement in placed:
            if labels["kind"] == "container" and isinstance(placement.get("container"), str):
                containers[placement["container"]] = self._container(out, placement["container"])
        self._check_health(placed)
        for labels, placement in placed:
            if labels["kind"] == "container":
                found = containers.get(placement.get("container"))
                up, restarts, changed = found if found else (None, None, None)
            else:
                props = live.get(placement.get("unit"))
                up, restarts, changed = _unit_state(props) if props is not None else (None, None, None)
            if up is not None:
                out.add("funops_app_up", 1 if up else 0, **labels)
            if restarts is not None:
                out.add("funops_app_restarts_total", restarts, **labels)
            if changed:
                out.add("funops_app_state_change_timestamp_seconds", changed, **labels)
            with self._health_lock:
                health = self._health.get(labels["app"])
            if health is not None and _health_of(placement) is not None:
                out.add("funops_app_health_check_ok", 1 if health[1] else 0, **labels)
                out.add("funops_app_health_check_duration_seconds", round(health[2], 6), **labels)

    def _units(self, out: Exposition, units: list[str]) -> dict[str, dict[str, object]]:
        if not units:
            return {}
        try:
            return systemd_bus.values(units, UNIT_PROPERTIES)
        except (systemd_bus.BusError, OSError):
            out.unread.add("systemd")
            return {}

    def _container(self, out: Exposition, name: str) -> tuple[bool, int, float] | None:
        """(running, restarts, started at) of one container from the engine; None: no such container
        (running is then 0: it should be there), an engine that does not answer is a read error."""
        conn = UnixHTTP(self.docker_socket)
        try:
            conn.request("GET", f"/containers/{urllib.parse.quote(name, safe='')}/json")
            response = conn.getresponse()
            body = response.read()
            if response.status == 404:
                return (False, 0, 0.0)
            data = json.loads(body) if response.status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            data = None
        finally:
            conn.close()
        if not isinstance(data, dict):
            out.unread.add("docker")
            return None
        st = data.get("State") if isinstance(data.get("State"), dict) else {}
        return (
            st.get("Running") is True,
            int(data.get("RestartCount") or 0),
            _docker_time(st.get("StartedAt")),
        )

    # -- health --

    def _check_health(self, placed: list[tuple[Labels, dict[str, Any]]]) -> None:
        """The apps whose last check is older than HEALTH_EVERY, checked now, side by side."""
        now = time.monotonic()
        due = []
        with self._health_lock:
            for labels, placement in placed:
                last = self._health.get(labels["app"])
                if _health_of(placement) is not None and (last is None or now - last[0] >= HEALTH_EVERY):
                    due.append((labels["app"], placement))
        threads = [threading.Thread(target=self._check_one, args=d, daemon=True) for d in due]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HEALTH_TIMEOUT + 1)

    def _check_one(self, app: str, placement: dict[str, Any]) -> None:
        check = _health_of(placement) or {}
        bind = str(placement.get("bind") or "")
        port = check.get("port") or placement.get("port")
        started = time.monotonic()
        ok = False
        if self.own_address(bind) and isinstance(port, int):  # never another host's address
            ok = _probe(check, health_host(bind), port, min(float(check.get("timeout") or 2), HEALTH_TIMEOUT))
        with self._health_lock:
            self._health[app] = (time.monotonic(), ok, time.monotonic() - started)

    # -- node --

    def _disk(self, out: Exposition) -> None:
        paths = (*DISK_PATHS, self.state_dir, os.path.join(self.state_dir, ARTIFACTS_DIR))
        for path in dict.fromkeys(paths):
            if os.path.isdir(path):
                out.add(
                    "funops_node_disk_free_bytes", shutil.disk_usage(path).free, node=self.node, path=path
                )

    def _last_apply(self, out: Exposition, state: dict[str, Any]) -> None:
        """The newest release record of any app on this node: when it ended and how."""
        releases = state.get("releases") if isinstance(state.get("releases"), dict) else {}
        newest: tuple[float, dict[str, Any]] | None = None
        for records in releases.values():
            for rec in records if isinstance(records, list) else []:
                when = _iso_time(rec.get("finished") or rec.get("started")) if isinstance(rec, dict) else 0.0
                if when and (newest is None or when > newest[0]):
                    newest = (when, rec)
        if newest is None:
            return
        when, rec = newest
        revision = rec.get("revision") if isinstance(rec.get("revision"), dict) else {}
        status = str(rec.get("status") or "")
        self._apply_families(out, when, status == "succeeded", str(revision.get("commit") or ""), "", status)

    def _pull(self, out: Exposition, pull: dict[str, Any]) -> None:
        """A pull node's last converge (pull.json, written by each poll)."""
        result = str(pull.get("result") or "")
        attempted = _iso_time(pull.get("appliedAt") if result == "converged" else pull.get("lastPoll"))
        if attempted:
            generation = str(pull.get("generation") or "")
            ok = result in ("converged", "waiting")
            self._apply_families(out, attempted, ok, str(pull.get("revision") or ""), generation, result)
        # The last poll that reached the store and left the node converged; else when it last converged.
        fine = result in ("converged", "waiting") and pull.get("lastContact")
        success = _iso_time(pull.get("lastContact") if fine else pull.get("appliedAt"))
        if success:
            out.add("funops_node_pull_last_success_timestamp_seconds", success, node=self.node)

    def _apply_families(
        self, out: Exposition, when: float, ok: bool, revision: str, generation: str, result: str
    ) -> None:
        node = self.node
        out.add("funops_node_last_apply_timestamp_seconds", when, node=node)
        out.add("funops_node_last_apply_success", 1 if ok else 0, node=node)
        out.add(
            "funops_node_last_apply_info",
            1,
            node=node,
            revision=revision,
            generation=generation,
            result=result,
        )

    def _lock(self, out: Exposition) -> None:
        """The apply lock (apply/lock.py): its holder only, never its token."""
        lock = os.path.join(self.state_dir, "lock")
        holder, held = "", False
        if os.path.isdir(lock):
            info = _read_json(os.path.join(lock, "info"))
            try:
                with open(os.path.join(lock, "expires"), encoding="ascii") as f:
                    expires = float(f.read().strip() or 0)
            except (OSError, ValueError):
                expires = float("inf")  # being taken right now
            held = expires >= time.time()
            if held and isinstance(info, dict):
                holder = str(info.get("holder") or "")
        out.add("funops_node_lock_held", 1 if held else 0, node=self.node, holder=holder)

    def _certificates(self, out: Exposition) -> None:
        try:
            names = sorted(os.listdir(self.certs_dir))
        except OSError:
            return
        for name in names:
            found = self._certificate(os.path.join(self.certs_dir, name, "current"))
            if found is not None:
                serial, not_after = found
                labels = {"node": self.node, "certificate": name, "serial": serial}
                out.add("funops_certificate_not_after_timestamp_seconds", not_after, **labels)

    def _certificate(self, current: str) -> tuple[str, float] | None:
        """(serial, notAfter) of a `current` link's fullchain, parsed once per file version."""
        chain = os.path.join(current, "fullchain.pem")
        try:
            if not os.path.islink(current):
                return None
            key = (os.path.realpath(chain), os.stat(chain).st_mtime)
        except OSError:
            return None
        if key not in self._certs:
            try:
                # The standard library's own PEM reader: the node has no `cryptography`.
                decoded = ssl._ssl._test_decode_cert(chain)  # type: ignore[attr-defined]
                not_after = float(ssl.cert_time_to_seconds(decoded["notAfter"]))
            except (OSError, ssl.SSLError, KeyError, ValueError, AttributeError):
                return None
            self._certs = {k: v for k, v in self._certs.items() if k[0] != key[0]}
            self._certs[key] = (os.path.basename(os.readlink(current)), not_after)
        return self._certs[key]


def _latest_record(records: Any) -> dict[str, Any]:
    """The app's newest release record that placed it here (its placement: unit, container, health)."""
    if not isinstance(records, list):
        return {}
    placed = [r for r in records if isinstance(r, dict) and isinstance(r.get("placement"), dict)]
    return placed[-1] if placed else {}


def _app_kind(placement: dict[str, Any]) -> str:
    if placement.get("container"):
        return "container"
    return "job" if placement.get("type") == "job" else "systemd"


def _unit_state(props: dict[str, object]) -> tuple[bool | None, int | None, float]:
    active = props.get("ActiveState")
    restarts = props.get("NRestarts")
    entered = props.get("ActiveEnterTimestamp")
    usec = int(entered) if isinstance(entered, int) and entered not in (0, 2**64 - 1) else 0
    return (
        None if active is None else active == "active",
        int(restarts) if isinstance(restarts, int) else None,
        usec / 1_000_000,
    )


def _health_of(placement: dict[str, Any]) -> dict[str, Any] | None:
    """The app's declared http or tcp check; a `process` check is the unit or container running (up)."""
    check = placement.get("health")
    return check if isinstance(check, dict) and check.get("type") in ("http", "tcp") else None


def _probe(check: dict[str, Any], host: str, port: int, timeout: float) -> bool:
    """One try of the check, as apply's gate tries it (node/native.py: no getaddrinfo, whose resolver
    set-up the agent would keep); the gate retries, here the next due check is the retry."""
    if check.get("type") == "tcp":
        return native.tcp_open(host, port, timeout)
    try:
        want = int(check.get("expectStatus") or 200)
    except (TypeError, ValueError):
        return False
    return native.http_status(host, port, str(check.get("path") or "/health"), timeout) == want


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _iso_time(text: Any) -> float:
    """Unix time of an ISO 8601 moment as funops writes them (UTC, `+00:00` or `Z`); 0: none."""
    if not isinstance(text, str) or not text:
        return 0.0
    try:
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)  # noqa: UP017 (dt.UTC: 3.11; nodes run 3.9)
    return moment.timestamp()


def _docker_time(text: Any) -> float:
    """The engine's RFC 3339 time with nanoseconds (`2026-01-02T03:04:05.123456789Z`); 0: never."""
    if not isinstance(text, str) or text.startswith("0001-"):
        return 0.0
    head, _, rest = text.partition(".")
    fraction = rest.rstrip("Z")[:6] if rest else ""
    whole = _iso_time(head.rstrip("Z") + "+00:00")
    return whole + (float(f"0.{fraction}") if fraction.isdigit() else 0.0) if whole else 0.0
