"""A valid value for every field of every task type (by the field's name, as tasks/values.py rules
them), so a test can make any task type, or one with a single field changed."""

from __future__ import annotations

import dataclasses
from typing import Any

from funops.node import wire
from funops.tasks import model as m

SHA = "a" * 64
PROBE = {"type": "http", "path": "/health", "port": 8080, "expect_status": 200, "interval": 1.5,
         "timeout": 2, "retries": 3}  # fmt: skip

# By `Type.field`, else by the field's name.
VALUES: dict[str, Any] = {
    "path": "/srv/x/file.conf",
    "backup": "/var/lib/funops/backup/x",
    "store": "/var/lib/funops/artifacts",
    "link": "/srv/web/current",
    "directory": "/srv/web/releases/1.0",
    "state_file": "/var/lib/funops/state.json",
    "lock_dir": "/var/lib/funops/lock",
    "key_file": "/var/lib/funops/key",
    "cert": "/etc/funops-agent/tls/agent.crt",
    "key": "/etc/funops-agent/tls/agent.key",
    "paths": ("/a", "/b"),
    "fetch": ("/etc/a.conf",),
    "unit_files": ("/etc/systemd/system/web.service",),
    "target": "/opt/funops-agent/1.0",
    "sha256": SHA,
    "mode": "0644",
    "owner": "www-data",
    "group": "www-data",
    "user": "web",
    "content": b"\x00data\xff",
    "info": b'{"holder": "me"}',
    "private_dirs": True,
    "label": "file:/srv/x (secret)",
    "upload": "dist/web.tar",
    "files": ((SHA, "/srv/x"),),
    "KeepArtifacts.keep": frozenset({SHA, "b" * 64}),
    "unit": "web.service",
    "units": ("web.service", "web.timer"),
    "restart": True,
    "spec": {
        "name": "api",
        "image": "registry:5000/r/api:1",
        "network": "host",
        "volumes": ["/d:/d"],
        "labels": {"funops.app": "api"},
        "security": {"capDrop": ["ALL"]},
        "stopTimeout": 10,
    },
    "container": "api",
    "ReadLogs.container": None,
    "remove_image": True,
    "keep_images": frozenset({"r/api:1", "r/api:2"}),
    "repositories": frozenset({"r/api"}),
    "PruneImages.keep": frozenset({"r/api:1"}),
    "release": "1.0",
    "PlaceArtifact.keep": 5,
    "PruneVersions.directory": "/etc/funops/certs/www",
    "PruneVersions.keep": 3,
    "address": "127.0.0.1",
    "CheckChallenge.token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
    "url": "https://example.com/web.tar",
    "file": "web.bin",
    "app": "web",
    "check": m.HealthProbe(**PROBE),
    "host": "127.0.0.1",
    "port": 8080,
    "min_healthy_seconds": 0.5,
    "ports": (80, 443),
    "AwaitIdle.timeout": 2.5,
    "ids": ("file:/etc/x", "unit:web.service"),
    "containers": False,
    "limit": 65536,
    "nginx_test": True,
    "since_seconds": 30,
    "since_time": "2026-11-25T08:00:00",
    "lines": 10,
    "follow": True,
    "argv": ("systemctl", "status", "web.service; rm -rf /"),
    "token": "0123456789abcdef0123456789abcdef",
    "ttl": 300,
    "subject": "funops-agent node1",
    "MakeCertificate.names": ("10.0.0.11", "node1"),
}


def value(cls: type, name: str) -> Any:
    return VALUES.get(f"{cls.__name__}.{name}", VALUES.get(name))


def fields(cls: type) -> dict[str, Any]:
    """A valid value for each field of `cls`."""
    return {f.name: value(cls, f.name) for f in dataclasses.fields(cls)}


def sample(cls: type[m.Task]) -> m.Task:
    return cls(**fields(cls))


TASK_TYPES = sorted(wire.TASK_TYPES)


def unchecked(cls: type, **values: Any) -> Any:
    """A task made without its check (as no code path can): what the sh renderer's quoting must still
    hold against, the second of the two walls."""
    task = object.__new__(cls)
    for name, v in {**fields(cls), **values}.items():
        object.__setattr__(task, name, v)
    return task
