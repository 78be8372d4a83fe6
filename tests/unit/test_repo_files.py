"""Files are read from the repo only: symlinks that lead out of it are refused, in the working tree
and in a commit's tree alike; a symlink that stays inside the repo is followed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from funops.errors import InputError
from funops.load.loader import load_project


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def _commit(repo: Path) -> None:
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "x")


def test_a_symlink_inside_the_repo_is_followed(example: Path) -> None:
    (example / "manifests" / "web.yaml").rename(example / "web-real.yaml")
    (example / "manifests" / "web.yaml").symlink_to("../web-real.yaml")
    _commit(example)

    assert "web" in load_project(example).apps
    assert "web" in load_project(example, revision="HEAD").apps


@pytest.mark.parametrize("revision", [None, "HEAD"])
def test_a_manifest_symlink_out_of_the_repo_is_refused(example: Path, tmp_path: Path, revision) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text((example / "manifests" / "web.yaml").read_text())
    (example / "manifests" / "web.yaml").unlink()
    (example / "manifests" / "web.yaml").symlink_to(outside)
    _commit(example)

    with pytest.raises(InputError) as caught:
        load_project(example, revision=revision)

    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("manifests/web.yaml", None)
    assert problem.message == f"manifests/web.yaml is a symlink to {outside}, outside the repo"


def test_a_template_override_symlink_out_of_the_repo_is_refused(example: Path) -> None:
    from funops.compile.compiler import compile_project

    (example / "templates" / "systemd").mkdir(parents=True)
    (example / "templates" / "systemd" / "app.service.j2").symlink_to("/etc/passwd")

    with pytest.raises(InputError) as caught:
        compile_project(load_project(example))

    messages = {p.message for p in caught.value.problems}
    assert any(
        "templates/systemd/app.service.j2 is a symlink to /etc/passwd, outside the repo" in m
        for m in messages
    )


def test_a_config_source_template_that_is_not_utf8_is_a_located_error(example: Path) -> None:
    from funops.compile.compiler import compile_project

    (example / "files").mkdir()
    (example / "files" / "app.conf.j2").write_bytes(b"name = {{ node.name }}\nowner = Ren\xe9\n")
    web = example / "manifests" / "web.yaml"
    web.write_text(
        web.read_text().replace(
            "    - path: /srv/web/health\n",
            "    - path: /srv/web/app.conf\n      source: files/app.conf.j2\n    - path: /srv/web/health\n",
        )
    )

    with pytest.raises(InputError) as caught:
        compile_project(load_project(example))

    assert {str(p) for p in caught.value.problems} == {
        "manifests/web.yaml:18: spec.configFiles.1.source: "
        "files/app.conf.j2 is not UTF-8 text (line 2, byte 0xe9)"
    }
