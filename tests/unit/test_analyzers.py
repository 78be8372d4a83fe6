"""What funops renders passes the field's own analyzers (issue 18), with the real tools:
`systemd-analyze security --offline=true` on every unit, gixy on every nginx site (nothing at MEDIUM
or above), `shellcheck -s sh` on the gather probe and on task bundles (no findings).

Rendered from the bundled example and from a variant that turns on every option the templates have
(TLS chain + OCSP stapling, HTTP→HTTPS redirect, HSTS with subdomains, security headers, websockets,
stripPrefix on a nested path, a named user created by funops, a privileged port, relaxed and
overridden hardening, container capabilities, read-only root and user).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from funops.compile.compiler import DesiredState, compile_project
from funops.load.loader import load_project
from funops.model.strategy import HealthCheck
from funops.node.probe import build_script
from tests.unit import shell_tasks as t
from tests.unit.shell_tasks import every_task, place_artifact

GIXY = shutil.which("gixy") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gixy")
STRICT_THRESHOLD = 2.5  # "OK" in systemd-analyze's words
RELAXED_THRESHOLD = 5.0  # "MEDIUM": a relaxed unit is still far from the 9.x of an unhardened one

VARIANT = """\
apiVersion: funops/v1
kind: Application
metadata: {name: worker}
spec:
  type: systemd
  selector: {}
  version: "1"
  command: /usr/bin/python3 -m http.server --bind {{ node.bind }} 800
  port: 800
  user: worker
  createUser: true
---
apiVersion: funops/v1
kind: Application
metadata: {name: jvm}
spec:
  type: systemd
  selector: {}
  version: "1"
  command: /usr/bin/java -jar /opt/jvm/app.jar
  port: 8090
  hardening: relaxed
  hardeningOverrides: {ReadWritePaths: /var/cache/jvm, ProtectHome: null}
---
apiVersion: funops/v1
kind: Application
metadata: {name: box}
spec:
  type: container
  selector: {matchLabels: {role: app}}
  image: 127.0.0.1:5000/funops/testapp
  version: v1
  port: 8095
  capAdd: [CHOWN]
  readOnlyRootfs: true
  user: "65534:65534"
  pidsLimit: 64
  vars: {userId: 1, appId: 2}
---
apiVersion: funops/v1
kind: Service
metadata: {name: jvm}
spec: {app: jvm}
---
apiVersion: funops/v1
kind: Service
metadata: {name: box}
spec: {app: box}
---
apiVersion: funops/v1
kind: Ingress
metadata: {name: secure}
spec:
  selector: {matchLabels: {role: edge}}
  domains: [secure.funops.test, www.secure.funops.test]
  tls:
    certificate: certs/demo.funops.test.crt
    chain: certs/demo.funops.test.crt
    key: {fromFile: secrets/demo.funops.test.key}
  redirectHttp: true
  hsts: {maxAge: 31536000, includeSubdomains: true, preload: true}
  securityHeaders: true
  rules:
    - {path: /, service: jvm}
    - {path: /v1/box.api/, service: box, stripPrefix: true}
  nginx: {websocket: true}
---
apiVersion: funops/v1
kind: Ingress
metadata: {name: plain}
spec:
  selector: {matchLabels: {role: edge}}
  domains: [plain.funops.test]
  httpPort: 8088
  rules:
    - {path: /box, service: box, stripPrefix: true}
---
apiVersion: funops/v1
kind: Certificate
metadata: {name: acme}
spec: {domains: [acme.funops.test, www.acme.funops.test], issuer: le}
---
apiVersion: funops/v1
kind: Ingress
metadata: {name: acme}
spec:
  selector: {matchLabels: {role: edge}}
  domains: [acme.funops.test, www.acme.funops.test]
  tls: {certificateRef: acme}
  rules:
    - {path: /, service: jvm}
"""
ACME_SETTINGS = "acme:\n  issuers:\n    le: {directory: 'https://acme-v02.api.letsencrypt.org/directory'}\n"


@pytest.fixture
def variant(example: Path) -> Path:
    (example / "manifests" / "zz-variant.yaml").write_text(VARIANT)
    with (example / "funops.yaml").open("a") as f:
        f.write(ACME_SETTINGS)
    return example


def _files(state: DesiredState, suffix: str, dest: Path) -> dict[str, Path]:
    """Every rendered file ending in `suffix`, written under `dest/<node>/`."""
    out = {}
    for desired in state.nodes.values():
        for res in desired.resources:
            if res.kind == "file" and res.name.endswith(suffix):
                target = dest / desired.node.name / res.name.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(res.content or b"")
                out[f"{desired.node.name}:{res.name}"] = target
    return out


# ---------------------------------------------------------------- systemd-analyze security


def _exposure(unit: Path) -> float:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("repo", ["example", "variant"])
def test_units_score_ok_on_systemd_analyze_security(repo: str, request, tmp_path: Path) -> None:
    state = compile_project(load_project(request.getfixturevalue(repo)))
    units = _files(state, ".service", tmp_path)
    assert units
    scores = {name: _exposure(path) for name, path in units.items()}
    for name, score in scores.items():
        relaxed = name.endswith("/jvm.service")
        assert score <= (RELAXED_THRESHOLD if relaxed else STRICT_THRESHOLD), scores
    if repo == "example":
        assert scores["node1:/etc/systemd/system/web.service"] <= STRICT_THRESHOLD


# ---------------------------------------------------------------- gixy


def _gixy(site: Path, tmp_path: Path) -> list[dict]:
    """gixy's findings for one site, included from an http block as on a node."""
    conf = tmp_path / f"{site.parent.parent.parent.parent.name}-{site.name}.nginx.conf"
    conf.write_text(f"events {{}}\nhttp {{\n    include {site};\n}}\n")
    done = subprocess.run([GIXY, "-f", "json", str(conf)], capture_output=True, text=True)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not Path(GIXY).exists(), reason="gixy is not installed (pip install -e '.[dev]')")
@pytest.mark.parametrize("repo", ["example", "variant"])
def test_sites_have_no_medium_or_high_gixy_findings(repo: str, request, tmp_path: Path) -> None:
    state = compile_project(load_project(request.getfixturevalue(repo)))
    sites = _files(state, ".conf", tmp_path / "nodes")
    assert sites
    for name, site in sites.items():
        findings = _gixy(site, tmp_path)
        serious = [f for f in findings if f["severity"] in ("MEDIUM", "HIGH")]
        assert not serious, f"{name}:\n" + json.dumps(serious, indent=1)


@pytest.mark.skipif(not Path(GIXY).exists(), reason="gixy is not installed (pip install -e '.[dev]')")
def test_gixy_does_see_the_problems_it_is_asked_about(example: Path, tmp_path: Path) -> None:
    """The check above is not vacuous: the site as funops rendered it before issue 18 is flagged."""
    site = tmp_path / "n" / "a" / "b" / "c" / "old.conf"
    site.parent.mkdir(parents=True)
    site.write_text(
        "upstream up { server 127.0.0.1:8080; }\n"
        "server {\n    listen 127.0.0.1:443 ssl;\n    server_name a.test;\n"
        "    ssl_certificate /x.crt;\n    ssl_certificate_key /x.key;\n    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "    location /api/ { proxy_pass http://up/; }\n}\n"
    )
    found = {f["plugin"] for f in _gixy(site, tmp_path) if f["severity"] in ("MEDIUM", "HIGH")}
    assert {"version_disclosure", "hsts_header", "weak_ssl_tls", "proxy_pass_normalized"} <= found


# ---------------------------------------------------------------- shellcheck


def _shellcheck(script: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.sh"
    path.write_text(script)
    done = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, f"{name}:\n{done.stdout}{done.stderr}"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (.ci/run does)")
def test_the_gather_probe_passes_shellcheck(variant: Path, tmp_path: Path) -> None:
    state = compile_project(load_project(variant))
    for name, desired in state.nodes.items():
        script = build_script([r.id for r in desired.resources], "/var/lib/funops/state.json", lambda p: p)
        _shellcheck(script, tmp_path, f"probe-{name}")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (.ci/run does)")
def test_task_bundles_pass_shellcheck(variant: Path, tmp_path: Path) -> None:
    """Every task kind, from the variant's resources: one bundle per node as apply sends it."""
    state = compile_project(load_project(variant))

    def path(p: str) -> str:
        return p

    for name, desired in state.nodes.items():
        tasks = [t.write_state("/var/lib/funops/state.json", b"{}", path)]
        tasks += [t.ensure_user(a.create_user) for a in desired.apps.values() if a.create_user]
        tasks += every_task(desired, path)
        for res in desired.resources:
            if res.kind == "artifact":  # uploaded, restored from a record (no upload), fetched by url
                fetched = replace(
                    res, content=None, run_spec={**(res.run_spec or {}), "url": "http://h/a.tgz"}
                )
                tasks += [place_artifact(replace(res, content=None), path), place_artifact(fetched, path)]
            elif res.kind == "container":
                tasks.append(t.start_container(res.name))
        for app in desired.apps.values():
            for check in (HealthCheck(type="http"), HealthCheck(type="tcp"), HealthCheck(type="process")):
                tasks.append(
                    t.health_check(
                        app.app,
                        check,
                        host=app.bind,
                        port=app.port or 80,
                        unit=app.unit,
                        container=app.container,
                        min_healthy_seconds=2,
                    )
                )
        files = [(res.desired["sha256"], res.name) for res in desired.resources if res.kind == "file"]
        tasks += [
            t.daemon_reload(),
            t.keep_artifacts("/var/lib/funops", files, {sha for sha, _ in files}, path),
            t.prune_images({"127.0.0.1:5000/funops/testapp"}, {"127.0.0.1:5000/funops/testapp:v1"}),
            t.nginx_test(),
            t.nginx_reload(),
        ]
        _shellcheck(t.bundle(tasks), tmp_path, f"bundle-{name}")
