"""Drift classification: a pure layer over desired resources, live facts and the node's state file."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from funops.drift.classify import NGINX_ID, classify_node, drift_fingerprint
from funops.drift.extras import NodeExtras, parse
from funops.gather.probe import LiveFacts
from funops.model.inventory import Node
from funops.node.shell import render
from funops.plan.filediff import MAX_BYTES
from funops.redact import keyed_fingerprint
from funops.resources import NGINX_RELOAD, NodeDesired, Resource
from funops.tasks.model import ProbeExtras

A, B, C = "a" * 64, "b" * 64, "c" * 64
KEY = b"k" * 64  # the node's fingerprint key
ENV = "file:/etc/funops/apps/web.env"
SITE = "file:/etc/nginx/conf.d/funops-site.conf"


def file_res(rid: str = ENV, sha: str = A, secret: bool = True, handlers: tuple[str, ...] = ()) -> Resource:
    desired = {"sha256": sha, "mode": "0600", "owner": "root", "group": "root"}
    return Resource(id=rid, kind="file", owner="app/web", desired=desired, order=10, secret=secret,
                    handlers=handlers)  # fmt: skip


UNIT = Resource(id="unit:web.service", kind="unit", owner="app/web",
                desired={"enabled": "enabled", "active": "active"}, order=30)  # fmt: skip


def container_res(image: str = "img:v1") -> Resource:
    desired = {"image": image, "specHash": "s1", "status": "running"}
    return Resource(id="container:api", kind="container", owner="app/api", desired=desired, order=40)


def desired_of(*resources: Resource) -> NodeDesired:
    return NodeDesired(node=Node(name="n1", address="127.0.2.1"), resources=list(resources))


def file_fact(sha: str = A, mode: str = "0600") -> dict[str, Any]:
    return {"sha256": sha, "mode": mode, "owner": "root", "group": "root", "type": "file"}


def unit_fact(active: str = "active", enabled: str = "enabled") -> dict[str, str]:
    return {"Id": "web.service", "LoadState": "loaded", "ActiveState": active, "UnitFileState": enabled}


def container_fact(image: str = "img:v1", status: str = "running", restarts: int = 0) -> dict[str, Any]:
    return {"name": "/api", "image": image, "status": status, "restarts": restarts,
            "startedAt": "2024-01-01T00:00:00Z", "labels": {"funops.spec-hash": "s1"}}  # fmt: skip


def state(applied: dict[str, dict[str, Any] | None], owed: list[str] | None = None) -> dict[str, Any]:
    kinds = {"file": "file", "unit": "unit", "container": "container"}
    return {
        "managed": {
            rid: {"owner": "app/web", "kind": kinds[rid.split(":")[0]], "applied": attrs}
            for rid, attrs in applied.items()
        },
        "owed": owed or [],
    }


APPLIED = {
    ENV: {"sha256": A, "mode": "0600", "owner": "root", "group": "root"},
    "unit:web.service": {"enabled": "enabled", "active": "active"},
    "container:api": {"image": "img:v1", "specHash": "s1", "status": "running"},
}


def facts(**over: Any) -> LiveFacts:
    f = LiveFacts(
        files={"/etc/funops/apps/web.env": file_fact()},
        units={"web.service": unit_fact()},
        containers={"api": container_fact()},
        state=state(APPLIED),
        fingerprint_key=KEY,
    )
    for key, value in over.items():
        setattr(f, key, value)
    return f


ALL = (file_res(), UNIT, container_res())


def classes(found: Any) -> dict[str, str]:
    return {i.id: i.drift_class for i in found.drift}


def test_as_applied_and_as_desired_is_clean() -> None:
    found = classify_node(desired_of(*ALL), facts())
    assert (found.drift, found.pending, found.notices) == ([], [], [])


def test_a_hand_edited_file_is_modified_and_shown_only_as_fingerprints() -> None:
    found = classify_node(desired_of(*ALL), facts(files={"/etc/funops/apps/web.env": file_fact(B, "0644")}))
    [item] = found.drift
    assert (item.id, item.drift_class, item.baseline, item.fixable) == (ENV, "modified", "applied", True)
    by_field = {f.field: (f.expected, f.live) for f in item.fields}
    # Issue 11: hashes only keyed with the node's key (an unkeyed prefix let a secret be guessed back).
    assert by_field == {
        "sha256": (keyed_fingerprint(A, KEY), keyed_fingerprint(B, KEY)),
        "mode": ("0600", "0644"),
    }
    assert B not in item.model_dump_json() and B[:8] not in item.model_dump_json()
    assert item.fingerprint == drift_fingerprint("modified", {"sha256": B, "mode": "0644", "owner": "root",
                                                              "group": "root"}, KEY)  # fmt: skip


def test_the_repo_ahead_of_the_node_is_pending_not_drift() -> None:
    found = classify_node(desired_of(file_res(sha=C), UNIT, container_res("img:v2")), facts())
    assert found.drift == []
    assert {(p.id, p.action) for p in found.pending} == {(ENV, "update"), ("container:api", "update")}


def test_drift_on_top_of_a_pending_change_is_drift_against_what_was_applied() -> None:
    found = classify_node(
        desired_of(file_res(sha=C), UNIT, container_res()),
        facts(files={"/etc/funops/apps/web.env": file_fact(B)}),
    )
    assert classes(found) == {ENV: "modified"} and found.pending == []
    assert found.drift[0].fields[0].expected == keyed_fingerprint(A, KEY)  # the baseline is the applied value


def test_live_as_desired_is_clean_even_when_the_record_lags() -> None:
    # An apply that wrote the file but died before recording it: nothing for drift to say.
    found = classify_node(
        desired_of(file_res(sha=C), UNIT, container_res()),
        facts(files={"/etc/funops/apps/web.env": file_fact(C)}),
    )
    assert (found.drift, found.pending) == ([], [])


def test_stopped_failed_or_disabled_units_are_stopped() -> None:
    for unit in (unit_fact(active="inactive"), unit_fact(active="failed"), unit_fact(enabled="disabled")):
        found = classify_node(desired_of(*ALL), facts(units={"web.service": unit}))
        assert classes(found) == {"unit:web.service": "stopped"}, unit


def test_containers_gone_exited_or_on_another_image() -> None:
    assert classes(classify_node(desired_of(*ALL), facts(containers={}))) == {"container:api": "missing"}
    exited = facts(containers={"api": container_fact(status="exited")})
    assert classes(classify_node(desired_of(*ALL), exited)) == {"container:api": "stopped"}
    other = facts(containers={"api": container_fact(image="evil:latest")})
    assert classes(classify_node(desired_of(*ALL), other)) == {"container:api": "modified"}


def test_a_restarted_container_is_a_notice_not_drift() -> None:
    found = classify_node(desired_of(*ALL), facts(containers={"api": container_fact(restarts=3)}))
    assert found.drift == [] and found.notices == [
        "container:api restarted 3 time(s); running since 2024-01-01T00:00:00Z"
    ]


def test_a_deleted_file_is_missing() -> None:
    assert classes(classify_node(desired_of(*ALL), facts(files={}))) == {ENV: "missing"}


def test_managed_but_no_longer_in_the_repo_is_extra_and_fixable() -> None:
    found = classify_node(desired_of(UNIT, container_res()), facts())
    assert classes(found) == {ENV: "extra"} and found.drift[0].fixable
    gone = classify_node(desired_of(UNIT, container_res()), facts(files={}))
    assert gone.drift == []  # already gone: nothing left over


def test_owed_handlers_are_owed() -> None:
    f = facts(state=state(APPLIED, owed=["restart:unit:web.service"]))
    assert classes(classify_node(desired_of(*ALL), f)) == {"handler:restart:unit:web.service": "owed"}


def test_a_node_applied_by_an_older_funops_is_compared_with_the_repo() -> None:
    old = state(dict.fromkeys(APPLIED))  # managed, but no `applied` attributes recorded
    found = classify_node(
        desired_of(*ALL), facts(state=old, files={"/etc/funops/apps/web.env": file_fact(B)})
    )
    assert classes(found) == {ENV: "modified"} and found.drift[0].baseline == "desired"


def test_never_applied_is_pending_create() -> None:
    found = classify_node(desired_of(*ALL), LiveFacts())
    assert found.drift == [] and {p.action for p in found.pending} == {"create"}


def test_files_funops_did_not_write_in_its_own_places_are_extra_and_not_fixable() -> None:
    extras = NodeExtras(own_files={"/etc/funops/apps/web.env": A, "/etc/nginx/conf.d/funops-rogue.conf": B})
    found = classify_node(desired_of(*ALL), facts(), extras)
    [item] = found.drift
    assert (item.id, item.drift_class, item.fixable, item.owner) == (
        "file:/etc/nginx/conf.d/funops-rogue.conf", "extra", False, None,
    )  # fmt: skip


def test_a_file_a_halted_release_wrote_is_named_with_that_release_not_as_unknown() -> None:
    """apply wrote a unit, halted at the health gate, and the app left the repo: the file is funops's
    (its failed release lists it), though no apply manages it."""
    unit_file = "file:/etc/systemd/system/gone.service"
    written = {"id": unit_file, "kind": "file", "owner": "app/gone", "desired": {}, "order": 1}
    halted = {"id": "gone-1", "app": "gone", "number": 1, "status": "failed", "resources": [written]}
    extras = NodeExtras(own_files={"/etc/systemd/system/gone.service": A})
    found = classify_node(
        desired_of(*ALL), facts(state={**state(APPLIED), "releases": {"gone": [halted]}}), extras
    )
    [item] = found.drift
    assert (item.id, item.drift_class, item.fixable) == (unit_file, "extra", False)
    assert "written by release gone-1 (failed)" in item.summary and "did not create" not in item.summary


def test_a_failing_nginx_test_is_reported_with_its_output() -> None:
    extras = NodeExtras(nginx_ok=False, nginx_output="nginx: [emerg] unexpected end of file")
    found = classify_node(desired_of(*ALL), facts(), extras)
    assert classes(found) == {NGINX_ID: "modified"} and not found.drift[0].fixable
    assert found.nginx_test is not None and "unexpected end of file" in found.nginx_test.output


def test_the_fingerprint_follows_the_drifted_value() -> None:
    fp = drift_fingerprint
    assert fp("modified", {"sha256": B}, KEY) == fp("modified", {"sha256": B}, KEY)
    assert fp("modified", {"sha256": B}, KEY) != fp("modified", {"sha256": C}, KEY)
    assert fp("missing", None, KEY).startswith("sha256:") and len(fp("x", 1, KEY)) == 23
    # Keyed: another key (or none) gives another fingerprint; without a key hashes are left out of it.
    assert fp("modified", {"sha256": B}, KEY) != fp("modified", {"sha256": B}, b"x" * 64)
    assert fp("modified", {"sha256": B}) == fp("modified", {"sha256": C})


def test_the_extras_probe_finds_funops_looking_files_under_a_root(tmp_path: Path) -> None:
    root = tmp_path / "node"
    for rel, text in {
        "etc/nginx/conf.d/funops-site.conf": "server {}\n",
        "etc/nginx/conf.d/other.conf": "server {}\n",
        "etc/funops/apps/web.env": "A=1\n",
        "etc/systemd/system/web.service": "# Managed by funops (demo): app web\n[Unit]\n",
        "etc/systemd/system/sshd.service": "[Unit]\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)

    def path(p: str) -> str:
        return f"{root}{p}"

    out = subprocess.run(
        ["/bin/sh", "-c", render(ProbeExtras(False, (), MAX_BYTES), path).script],
        capture_output=True,
        text=True,
    )
    extras = parse(out.stdout, path)
    assert set(extras.own_files) == {
        "/etc/nginx/conf.d/funops-site.conf", "/etc/funops/apps/web.env", "/etc/systemd/system/web.service",
    }  # fmt: skip
    assert extras.nginx_ok is None


def test_the_extras_probe_reads_the_nginx_test() -> None:
    out = "@@funops own\n@@funops nginx\nnginx: [emerg] bad\nnginx: configuration file test failed\n"
    extras = parse(out + "@@funops nginx-rc 1\n@@funops end\n", lambda p: p)
    assert extras.nginx_ok is False and "test failed" in extras.nginx_output
    assert "nginx -t" in render(ProbeExtras(True, (), MAX_BYTES), lambda p: p).script
    assert NGINX_RELOAD  # nginx files are the ones whose change reloads nginx
