"""Issue 30 with a real Prometheus, Pushgateway and Alertmanager (lab/prometheus.py, the shipped
alert rules at `for: 0s`): a deploy that fails its health gate pushes its result and DeployFailed
fires; Prometheus scrapes the agents from `funops prometheus targets` over TLS verified with
`funops prometheus ca` and a metrics-scope token, and a web unit stopped by hand fires AppInstanceDown.
Every wait polls the HTTP APIs; nothing sleeps a fixed time."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from funops.node.scopes import SCOPES
from lab import Lab
from lab.prometheus import PrometheusLab

from .fleet import edit_yaml, funops, make_repo, reset

T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 90) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def alerts(prom: PrometheusLab, name: str, **labels: str) -> list[dict[str, Any]]:
    return [
        a for a in prom.firing()
        if a["labels"]["alertname"] == name and all(a["labels"].get(k) == v for k, v in labels.items())
    ]  # fmt: skip


def received(prom: PrometheusLab, name: str, **labels: str) -> list[dict[str, Any]]:
    return [
        a for a in prom.received()
        if a["labels"]["alertname"] == name and all(a["labels"].get(k) == v for k, v in labels.items())
    ]  # fmt: skip


@pytest.fixture
def prom(prometheus_lab: PrometheusLab) -> Iterator[PrometheusLab]:
    prometheus_lab.clear_pushgateway()
    prometheus_lab.configure(agents=False)
    yield prometheus_lab
    prometheus_lab.clear_pushgateway()
    prometheus_lab.configure(agents=False)


def git_commit(repo: Path) -> None:
    env = ["-c", "user.name=t", "-c", "user.email=t@x"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "example"]):
        subprocess.run(["git", *env, "-C", str(repo), *args], check=True, capture_output=True)


def test_a_deploy_failing_its_health_gate_pushes_a_failure_and_deploy_failed_fires(
    lab: Lab, prom: PrometheusLab, tmp_path: Path
) -> None:
    reset(lab)
    repo = make_repo(lab, tmp_path / "repo")

    def broken_api(docs: list[dict[str, Any]]) -> None:  # v3's /health answers 500 (lab/testapp)
        docs[0]["spec"]["healthCheck"] = {"type": "http", "path": "/health", "interval": 0.5, "retries": 4}
        docs[0]["spec"]["strategy"] = {"batchSize": 1, "maxFailures": 0}
        docs[2]["spec"] = {"app": "api", "version": "v3"}

    edit_yaml(repo / "manifests" / "api.yaml", broken_api)
    git_commit(repo)
    textfile = tmp_path / "funops.prom"
    done = funops(
        repo,
        "apply",
        "--auto-approve",
        "--metrics-push",
        prom.pushgateway,
        "--metrics-textfile",
        str(textfile),
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "warning" not in done.stderr

    pushed = wait_until(
        "funops_deploy_last_success in Prometheus",
        lambda: prom.query('funops_deploy_last_success{job="funops",command="apply"}'),
    )
    assert [s["value"][1] for s in pushed] == ["0"]
    assert pushed[0]["metric"]["project"]
    assert prom.query('funops_deploy_app_success{app="api"}')[0]["value"][1] == "0"
    assert prom.query('funops_deploy_nodes_failed{command="apply"}')[0]["value"][1] == "1"
    firing = wait_until("DeployFailed firing", lambda: alerts(prom, "DeployFailed", command="apply"))
    assert firing[0]["labels"]["project"] == pushed[0]["metric"]["project"]
    wait_until("DeployFailed at the Alertmanager", lambda: received(prom, "DeployFailed", command="apply"))
    # the same outcome for node_exporter's textfile collector, the grouping key as labels
    text = textfile.read_text()
    assert 'funops_deploy_last_success{command="apply",project=' in text and "} 0\n" in text
    # and `funops history`'s figures: the failed deploy of api from the nodes' records and the journal
    shown = funops(repo, "history", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    figures = json.loads(shown.stdout)["stats"]
    api = next(f for f in figures["apps"] if f["name"] == "api")
    assert (api["runs"], api["succeeded"], api["successRate"]) == (1, 0, 0.0)
    deploys = next(f for f in figures["rollouts"] if f["name"] == "deploy")
    assert deploys["runs"] >= 1 and deploys["succeeded"] < deploys["runs"]
    reset(lab)


@pytest.mark.skipif("metrics" not in SCOPES, reason="needs agent /metrics (branch metrics-node)")
def test_prometheus_scrapes_the_agents_over_verified_tls_and_app_instance_down_fires(
    lab: Lab, prom: PrometheusLab, tmp_path: Path
) -> None:
    reset(lab)
    repo = make_repo(lab, tmp_path / "repo", transport="agent")
    git_commit(repo)
    made = funops(repo, "agent", "token", "create", "prometheus", "--scope", "metrics")
    assert made.returncode == 0, made.stdout + made.stderr
    shutil.copy(repo / ".funops" / "agent" / "tokens" / "prometheus.token", prom.token_file)
    for command, path in (("targets", prom.targets_file), ("ca", prom.ca_file)):
        done = funops(repo, "prometheus", command, "-o", str(path))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warning" not in done.stderr
    prom.configure(agents=True)
    done = funops(repo, "apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr

    names = sorted(n.name for n in lab.nodes)
    scraped = wait_until(
        "every agent scraped",
        lambda: (found := prom.query('up{job="funops-agents"} == 1')) and len(found) == len(names) and found,
    )
    assert sorted(s["metric"]["node"] for s in scraped) == names
    up = wait_until(
        'funops_app_up{app="web"} 1 on each node',
        lambda: (found := prom.query('funops_app_up{app="web"} == 1')) and len(found) == len(names) and found,
    )
    assert sorted(s["metric"]["node"] for s in up) == names
    assert all("exported_node" not in s["metric"] for s in up)  # the agent's `node` is the target's

    stopped = lab.nodes[0]
    lab.exec(stopped, "systemctl stop web.service")
    down = wait_until(
        f"web down on {stopped.name}",
        lambda: prom.query(f'funops_app_up{{app="web",node="{stopped.name}"}} == 0'),
    )
    assert len(down) == 1
    wait_until(
        "AppInstanceDown firing", lambda: alerts(prom, "AppInstanceDown", app="web", node=stopped.name)
    )
    assert not alerts(prom, "AppInstanceDown", app="web", node=lab.nodes[1].name)
    wait_until(
        "AppInstanceDown at the Alertmanager", lambda: received(prom, "AppInstanceDown", node=stopped.name)
    )
    reset(lab)
