"""Secure defaults as data (issue 18): the unit sandbox per level and override, the container flags,
and the nginx settings the site template renders for them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from funops.apptypes.application import HARDENING_DIRECTIVES, ApplicationSpec
from funops.apptypes.hardening import LEVELS, container_security, unit_directives
from funops.compile.compiler import compile_project
from funops.load.loader import load_project
from tests.unit.shell_tasks import run_container


def spec(**fields: Any) -> ApplicationSpec:
    base = {"type": "systemd", "selector": {}, "command": "/bin/app"}
    return ApplicationSpec.model_validate({**base, **fields}, strict=False)


def test_every_level_directive_may_be_overridden() -> None:
    for level in LEVELS.values():
        assert set(level) <= set(HARDENING_DIRECTIVES)


def test_default_is_a_dynamic_user_in_the_strict_sandbox_without_capabilities() -> None:
    lines = dict(unit_directives("web", spec(port=8080)))
    assert lines["DynamicUser"] == "yes" and "User" not in lines
    assert lines["StateDirectory"] == "funops-apps/web"
    assert lines["CapabilityBoundingSet"] == lines["AmbientCapabilities"] == ""
    assert lines["ProtectSystem"] == "strict" and lines["SystemCallFilter"] == "@system-service"
    assert lines["RestrictAddressFamilies"] == "AF_INET AF_INET6 AF_UNIX" and lines["UMask"] == "0027"


def test_a_named_user_a_low_port_and_capadd() -> None:
    lines = dict(unit_directives("web", spec(port=80, user="www", capAdd=["SYS_NICE"])))
    assert lines["User"] == "www" and "DynamicUser" not in lines
    assert lines["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE CAP_SYS_NICE"
    assert lines["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE CAP_SYS_NICE"


def test_relaxed_none_and_overrides() -> None:
    relaxed = dict(unit_directives("jvm", spec(hardening="relaxed")))
    assert "MemoryDenyWriteExecute" not in relaxed and relaxed["ProtectSystem"] == "full"
    assert relaxed["DynamicUser"] == "yes" and relaxed["NoNewPrivileges"] == "yes"
    assert unit_directives("old", spec(hardening="none")) == []  # root, as before issue 18
    assert unit_directives("old", spec(hardening="none", user="app")) == [("User", "app")]
    overridden = dict(
        unit_directives(
            "web",
            spec(
                hardeningOverrides={
                    "MemoryDenyWriteExecute": False,
                    "ProtectHome": None,
                    "ReadWritePaths": "/srv/data /var/cache/web",
                }
            ),
        )
    )
    assert overridden["MemoryDenyWriteExecute"] == "no" and "ProtectHome" not in overridden
    assert overridden["ReadWritePaths"] == "/srv/data /var/cache/web"


def test_container_flags_per_level() -> None:
    base = {"type": "container", "selector": {}, "image": "r/app"}
    strict = container_security(ApplicationSpec.model_validate({**base, "capAdd": ["CHOWN"], "port": 80}))
    assert strict == {
        "noNewPrivileges": True,
        "capDrop": ["ALL"],
        "capAdd": ["CHOWN", "NET_BIND_SERVICE"],
        "pidsLimit": 1024,
        "readOnlyRootfs": False,
        "user": None,
    }
    relaxed = container_security(ApplicationSpec.model_validate({**base, "hardening": "relaxed"}))
    assert relaxed["capDrop"] == [] and relaxed["noNewPrivileges"] is True
    none = container_security(ApplicationSpec.model_validate({**base, "hardening": "none"}))
    assert none["noNewPrivileges"] is False and none["capDrop"] == []


def test_run_container_passes_the_flags(example: Path) -> None:
    path = example / "manifests" / "api.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    docs[0]["spec"] |= {"readOnlyRootfs": True, "user": "65534:65534", "pidsLimit": 64, "capAdd": ["CHOWN"]}
    path.write_text(yaml.safe_dump_all(docs))
    state = compile_project(load_project(example))
    res = state.nodes["node2"].resource("container:api")
    assert res is not None
    script = run_container(res, lambda p: p).script
    for flag in (
        "--security-opt no-new-privileges --cap-drop ALL --cap-add CHOWN --pids-limit 64",
        "--read-only --tmpfs /tmp:rw,noexec,nosuid,size=64m --user 65534:65534",
    ):
        assert flag in script


def _site(example: Path, **ingress: Any) -> str:
    """The bundled site template's output (the example's own override adds headers of its own)."""
    shutil.rmtree(example / "templates" / "nginx", ignore_errors=True)
    path = example / "manifests" / "ingress.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"] |= ingress
    path.write_text(yaml.safe_dump(doc))
    state = compile_project(load_project(example))
    res = state.nodes["node1"].resource("file:/etc/nginx/conf.d/funops-site.conf")
    assert res is not None and res.content is not None
    return res.content.decode()


def test_site_defaults_tls_hsts_and_strip_prefix(example: Path) -> None:
    site = _site(example)
    assert site.count("server_tokens off;") == 2
    assert site.count('add_header Strict-Transport-Security "max-age=63072000" always;') == 1
    assert "ssl_session_tickets off;" in site and "ssl_stapling" not in site
    assert "X-Frame-Options" not in site
    assert "rewrite ^/api/?(.*)$ /$1 break;\n        proxy_pass http://site__api;\n" in site
    assert "proxy_pass http://site__api/;" not in site


def test_site_options_hsts_off_headers_and_stapling(example: Path) -> None:
    tls = {
        "certificate": "certs/demo.funops.test.crt",
        "chain": "certs/demo.funops.test.crt",
        "key": {"fromFile": "secrets/demo.funops.test.key"},
    }
    site = _site(example, hsts=False, securityHeaders=True, tls=tls)
    assert "Strict-Transport-Security" not in site
    assert site.count("add_header X-Content-Type-Options nosniff always;") == 2
    assert "ssl_stapling on;" in site and "ssl_trusted_certificate /etc/funops/tls/site.chain.crt;" in site
    assert "resolver 127.0.0.53 valid=300s ipv6=off;" in site
    site = _site(example, hsts={"maxAge": 31536000, "includeSubdomains": True, "preload": True})
    assert '"max-age=31536000; includeSubDomains; preload" always;' in site
