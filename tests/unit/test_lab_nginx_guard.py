"""The lab nodes' nginx guard (lab/node-rootfs: sh and awk), on configurations as `nginx -T` prints
them; tests/lab/test_lab.py runs it in a node through `systemctl reload nginx`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

GUARD = Path(__file__).resolve().parents[2] / "lab/node-rootfs/usr/local/lib/funops-lab/nginx-guard.awk"
ADDRESS = "127.0.1.1"
ELSEWHERE = f"is not on this node's address {ADDRESS}"
BLOCK = "a server block without `listen` (nginx would listen on *:80)"

pytestmark = pytest.mark.skipif(shutil.which("awk") is None, reason="no awk")


def problems(config: str) -> list[str]:
    done = subprocess.run(["awk", "-v", f"address={ADDRESS}", "-f", str(GUARD)], input=config,
                          capture_output=True, text=True)  # fmt: skip
    found = [line.removeprefix("funops-lab-nginx-guard: ") for line in done.stderr.splitlines()]
    assert (done.returncode != 0) == bool(found)
    return found


@pytest.mark.parametrize(
    "config",
    [
        f"server {{ listen {ADDRESS}:80; server_name good.test; return 200 'good\\n'; }}",
        f'server {{ listen "{ADDRESS}:80"; location / {{ return 200 "a}}b{{c;"; }} }}',
        f"server {{ listen '{ADDRESS}:443' ssl; return 200 'x\\'y}}'; }}",
        f'server {{ set $a "multi\nline # not a comment\n}}"; listen {ADDRESS}; }}',
        f"server {{ # listen 80;\n listen {ADDRESS}:80 default_server; }}",
        "server { listen unix:/run/site.sock; }",
        "http { upstream u { server 10.0.0.1:80; } }",  # an upstream's servers are not blocks
        "# configuration file /etc/nginx/nginx.conf:\nevents {}\n",
    ],
)
def test_a_configuration_on_the_node_address_passes(config: str) -> None:
    assert problems(config) == []


@pytest.mark.parametrize(
    ("config", "found"),
    [
        ("server { server_name bad.test; }", [BLOCK]),
        ("server { listen 8081; }", [f"`listen 8081` {ELSEWHERE}"]),
        ("server { listen [::]:80; }", [f"`listen [::]:80` {ELSEWHERE}"]),
        ("http{server{listen 0.0.0.0:80;}}", [f"`listen 0.0.0.0:80` {ELSEWHERE}"]),
        (f"server {{ listen {ADDRESS}:80; }} server {{ }}", [BLOCK]),
        (f"server {{ listen {ADDRESS}:80;#c\n}} server{{listen x#y;\n;}}", [f"`listen x` {ELSEWHERE}"]),
        ('server { return 200 "listen 127.0.1.1:80;"; }', [BLOCK]),  # a string is no directive
    ],
)  # fmt: skip
def test_a_listen_elsewhere_or_none_is_refused(config: str, found: list[str]) -> None:
    assert problems(config) == found
