"""Issue 11, runtime side, against real nodes: the node state file's framing, locks under a race,
and secrets that no output may let anyone confirm by guessing.

The tests run in file order on one repo (the bundled example with the lab's inventory).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import FUNOPS, apply, edit_yaml, funops, http, make_repo, reset

STATE = "/var/lib/funops/state.json"


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    yield make_repo(lab, tmp_path_factory.mktemp("hostile") / "repo")
    reset(lab)


def releases_on(repo: Path, node: str) -> list[str]:
    done = funops(repo, "history", "-o", "json")
    assert done.returncode == 0, done.stderr
    return sorted(r["id"] for r in json.loads(done.stdout)["releases"] if node in r["nodes"])


def test_a_state_file_without_a_final_newline_keeps_the_nodes_history(lab: Lab, repo: Path) -> None:
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1:])
    before = releases_on(repo, "node1")
    assert before
    # Rewritten by hand, as compact JSON with no newline at the end.
    lab.exec("node1", f"python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); "
                      f"open(sys.argv[1],\"w\").write(json.dumps(s))' {STATE}", check=True)  # fmt: skip
    assert not lab.exec("node1", f"tail -c 1 {STATE}").stdout.endswith("\n")
    plan = funops(repo, "plan", "-o", "json")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # nothing to do: the history was read
    assert releases_on(repo, "node1") == before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"formatVersion": 1, "managed": {', "state file is not valid JSON"),
        ('{"managed": 5}', "state file does not fit the state format"),
        ("\\377\\376", "state file is not UTF-8 text"),
    ],
)
def test_a_state_file_that_cannot_be_read_refuses_the_node(
    lab: Lab, repo: Path, content: str, reason: str
) -> None:
    lab.exec("node1", f"cp -p {STATE} /root/state.keep && printf '{content}' > {STATE}", check=True)
    digest = lab.exec("node1", f"sha256sum {STATE}").stdout
    try:
        for args in (("plan",), ("apply", "--auto-approve")):
            done = funops(repo, *args)
            assert done.returncode == 1, done.stdout + done.stderr
            assert "node1:" in done.stderr and reason in done.stderr and "refusing" in done.stderr
        assert lab.exec("node1", f"sha256sum {STATE}").stdout == digest  # untouched
    finally:
        lab.exec("node1", f"mv /root/state.keep {STATE}", check=True)
    assert funops(repo, "plan").returncode == 0


def web_releases(repo: Path) -> list[dict]:
    done = funops(repo, "history", "web", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["releases"]


def journal_entries(repo: Path) -> list[dict]:
    path = repo / ".funops" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_applies_started_together_change_each_node_once(lab: Lab, repo: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    for round_ in range(1, 4):
        version = f"race{round_}"

        def bump(docs: list[dict], version: str = version) -> None:
            docs[0]["spec"]["version"] = version
            docs[0]["spec"]["strategy"] = {"batchSize": "100%", "maxFailures": 0}

        edit_yaml(repo / "manifests" / "web.yaml", bump)
        releases_before, journal_before = len(web_releases(repo)), len(journal_entries(repo))
        argv = [*FUNOPS, "apply", "--auto-approve", "--allow-dirty", "-o", "json", "-C", str(repo)]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]  # fmt: skip
        done = [(p, *p.communicate(timeout=300)) for p in procs]
        changed = [d for d in done if d[0].returncode == 0 and '"event": "done"' in d[1]]
        others = [d for d in done if d not in changed]
        assert len(changed) == 1, [(p.returncode, err) for p, _, err in done]
        for proc, out, err in others:  # refused (locked, or the plan went stale) or nothing to do
            refused = proc.returncode == 1 and (
                "locked by another apply" in err or "changed since the plan was made" in err
            )
            assert refused or (proc.returncode == 0 and "Nothing to do" in out + err), (proc.returncode, err)
        rels = web_releases(repo)
        assert len(rels) == releases_before + 1  # one release per change, not two
        assert rels[0]["versions"] == [version] and rels[0]["status"] == "succeeded"
        assert sorted(rels[0]["nodes"]) == [n.name for n in lab.nodes]
        new = journal_entries(repo)[journal_before:]
        assert [e["releases"] for e in new] == [{"web": rels[0]["id"]}]
        for node in lab.nodes:
            assert lab.exec(node.name, "cat /srv/web/index.html").stdout.startswith(f"<h1>web {version} on")


def secret_digests(repo: Path) -> set[str]:
    """What must never be printed for the repo's secrets as they are now: each secret file's sha256
    (whole and as the short prefixes outputs use) and the spec hash the old scheme derived from it."""
    import copy
    import hashlib

    from funops.compile.compiler import compile_project
    from funops.load.loader import load_project

    found: set[str] = set()
    for desired in compile_project(load_project(repo)).nodes.values():
        env_sha = None
        for res in desired.resources:
            if res.secret and res.content is not None:
                digest = hashlib.sha256(res.content).hexdigest()
                found |= {digest, digest[:8], digest[:12]}
                if res.name.endswith(".env"):
                    env_sha = digest
        for res in desired.resources:
            if res.kind == "container" and res.run_spec is not None and env_sha:  # artifacts have one too
                spec = copy.deepcopy(res.run_spec)
                spec["labels"].pop("funops.spec-hash", None)
                old = hashlib.sha256(json.dumps({"spec": spec, "env": env_sha}, sort_keys=True).encode())
                found.add(old.hexdigest()[:16])
    return found


class ArgvSampler:
    """`ps -eo args` on every node and on this machine, over and over while an apply runs."""

    def __init__(self, lab: Lab) -> None:
        import threading

        self.lab, self.seen, self.stop = lab, [], threading.Event()
        self.threads = [threading.Thread(target=self._sample, args=(n.name,)) for n in lab.nodes]
        self.threads.append(threading.Thread(target=self._sample, args=(None,)))

    def _sample(self, node: str | None) -> None:
        while not self.stop.is_set():
            if node is None:
                out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            else:
                out = self.lab.exec(node, "ps -eo args").stdout
            self.seen.append(out)

    def __enter__(self) -> ArgvSampler:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_no_output_reveals_a_secret_or_an_unkeyed_digest_of_one(lab: Lab, repo: Path) -> None:
    token_file = repo / "secrets" / "api-token"
    original = token_file.read_text()
    secrets = ["k3y7Qz", "p4Ss9W"]  # short, guessable: what brute force would find from a digest
    forbidden: set[str] = set(secrets)
    tls_key = (repo / "secrets" / "demo.funops.test.key").read_text().splitlines()
    forbidden |= {line for line in tls_key if len(line) > 40}  # the key's body
    outputs: dict[str, str] = {}

    def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = funops(repo, *args)
        outputs[name] = done.stdout + done.stderr
        return done

    try:
        token_file.write_text(secrets[0] + "\n")
        forbidden |= secret_digests(repo)
        assert run("apply-1", "apply", "--auto-approve", "--allow-dirty", "-o", "json").returncode == 0
        token_file.write_text(secrets[1] + "\n")  # a change of secret material: plans show old → new
        forbidden |= secret_digests(repo)
        for output in ("text", "json", "markdown"):
            assert run(f"plan-{output}", "plan", "-o", output).returncode == 2
        assert "hmac:" in outputs["plan-json"]  # keyed fingerprints are shown: old → new
        with ArgvSampler(lab) as sampler:
            done = run("apply-2", "apply", "--auto-approve", "--allow-dirty", "-o", "json")
        assert done.returncode == 0, done.stderr
        outputs["argv"] = "\n".join(sampler.seen)
        assert len(sampler.seen) > len(lab.nodes)  # it did sample while the apply ran
        # Drift of a secret file: edited by hand on every node that has it.
        env = "/etc/funops/apps/api.env"
        for node in lab.nodes:
            lab.exec(node.name, f"[ -f {env} ] && echo EXTRA=1 >> {env} || true")
            content = lab.exec(node.name, f"cat {env} 2>/dev/null").stdout
            if content:
                import hashlib

                digest = hashlib.sha256(content.encode()).hexdigest()
                forbidden |= {digest, digest[:8], digest[:12]}
        for output in ("text", "json", "markdown"):
            assert run(f"drift-{output}", "drift", "-o", output).returncode == 2
        assert run("history", "history", "-o", "json").returncode == 0
        outputs["journal"] = (repo / ".funops" / "journal.jsonl").read_text()
        for node in ("node2", "node3"):
            outputs[f"labels-{node}"] = lab.exec(
                node, "docker inspect -f '{{json .Config.Labels}}' api"
            ).stdout
        leaks = sorted(
            (name, item) for name, text in outputs.items() for item in forbidden if item and item in text
        )
        assert leaks == [], leaks
    finally:
        token_file.write_text(original)
        code, _, err = apply(repo, "--allow-dirty")
        assert code == 0, err


def test_a_failure_after_the_nginx_reload_keeps_disk_and_running_config_in_agreement(
    lab: Lab, repo: Path
) -> None:
    """The state write after a successful reload fails (node1's nginx reload makes state.json
    immutable): the new site stays on disk, as nginx runs it, instead of the old one coming back."""
    site, state = "/etc/nginx/conf.d/funops-site.conf", STATE
    dropin = "/etc/systemd/system/nginx.service.d/zz-funops-test.conf"
    lab.exec("node1", f"printf '[Service]\\nExecReload=/usr/bin/chattr +i {state}\\n' > {dropin} "
                      "&& systemctl daemon-reload", check=True)  # fmt: skip

    def without_legacy(docs: list[dict]) -> None:
        docs[0]["spec"]["rules"] = [r for r in docs[0]["spec"]["rules"] if r["path"] != "/legacy/"]

    ingress = repo / "manifests" / "ingress.yaml"
    original = ingress.read_text()
    try:
        edit_yaml(ingress, without_legacy)
        code, evs, err = apply(repo, "--allow-dirty")
        assert code == 3, err
        done = next(e for e in evs if e["event"] == "node-done" and e["node"] == "node1")
        assert done["status"] == "failed" and "state" in done["error"]
        assert "location /legacy/" not in lab.exec("node1", f"cat {site}").stdout  # not restored
        node1 = lab.node("node1").address
        status, body = http(f"http://{node1}/legacy/", host="demo.funops.test")
        # nginx runs the new site: / (web's static file server) answers, not the legacy backends.
        assert status == 404 and "File not found" in body, (status, body)
    finally:
        lab.exec("node1", f"rm -f {dropin}; systemctl daemon-reload; chattr -i {state}")
        ingress.write_text(original)
    code, _, err = apply(repo, "--allow-dirty")
    assert code == 0, err
    assert "location /legacy/" in lab.exec("node1", f"cat {site}").stdout


def test_an_unwritable_journal_after_changes_is_a_partial_failure_not_nothing_done(
    lab: Lab, repo: Path
) -> None:
    settings = repo / "funops.yaml"
    original = settings.read_text()
    web = repo / "manifests" / "web.yaml"
    web_original = web.read_text()

    def bump(docs: list[dict]) -> None:
        docs[0]["spec"]["version"] = "journal-less"

    try:
        journal = "journal: funops.yaml/journal.jsonl"  # its parent is a file
        settings.write_text(original.replace("journal: .funops/journal.jsonl", journal))
        edit_yaml(web, bump)
        code, _, err = apply(repo, "--allow-dirty")
        assert code == 3, err  # the nodes were changed: never 1 ("nothing was done")
        assert "cannot write the journal" in err
        assert lab.exec("node1", "cat /srv/web/index.html").stdout.startswith("<h1>web journal-less")
    finally:
        settings.write_text(original)
        web.write_text(web_original)
    code, _, err = apply(repo, "--allow-dirty")
    assert code == 0, err


PLANTED = "/etc/cron.d/funops-planted"


def _report_files(repo: Path, version: str) -> None:
    """The example's job gets two config files in its own directory (owned by its user, `report`)."""

    def edit(docs: list[dict]) -> None:
        docs[0]["spec"]["configFiles"] = [
            {"path": "/var/lib/report/report.conf", "content": f"v = {version}\n"},
            {"path": "/var/lib/report/conf.d/a.conf", "content": f"a = {version}\n"},
        ]

    edit_yaml(repo / "manifests" / "report.yaml", edit)


@pytest.mark.parametrize("transport", ["ssh", "agent"])
def test_a_link_the_apps_user_plants_is_refused_not_written_through(
    lab: Lab, tmp_path: Path, transport: str
) -> None:
    """Issue 28: the app's user owns its directory and puts links where funops writes as root (one
    at the file, one for a directory on the way, both into /etc/cron.d); apply refuses the node,
    naming the path, and nothing is written or chowned through either link."""
    reset(lab)
    repo = make_repo(lab, tmp_path / "repo", transport)
    try:
        _report_files(repo, "1")
        code, evs, err = apply(repo)
        assert code == 0, err + json.dumps(evs[-3:])
        plants = [  # what the app's user does, and undoes
            (
                "/var/lib/report/report.conf",
                f"rm report.conf && ln -s {PLANTED} report.conf",
                "rm report.conf",
            ),
            ("/var/lib/report/conf.d/a.conf", "mv conf.d away && ln -s /etc/cron.d conf.d", "rm conf.d"),
        ]
        for version, (path, plant, unplant) in enumerate(plants, start=2):
            lab.exec("node1", f"cd /var/lib/report && {plant}", user="report", check=True)
            _report_files(repo, str(version))
            code, evs, err = apply(repo)
            said = err + json.dumps(evs)
            assert code == 3, said
            assert f"refusing {path}" in said and "symbolic link" in said, said
            cron = lab.exec("node1", "ls -A /etc/cron.d; stat -c '%U %a' /etc/cron.d").stdout
            assert "funops-planted" not in cron and "a.conf" not in cron and "root 755" in cron, cron
            links = lab.exec("node1", "find /var/lib/report -maxdepth 1 -type l -printf '%f %u\\n'").stdout
            assert "report" in links, links  # the planted link is still there, not replaced
            lab.exec("node1", f"cd /var/lib/report && {unplant}", user="report", check=True)
        lab.exec("node1", "cd /var/lib/report && mv away conf.d", user="report", check=True)
        code, evs, err = apply(repo)  # the links gone: the node converges
        assert code == 0, err + json.dumps(evs[-3:])
        got = lab.exec("node1", "cat /var/lib/report/report.conf /var/lib/report/conf.d/a.conf").stdout
        assert got == "v = 3\na = 3\n"
    finally:
        lab.exec("node1", f"rm -rf /var/lib/report {PLANTED} /etc/cron.d/a.conf")
        reset(lab)
