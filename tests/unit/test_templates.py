"""The repo's templates/: an override wins over the bundled template (and may extend it), a template
of the repo's own renders a config file, every rendered file says where its template came from, and a
broken template is an error at its own file:line with jinja2's message."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from funops.compile.compiler import compile_project
from funops.errors import InputError
from funops.load.loader import load_project
from funops.resources import Resource

SITE = "file:/etc/nginx/conf.d/funops-site.conf"
UNIT = "file:/etc/systemd/system/web.service"
VERSION = "file:/srv/web/version.json"


def _resource(repo: Path, node: str, rid: str) -> Resource:
    res = compile_project(load_project(repo)).nodes[node].resource(rid)
    assert res is not None, rid
    return res


def _problems(repo: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        compile_project(load_project(repo))
    return [str(p) for p in caught.value.problems]


def test_the_example_override_extends_the_bundled_site(example: Path) -> None:
    site = _resource(example, "node1", SITE)
    text = (site.content or b"").decode()
    # The override's blocks, in both servers (plain http and TLS) ...
    assert text.count('add_header X-Content-Type-Options "nosniff" always;') == 2
    assert text.count("access_log /var/log/nginx/funops-site.access.log funops_site;") == 2
    assert text.splitlines()[1].startswith("log_format funops_site ")
    # ... and everything else still the bundled template's.
    assert text.startswith("# Managed by funops (demo): ingress site.")
    assert "upstream site__api {" in text and "ssl_certificate /etc/funops/tls/site.crt;" in text
    assert site.template is not None
    assert (site.template.origin, site.template.path) == ("repo", "templates/nginx/site.conf.j2")
    assert site.template.uses == ("bundled/nginx/site.conf.j2",)


def test_without_the_override_the_bundled_site_is_unchanged_by_its_blocks(example: Path) -> None:
    with_override = (_resource(example, "node1", SITE).content or b"").decode()
    shutil.rmtree(example / "templates" / "nginx")
    site = _resource(example, "node1", SITE)
    assert site.template is not None
    assert (site.template.origin, site.template.path) == ("bundled", "funops/templates/nginx/site.conf.j2")
    bundled = (site.content or b"").decode()
    # The empty blocks render nothing: the override's output is the bundled one plus its own lines.
    extra = {"log_format", "'rt=", "access_log", "X-Content-Type", "X-Frame", "Referrer-", "Permissions-"}
    assert bundled.splitlines() == [
        line for line in with_override.splitlines() if not any(w in line for w in extra)
    ]
    assert "{%" not in bundled and "\n\n\n" not in bundled


def test_a_whole_file_override_wins_over_the_bundled_template(example: Path) -> None:
    unit = example / "templates" / "systemd" / "app.service.j2"
    unit.parent.mkdir(parents=True)
    unit.write_text("# ours: {{ app.name }}\n[Service]\nExecStart={{ command | systemd_escape }}\n")
    res = _resource(example, "node2", UNIT)
    assert (res.content or b"").decode().startswith("# ours: web\n[Service]\nExecStart=/usr/bin/python3 ")
    assert res.template is not None
    assert (res.template.origin, res.template.path, res.template.uses) == (
        "repo",
        "templates/systemd/app.service.j2",
        (),
    )
    # Other apps' and kinds' templates stay bundled.
    env = _resource(example, "node2", "file:/etc/funops/apps/api.env")
    assert env.template is not None and env.template.origin == "bundled"


def test_a_config_file_from_a_template_of_the_repo(example: Path) -> None:
    res = _resource(example, "node3", VERSION)
    assert json.loads(res.content or b"") == {
        "app": "web",
        "node": "node3",
        "project": "demo",
        "version": "1",
    }
    assert res.template is not None
    assert (res.template.origin, res.template.path) == ("repo", "templates/web/version.json.j2")
    # A template of the repo may include another one of the repo.
    (example / "templates" / "web" / "fields.j2").write_text('"release": "{{ release.version }}"')
    (example / "templates" / "web" / "version.json.j2").write_text('{ {% include "web/fields.j2" %} }\n')
    res = _resource(example, "node3", VERSION)
    assert res.content == b'{ "release": "1" }\n'
    assert res.template is not None and res.template.uses == ("web/fields.j2",)


def test_a_syntax_error_in_an_override_names_its_line(example: Path) -> None:
    site = example / "templates" / "nginx" / "site.conf.j2"
    lines = site.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if "X-Frame-Options" in line)
    lines[n] = '    add_header X-Frame-Options "{{ frame_options }";'
    site.write_text("\n".join(lines) + "\n")
    (problem,) = _problems(example)
    assert problem.startswith(f"templates/nginx/site.conf.j2:{n + 1}: template error: unexpected '}}'")
    assert "(rendering manifests/ingress.yaml:" in problem


def test_an_undefined_variable_in_an_override_names_its_line(example: Path) -> None:
    site = example / "templates" / "nginx" / "site.conf.j2"
    lines = site.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if "X-Frame-Options" in line)
    lines[n] = "    add_header X-Frame-Options {{ ingress.frame_options }} always;"
    site.write_text("\n".join(lines) + "\n")
    (problem,) = _problems(example)
    message = "template error: 'dict object' has no attribute 'frame_options'"
    assert problem.startswith(f"templates/nginx/site.conf.j2:{n + 1}: {message}")


def test_an_error_in_a_repo_config_template_names_its_line(example: Path) -> None:
    (example / "templates" / "web" / "version.json.j2").write_text("{\n{{ release.nope }}\n}\n")
    problems = _problems(example)
    assert problems and all(
        p.startswith("templates/web/version.json.j2:2: template error: 'dict object' has no attribute 'nope'")
        for p in problems
    )
    assert "(rendering manifests/web.yaml:" in problems[0]


def test_an_override_extending_a_missing_bundled_template_is_located(example: Path) -> None:
    site = example / "templates" / "nginx" / "site.conf.j2"
    site.write_text(site.read_text().replace("bundled/nginx/site.conf.j2", "bundled/nginx/nope.conf.j2"))
    (problem,) = _problems(example)
    assert problem.startswith(
        "templates/nginx/site.conf.j2:6: template error: template not found: bundled/nginx/nope.conf.j2"
    ), problem


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "250"},
    )


def test_plan_and_render_show_where_each_template_came_from(example: Path, tmp_path: Path) -> None:
    doc = json.loads(_cli("plan", "-C", str(example), "-o", "json").stdout)
    changes = {(n["name"], c["id"]): c for n in doc["nodes"] for c in n["changes"]}
    assert changes[("node1", SITE)]["template"] == {
        "name": "nginx/site.conf.j2",
        "origin": "repo",
        "path": "templates/nginx/site.conf.j2",
        "uses": ["bundled/nginx/site.conf.j2"],
    }
    assert changes[("node2", UNIT)]["template"]["origin"] == "bundled"
    assert changes[("node2", "container:api")]["template"]["path"] == "funops/templates/container/run.json.j2"
    assert changes[("node2", "file:/srv/web/index.html")]["template"] is None  # inline content
    assert changes[("node2", "unit:web.service")]["template"] is None

    text = _cli("plan", "-C", str(example)).stdout
    assert "from templates/nginx/site.conf.j2 (repo; uses bundled/nginx/site.conf.j2)" in text
    assert "from funops/templates/systemd/app.service.j2 (bundled)" in text
    markdown = _cli("plan", "-C", str(example), "-o", "markdown").stdout
    assert "(from `templates/web/version.json.j2 (repo)`)" in markdown

    out = tmp_path / "out"
    rendered = _cli("render", "-C", str(example), "--node", "node1", "--out", str(out))
    assert rendered.returncode == 0, rendered.stderr
    site = out / "etc/nginx/conf.d/funops-site.conf"
    assert f"wrote {site}  from templates/nginx/site.conf.j2 (repo; uses bundled/nginx/site.conf.j2)" in (
        rendered.stdout
    )
    assert b"add_header X-Frame-Options" in site.read_bytes()
