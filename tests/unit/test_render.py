"""Rendered files are valid for the real tools (nginx -t, systemd-analyze) and byte-stable."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from funops.compile.compiler import compile_project
from funops.load.loader import load_project


def _rendered(repo: Path) -> dict[str, dict[str, bytes]]:
    state = compile_project(load_project(repo))
    out: dict[str, dict[str, bytes]] = {}
    for name, desired in state.nodes.items():
        files = {r.id: r.content or b"" for r in desired.resources if r.kind == "file"}
        files |= {r.id: repr(sorted(r.run_spec.items())).encode() for r in desired.resources if r.run_spec}
        out[name] = files
    return out


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (.ci/run installs it)")
def test_every_rendered_nginx_config_passes_nginx_t(example: Path, tmp_path: Path) -> None:
    state = compile_project(load_project(example))
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    sites = []
    for desired in state.nodes.values():
        for res in desired.resources:
            if res.kind != "file" or not (
                res.name.startswith("/etc/nginx/") or res.name.startswith("/etc/funops/tls/")
            ):
                continue
            # The test's own prefix stands in for the node's root: paths inside configs follow it.
            target = prefix / desired.node.name / res.name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            content = (res.content or b"").replace(
                b"/etc/funops/", f"{prefix / desired.node.name}/etc/funops/".encode()
            )
            target.write_bytes(content)
            if res.name.endswith(".conf"):
                sites.append(target)
    assert sites, "the example renders at least one nginx site"
    for site in sites:
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"error_log {prefix}/logs/error.log;\npid {prefix}/nginx.pid;\nevents {{}}\n"
            f"http {{\n  include /etc/nginx/mime.types;\n  include {site};\n}}\n"
        )
        done = subprocess.run(
            ["nginx", "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{site}:\n{done.stderr}"
        assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_every_rendered_unit_passes_systemd_analyze_verify(example: Path, tmp_path: Path) -> None:
    """`systemd-analyze verify` is the strictest offline check here (no systemd as PID 1 on this
    machine): it parses the unit, checks every directive and that ExecStart is executable. Its
    warnings (e.g. an unknown key, which it only 'ignores') fail the test too."""
    state = compile_project(load_project(example))
    units = {
        r.name
        for d in state.nodes.values()
        for r in d.resources
        if r.name.endswith(".service") and r.kind == "file"
    }
    assert units
    for desired in state.nodes.values():
        for res in desired.resources:
            if res.kind == "file" and res.name.endswith(".service"):
                unit = tmp_path / desired.node.name / Path(res.name).name
                unit.parent.mkdir(parents=True, exist_ok=True)
                unit.write_bytes(res.content or b"")
                done = subprocess.run(
                    ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True
                )
                assert done.returncode == 0, done.stderr
                assert done.stderr.strip() == "", done.stderr


def test_rendering_is_byte_stable_whatever_the_file_order(example: Path, tmp_path: Path) -> None:
    first = _rendered(example)
    assert first == _rendered(example)

    # Same documents, split into other files, in other orders: nodes reversed, documents shuffled.
    shuffled = tmp_path / "shuffled"
    shutil.copytree(example, shuffled)
    docs = []
    for f in sorted((shuffled / "manifests").glob("*.yaml")):
        docs += list(yaml.safe_load_all(f.read_text()))
        f.unlink()
    random.Random(7).shuffle(docs)
    for i, doc in enumerate(docs):
        (shuffled / "manifests" / f"{len(docs) - i:02d}-part.yaml").write_text(yaml.safe_dump(doc))
    inventory = yaml.safe_load((shuffled / "inventory" / "demo.yaml").read_text())
    (shuffled / "inventory" / "demo.yaml").unlink()
    for i, node in enumerate(reversed(inventory["nodes"])):
        part = {"defaults": inventory["defaults"], "nodes": [node]}
        (shuffled / "inventory" / f"{i}-{node['name']}.yaml").write_text(yaml.safe_dump(part))

    assert _rendered(shuffled) == first
