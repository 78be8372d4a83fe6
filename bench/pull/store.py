"""The store as users run it: a directory served by the host's nginx (/usr/sbin/nginx), started by
the bench on a loopback address with its own prefix, and an access log of every request's time,
status and bytes (what the no-op polls cost the store)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NGINX = "/usr/sbin/nginx"
ADDRESS = "127.0.203.1"

# One worker (2 CPUs, shared with the pullers); ETag on, nginx's default for static files, so a
# poll's If-None-Match gets a 304. $bytes_sent: the whole response, headers included.
CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  log_format pull '$msec $status $bytes_sent $request_length $request_method $uri';
  access_log {prefix}/access.log pull;
  default_type application/octet-stream;
  client_body_temp_path {prefix}/tmp/body; proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi; uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  sendfile on;
  server {{
    listen {address}:{port};
    root {store};
    location / {{ try_files $uri =404; }}
  }}
}}
"""


@dataclass(frozen=True)
class Request:
    at: float  # epoch seconds
    status: int
    bytes_sent: int
    request_length: int
    uri: str


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx serving `store` at http://address:port/ (a free port by default); stopped on exit."""

    def __init__(self, prefix: Path, store: Path, address: str = ADDRESS, port: int | None = None) -> None:
        self.prefix, self.store, self.address = prefix, store, address
        self.port = port or free_port(address)
        self.url = f"http://{address}:{self.port}"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        store.mkdir(parents=True, exist_ok=True)
        # Its workers drop to `user` only when the master runs as root: then the same user, so they
        # read a store under a 0700 temporary directory.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        conf = CONF.format(user=user, prefix=prefix, address=address, port=self.port, store=store)
        (prefix / "nginx.conf").write_text(conf)
        argv = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
                "-g", "daemon off;"]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise SystemExit(f"nginx did not start (exit {self.proc.returncode}): {err}")
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"nginx does not listen on {self.url}")

    def clear(self) -> None:
        """An empty store (a new run starts from nothing published)."""
        for child in self.store.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()

    def requests(self, since: float = 0, until: float = float("inf")) -> list[Request]:
        out = []
        with open(self.prefix / "access.log", encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) != 6:
                    continue
                at = float(parts[0])
                if since <= at < until:
                    out.append(Request(at, int(parts[1]), int(parts[2]), int(parts[3]), parts[5]))
        return out

    def cpu(self) -> float:
        """CPU seconds of the master and its workers so far."""
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return sum(proc_cpu(p) for p in pids)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            self.proc.wait(10)

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_cpu(pid: int, children: bool = True) -> float:
    """utime + stime (+ cutime + cstime: the children it waited for) of a process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
