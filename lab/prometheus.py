"""The lab's monitoring: Debian's `prometheus`, `prometheus-pushgateway` and
`prometheus-alertmanager`, per slot, on one host loopback address (127.0.<slot>.251).

    python -m lab.prometheus up|down|status

- Prometheus on :9090 scrapes every second, evaluates every second, sends alerts to the
  Alertmanager, and reads the rules of examples/prometheus/alerts.yml with every `for:` set to 0s
  (the tests' copy: an alert fires at the first evaluation that sees its condition). Its config can
  be reloaded (`configure`): the agents' job appears once a test has written the targets, the CA
  bundle and the metrics token in the state directory (`funops prometheus targets|ca`).
- The Pushgateway on :9091 (no persistence): Prometheus scrapes it with honor_labels.
- The Alertmanager on :9093 (no cluster), one receiver that sends nothing: its API lists the alerts.

State (configs, data, logs, pid files) lives in <lab dir>/prometheus; `down` stops the processes it
started (by their pid files, checked against their command line).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

# The pebble lab's process bookkeeping (pid files checked against the command line), shared.
from . import daemons
from .config import LabError, lab_dir, lab_slot

HOST = 251  # 127.0.<slot>.251, beside the ACME lab's .250
PROMETHEUS_PORT, PUSHGATEWAY_PORT, ALERTMANAGER_PORT = 9090, 9091, 9093
RULES = Path(__file__).resolve().parents[1] / "examples" / "prometheus" / "alerts.yml"
NAMES = ("prometheus", "pushgateway", "alertmanager")


@dataclass(frozen=True)
class PrometheusLab:
    prometheus: str  # base URLs
    pushgateway: str
    alertmanager: str
    state: str  # the directory the agents' files go in (targets.json, agents.pem, metrics.token)

    @property
    def targets_file(self) -> Path:
        return Path(self.state) / "targets.json"

    @property
    def ca_file(self) -> Path:
        return Path(self.state) / "agents.pem"

    @property
    def token_file(self) -> Path:
        return Path(self.state) / "metrics.token"

    def get(self, base: str, path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return json.loads(response.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of a PromQL expression (Prometheus's HTTP API)."""
        from urllib.parse import quote

        return self.get(self.prometheus, f"/api/v1/query?query={quote(expr)}")["data"]["result"]

    def firing(self) -> list[dict[str, Any]]:
        """Prometheus's alerts in state firing (/api/v1/alerts)."""
        alerts = self.get(self.prometheus, "/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    def received(self) -> list[dict[str, Any]]:
        """The alerts the Alertmanager holds (/api/v2/alerts)."""
        return self.get(self.alertmanager, "/api/v2/alerts")

    def configure(self, agents: bool) -> None:
        """Rewrite prometheus.yml (with or without the agents' job) and have Prometheus reload it."""
        _write_prometheus(Path(self.state), agents)
        request = urllib.request.Request(self.prometheus + "/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise LabError(f"prometheus reload answered {response.status}")

    def clear_pushgateway(self) -> None:
        request = urllib.request.Request(self.pushgateway + "/api/v1/admin/wipe", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()


def address() -> str:
    return f"127.0.{lab_slot()}.{HOST}"


def state_dir() -> Path:
    return lab_dir() / "prometheus"


def up() -> PrometheusLab:
    """Start the three for this slot (idempotent: kept when all answer)."""
    info = current()
    if info is not None:
        info.configure(agents=False)
        return info
    down()
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    info = PrometheusLab(
        prometheus=f"http://{address()}:{PROMETHEUS_PORT}",
        pushgateway=f"http://{address()}:{PUSHGATEWAY_PORT}",
        alertmanager=f"http://{address()}:{ALERTMANAGER_PORT}",
        state=str(d),
    )
    _write_rules(d)
    _write_prometheus(d, agents=False)
    (d / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {"receiver": "lab", "group_wait": "0s", "group_interval": "1s"},
                "receivers": [{"name": "lab"}],
            }
        )
    )
    for data in ("data", "alertmanager-data"):
        shutil.rmtree(d / data, ignore_errors=True)
    processes = {
        "alertmanager": daemons.start(
            d,
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={d / 'alertmanager.yml'}",
                f"--storage.path={d / 'alertmanager-data'}",
                f"--web.listen-address={address()}:{ALERTMANAGER_PORT}",
                "--cluster.listen-address=",
            ],
            env={},
        ),
        "pushgateway": daemons.start(
            d,
            "pushgateway",
            [
                "prometheus-pushgateway",
                f"--web.listen-address={address()}:{PUSHGATEWAY_PORT}",
                "--web.enable-admin-api",
            ],
            env={},
        ),
        "prometheus": daemons.start(
            d,
            "prometheus",
            [
                "prometheus",
                f"--config.file={d / 'prometheus.yml'}",
                f"--storage.tsdb.path={d / 'data'}",
                f"--web.listen-address={address()}:{PROMETHEUS_PORT}",
                "--web.enable-lifecycle",
            ],
            env={},
        ),
    }
    daemons.wait_up(processes, lambda: _answers(info), d, "the lab's Prometheus", 60, down)
    (d / "info.json").write_text(json.dumps(asdict(info), indent=2))
    return info


def down() -> None:
    """Stop this slot's three (only the processes whose pid files this module wrote)."""
    d = state_dir()
    daemons.stop(d, NAMES, grace=10)
    (d / "info.json").unlink(missing_ok=True)


def current() -> PrometheusLab | None:
    try:
        info = PrometheusLab(**json.loads((state_dir() / "info.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if _answers(info) else None


def status() -> dict[str, object]:
    d = state_dir()
    info = current()
    return {"address": address(), **{n: daemons.pid(d, n) for n in NAMES}, "answering": info is not None}


def _answers(info: PrometheusLab) -> bool:
    for base, path in (
        (info.prometheus, "/-/ready"),
        (info.pushgateway, "/-/ready"),
        (info.alertmanager, "/-/ready"),
    ):
        try:
            urllib.request.urlopen(base + path, timeout=3).close()
        except (urllib.error.URLError, OSError):
            return False
    return True


def _write_rules(d: Path) -> None:
    """examples/prometheus/alerts.yml with every `for:` 0s: the tests wait for events, not minutes."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
        group["interval"] = "1s"
    (d / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))


def _write_prometheus(d: Path, agents: bool) -> None:
    scrapes: list[dict[str, Any]] = [
        {
            "job_name": "pushgateway",
            "honor_labels": True,
            "static_configs": [{"targets": [f"{address()}:{PUSHGATEWAY_PORT}"]}],
        }
    ]
    if agents:  # as examples/prometheus/prometheus.yml, with the lab's files
        scrapes.append({
            "job_name": "funops-agents",
            "scheme": "https",
            "metrics_path": "/metrics",
            "authorization": {"type": "Bearer", "credentials_file": str(d / "metrics.token")},
            "tls_config": {"ca_file": str(d / "agents.pem")},
            "file_sd_configs": [{"files": [str(d / "targets.json")], "refresh_interval": "1s"}],
            "metric_relabel_configs": [{"regex": "exported_node", "action": "labeldrop"}],
        })  # fmt: skip
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(d / "alerts.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{address()}:{ALERTMANAGER_PORT}"]}]}]
        },
        "scrape_configs": scrapes,
    }
    aside = d / ".prometheus.yml.new"
    aside.write_text(yaml.safe_dump(config, sort_keys=False))
    aside.replace(d / "prometheus.yml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.prometheus", description="The lab's Prometheus, Pushgateway and Alertmanager."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            info = up()
            print(f"lab prometheus: {info.prometheus}, pushgateway {info.pushgateway}, ", end="")
            print(f"alertmanager {info.alertmanager}")
        elif args.command == "down":
            down()
            print("lab prometheus: down")
        else:
            print(json.dumps(status(), indent=2))
    except (LabError, OSError) as e:
        print(f"lab prometheus: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
