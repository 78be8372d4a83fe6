"""The alert rules and scrape config that ship in examples/prometheus, checked by the real promtool
(Debian's `prometheus` package; lab/bootstrap-host installs it, so `make test` runs these)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "prometheus"
ALERTS = ("AgentDown", "AppInstanceDown", "HealthCheckFailing", "CertificateExpiresSoon", "DeployFailed",
          "PullNodeStale", "DriftFound")  # fmt: skip

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (lab/bootstrap-host installs it)"
)


def promtool(*args: str, cwd: Path = EXAMPLES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_rules_check() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_rules_unit_tests_pass() -> None:
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_shipped_and_tested() -> None:
    rules = yaml.safe_load((EXAMPLES / "alerts.yml").read_text())
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert sorted(names) == sorted(ALERTS)
    tests = yaml.safe_load((EXAMPLES / "alerts_test.yml").read_text())
    fired = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert fired == set(ALERTS)


def test_scrape_config_checks(tmp_path: Path) -> None:
    """The config as shipped, its files in place (promtool reads the token and CA files it names)."""
    text = (EXAMPLES / "prometheus.yml").read_text()
    for name in ("funops-metrics.token", "funops-agents.pem", "funops-targets.json"):
        (tmp_path / name).write_text("[]\n" if name.endswith(".json") else "x\n")
        text = text.replace(f"/etc/prometheus/{name}", str(tmp_path / name))
    shutil.copy(EXAMPLES / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(text)
    config = yaml.safe_load(text)
    agents = next(c for c in config["scrape_configs"] if c["job_name"] == "funops-agents")
    assert "insecure_skip_verify" not in agents["tls_config"]
    done = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
