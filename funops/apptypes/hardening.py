"""Secure defaults for what funops runs: the sandbox of a systemd unit, the flags of a container.

A systemd app runs under a non-root identity (`DynamicUser=yes` unless it names a `user`) in the
sandbox of its `hardening` level; `hardeningOverrides` then set (or, with null, drop) single
directives. The levels are data here so a test, the docs and the template read the same table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import AppSpec

# `strict` (the default) scores "OK" on `systemd-analyze security`: every directive below is one of
# its checks. Order is the order in the unit file.
STRICT: dict[str, str] = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "DevicePolicy": "closed",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "PrivateMounts": "yes",
    "RestrictNamespaces": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RemoveIPC": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "SystemCallErrorNumber": "EPERM",
    "UMask": "0027",
}

# `relaxed`: for runtimes that JIT-compile, probe /proc, use netlink or write below /etc and /var
# (a JVM, node, some language servers): the kernel and device protections stay.
RELAXED: dict[str, str] = {
    **{
        k: v
        for k, v in STRICT.items()
        if k
        not in {
            "MemoryDenyWriteExecute",
            "SystemCallFilter",
            "SystemCallErrorNumber",
            "RestrictNamespaces",
            "RestrictAddressFamilies",
            "ProtectProc",
            "ProcSubset",
        }
    },
    "ProtectSystem": "full",
    "ProtectHome": "read-only",
}

LEVELS: dict[str, dict[str, str]] = {"strict": STRICT, "relaxed": RELAXED, "none": {}}

# Ports below this need CAP_NET_BIND_SERVICE when the process is not root.
PRIVILEGED_PORTS = 1024


def state_directory(app: str) -> str:
    """The app's own writable place, below /var/lib (a prefix: an app named like a package must
    not take over that package's directory)."""
    return f"funops-apps/{app}"


def capabilities(spec: AppSpec) -> list[str]:
    """Declared `capAdd`, plus NET_BIND_SERVICE when the app listens below 1024."""
    caps = set(spec.cap_add)
    if spec.port is not None and spec.port < PRIVILEGED_PORTS:
        caps.add("NET_BIND_SERVICE")
    return sorted(caps)


def unit_directives(app: str, spec: AppSpec) -> list[tuple[str, str]]:
    """The identity and sandbox lines of a systemd app's [Service] section."""
    lines: dict[str, str] = {}
    user = spec.user or (None if spec.hardening == "none" else "")
    if user:
        lines["User"] = user
    elif user == "":
        lines["DynamicUser"] = "yes"
    if spec.hardening != "none":
        lines["StateDirectory"] = state_directory(app)
        caps = " ".join(f"CAP_{c}" for c in capabilities(spec))
        lines["CapabilityBoundingSet"] = caps
        lines["AmbientCapabilities"] = caps
    lines |= LEVELS[spec.hardening]
    for key, value in spec.hardening_overrides.items():
        if value is None:
            lines.pop(key, None)
        else:
            lines[key] = _word(value)
    # ProtectSystem=strict (full: /etc) mounts the file system read-only for the app: the directories
    # it declares are there to be written, so they join ReadWritePaths (after an override of it too:
    # the override adds paths, it does not take the app's own directories away; `null` still drops it).
    dropped = spec.hardening_overrides.get("ReadWritePaths", "") is None
    if spec.directories and "ProtectSystem" in lines and not dropped:
        paths = [*lines.get("ReadWritePaths", "").split(), *sorted(d.path for d in spec.directories)]
        lines["ReadWritePaths"] = " ".join(dict.fromkeys(paths))
    return list(lines.items())


def container_security(spec: AppSpec) -> dict[str, Any]:
    """The security flags of a container app's `docker run`, as the run spec carries them."""
    hardened = spec.hardening != "none"
    return {
        "noNewPrivileges": hardened,
        "capDrop": ["ALL"] if spec.hardening == "strict" else [],
        "capAdd": capabilities(spec) if spec.hardening == "strict" else list(spec.cap_add),
        "pidsLimit": spec.pids_limit,
        "readOnlyRootfs": spec.read_only_rootfs,
        "user": spec.user,
    }


def _word(value: str | bool) -> str:
    if isinstance(value, bool):  # YAML reads an unquoted `no` as false
        return "yes" if value else "no"
    return value
