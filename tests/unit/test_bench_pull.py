"""The pull-mode benchmark (bench/pull) still works: three simulated pullers against the host's nginx
converge a published generation, and their next polls are 304s."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from bench.pull import publishonly, repo, run
from bench.pull.pullers import Pullers
from bench.pull.store import NGINX, Nginx

ADDRESS = "127.0.203.2"  # not the bench's own: a bench may be running

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists() or shutil.which("openssl") is None, reason="needs the host's nginx and openssl"
)


def test_pullers_converge_a_generation_through_nginx_then_poll_304s(tmp_path: Path) -> None:
    creds, roots, the_repo = tmp_path / "creds", tmp_path / "roots", tmp_path / "repo"
    repo.credentials(creds)
    nodes = repo.names(3)
    with Nginx(tmp_path / "nginx", tmp_path / "store", address=ADDRESS) as nginx:
        repo.write_repo(the_repo, creds, nodes, nginx.store, nginx.url, interval=5, splay=1)
        for node in nodes:
            repo.prepare_root(roots / node, creds)
        with Pullers(roots, nodes, nginx.url, interval=5, splay=1, processes=1, threads=3) as pullers:
            run.publish(the_repo)
            generation = run.published(nginx.store, nodes[0])
            got = run.watch(roots, nodes, generation, time.monotonic(), timeout=25)
            assert (got["converged"], got["failedPolls"]) == (3, 0), got
            converged = time.time()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # each node's next poll: If-None-Match, a 304
                after = nginx.requests(converged)
                if {r.uri for r in after if r.status == 304} == {f"/nodes/{n}/latest.json" for n in nodes}:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"not every node polled a 304: {after}")
        requests = nginx.requests()
    assert "exception" not in pullers.outcomes, pullers.outcomes
    assert pullers.outcomes.get("fetched:converged", 0) >= 3
    bundles = [r for r in requests if "/bundles/" in r.uri]
    assert len(bundles) == 3 and all(r.status == 200 for r in bundles)  # each fetched its bundle once
    noop = next(r for r in after if r.status == 304)
    assert 0 < noop.bytes_sent < 400  # headers only
    state = (roots / nodes[0] / "run/fleet-sim/pulled.service.active").is_file()
    assert state  # the simulated systemd started the app


def test_the_publish_only_bench_times_both_publishes_and_sees_304s(tmp_path: Path) -> None:
    """`python -m bench.pull --publish-only`: the quiet re-publish seals nothing, a no-op poll is a 304."""
    (sample,) = publishonly.bench(tmp_path, [4], runs=1, pollers=2, address="127.0.203.3")
    assert (sample.first["nodes"], sample.first["changed"]) == (4, 4)
    assert (sample.quiet["nodes"], sample.quiet["changed"]) == (4, 0)
    assert len(sample.polls["outcomes"]) == 2
    assert 0 < sample.polls["noopBytesSent"] < 400  # headers only
    assert "| 4 |" in publishonly.table([sample])
