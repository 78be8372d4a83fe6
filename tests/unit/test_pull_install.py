"""Issue 14, the node side of pull mode's installation: the runtime `agent install` ships (the engine's
packages from this environment, byte-stable), the refusal of a python that cannot load it, the poll's
config and units, `funops-agent pull`, and the agent's status of the polls."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from funops.agent import __main__ as agent_main
from funops.agent import install, pullsetup, runtime
from funops.errors import FunopsError
from funops.load.loader import load_project
from funops.load.project import Project
from funops.node import CONFIG_FILE, PUBLIC_KEY_FILE
from funops.node import host as node
from funops.node.shell import render
from funops.pull import keys
from funops.tasks import model as m

ENGINE = (
    "funops.apply.executor",
    "funops.plan.taskplan",
    "funops.apply.lock",
    "funops.diff.differ",
    "funops.node.poll",
    "funops.pull.converge",
    "funops.pull.bundle",
    "funops.gather.gatherer",
    "funops.plan.releases",
    "funops.transports.local",
    "funops.compile.compiler",
    "deepdiff",
)  # fmt: skip  (deepdiff: the differ imports it lazily)


@pytest.fixture(scope="module")
def rt() -> runtime.Runtime:
    return runtime.build()


def _members(rt: runtime.Runtime) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(rt.data)) as tar:
        return tar.getmembers()


# ---- the runtime ------------------------------------------------------------------------------------


def test_the_runtime_is_the_engines_packages_and_nothing_more(rt: runtime.Runtime) -> None:
    names = {runtime._norm(d.split("==")[0]) for d in rt.distributions}
    assert names == {"pydantic", "pydantic-core", "annotated-types", "typing-extensions", "typing-inspection",
                     "jinja2", "markupsafe", "pyyaml", "deepdiff", "orderly-set", "cachebox"}  # fmt: skip
    tops = {i.name.split("/")[0] for i in _members(rt)}
    for never in ("funops", "paramiko", "cryptography", "typer", "rich", "click", "git", "ruamel"):
        assert never not in tops
    assert all("__pycache__" not in i.name and not i.name.endswith((".pyc", "/RECORD")) for i in _members(rt))
    assert all(".." not in i.name.split("/") and not i.name.startswith("/") for i in _members(rt))


def test_what_the_engine_imports_is_in_the_runtime(rt: runtime.Runtime) -> None:
    """In a fresh interpreter: every third-party module the engine imports comes from the runtime."""
    code = (
        "import importlib, json, sys\n"
        "before = set(sys.modules)  # what site loaded (setuptools' .pth hack) is not the engine's\n"
        f"for name in {ENGINE!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in set(sys.modules) - before})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dists = metadata.packages_distributions()
    tops = {i.name.split("/")[0].removesuffix(".py") for i in _members(rt)}
    third_party = [n for n in json.loads(done.stdout) if n in dists and n != "funops"]
    assert third_party and set(third_party) <= tops, set(third_party) - tops


def test_the_runtime_is_byte_stable_and_holds_the_compiled_modules(rt: runtime.Runtime) -> None:
    runtime.build.cache_clear()
    again = runtime.build()
    assert again.data == rt.data and again.sha256 == rt.sha256
    members = _members(rt)
    so = [i for i in members if i.name.endswith(".so")]
    assert any(i.name.startswith("pydantic_core/_pydantic_core.") for i in so)
    assert all(i.mode == 0o755 for i in so)
    assert {(i.mtime, i.uid, i.gid, i.uname) for i in members} == {(runtime._EPOCH, 0, 0, "root")}
    assert rt.files == len(members) and rt.unpacked == sum(i.size for i in members)
    assert rt.glibc >= (2, 5)  # manylinux wheels: some glibc
    assert len(rt.release) == 16 and rt.sha256.startswith(rt.release)


def test_a_wheels_oldest_tag_is_what_it_needs() -> None:
    class Dist:
        def __init__(self, *tags: str) -> None:
            self.text = "".join(f"Tag: {t}\n" for t in tags)

        def read_text(self, name: str) -> str:
            return self.text

    pure, both = (
        Dist("py3-none-any"),
        Dist("cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-manylinux2014_x86_64"),
    )
    dists = [pure, both, Dist("cp311-cp311-manylinux_2_24_x86_64")]
    assert runtime._glibc_needed(dists) == (2, 24)  # type: ignore[arg-type]
    assert runtime._glibc_needed([Dist("py3-none-any")]) == ()  # type: ignore[list-item]


# ---- the node's python --------------------------------------------------------------------------------


def test_the_probe_of_this_machines_python_reads_as_the_controllers_does() -> None:
    done = subprocess.run(["sh", "-c", render(m.ProbePython(), str).script], capture_output=True, text=True)
    there = json.loads(done.stdout.splitlines()[-1])
    if not there:
        pytest.skip("no /usr/bin/python3 here")
    assert set(there) == set(runtime.here())
    assert there["libc"] == runtime.here()["libc"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"cacheTag": "cpython-312", "version": "3.12.1"}, "another python or machine"),
        ({"machine": "aarch64"}, "another python or machine"),
        ({"libc": "", "libcVersion": ""}, "no glibc"),
        ({"libcVersion": "2.5"}, "a glibc older than"),
    ],
)
def test_a_python_that_cannot_load_the_runtime_is_refused(
    rt: runtime.Runtime, change: dict[str, str], why: str
) -> None:
    there = {**runtime.here(), **change}
    with pytest.raises(FunopsError) as err:
        runtime.check_python("web7", there, rt)
    text = str(err.value)
    assert text.startswith("node web7: its /usr/bin/python3 is python ") and why in text
    assert f"this controller's is python {runtime.here()['version']}" in text
    assert "same python version and machine" in text and "drop `pull:`" in text


def test_a_node_without_python_is_refused_and_the_same_python_is_not(rt: runtime.Runtime) -> None:
    with pytest.raises(FunopsError, match="node web7: pull mode needs /usr/bin/python3"):
        runtime.check_python("web7", {}, rt)
    runtime.check_python("web7", runtime.here(), rt)


# ---- the poll's files -----------------------------------------------------------------------------


def _project(repo: Path, pull: dict[str, object] | None) -> Project:
    path = repo / "inventory" / "demo.yaml"
    doc = yaml.safe_load(path.read_text())
    for n in doc["nodes"]:
        n["agent"] = {"url": f"https://{n['address']}:7391"}
    if pull is not None:
        doc["nodes"][0]["pull"] = pull
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_project(repo, None, None, manifests=False)


def test_the_pull_config_and_units(example: Path) -> None:
    keys.init(_project(example, None))
    pull = {"store": "https://store.example/fleet", "intervalSeconds": 90, "splaySeconds": 12.5}
    project = _project(example, {**pull, "cohort": "canary", "caFile": "/etc/ssl/store.pem"})
    node1 = project.nodes["node1"]
    files = pullsetup.files(project, node1)
    assert set(files) == {CONFIG_FILE, PUBLIC_KEY_FILE, pullsetup.SERVICE_FILE, pullsetup.TIMER_FILE}
    assert json.loads(files[CONFIG_FILE][0]) == {
        "node": "node1", "store": "https://store.example/fleet", "publicKey": PUBLIC_KEY_FILE,
        "stateDir": "/var/lib/funops", "caFile": "/etc/ssl/store.pem", "intervalSeconds": 90,
        "splaySeconds": 12.5, "cohort": "canary",
    }  # fmt: skip
    assert files[PUBLIC_KEY_FILE][0] == (example / "certs" / "pull-signing.pub").read_bytes()
    timer = files[pullsetup.TIMER_FILE][0].decode()
    for line in ("OnBootSec=90s", "OnUnitInactiveSec=90s", "RandomizedDelaySec=12500ms", "AccuracySec=1s",
                 "Unit=funops-pull.service", "WantedBy=timers.target"):  # fmt: skip
        assert f"\n{line}\n" in timer
    service = files[pullsetup.SERVICE_FILE][0].decode()
    assert "\nType=oneshot\n" in service and "\nTimeoutStartSec=15min\n" in service
    assert (
        "\nExecStart=/usr/bin/python3 /opt/funops-agent/current/funops-agent.pyz pull "
        "--config /etc/funops-agent/pull.json\n"
    ) in service
    sandbox = ("Protect", "Restrict", "NoNew", "Private", "Lock", "TasksMax")
    hardening = [line for line in install.UNIT_TEXT.splitlines() if line.startswith(sandbox)]
    assert hardening and all(f"\n{line}\n" in service for line in hardening)
    assert "[Install]" not in service  # the timer starts it
    assert node1.pull is not None
    no_ca = node1.model_copy(update={"pull": node1.pull.model_copy(update={"ca_file": None})})
    plain = pullsetup.config(project, no_ca)
    assert "caFile" not in json.loads(plain)


def test_a_pull_node_without_the_public_key_says_to_make_it(example: Path) -> None:
    project = _project(example, {"store": "http://store.example/"})
    with pytest.raises(FunopsError, match=r"node node1: .*run `funops agent pull-key init` first"):
        pullsetup.files(project, project.nodes["node1"])
    (example / "certs" / "pull-signing.pub").write_bytes(keys.generate()[0])
    with pytest.raises(FunopsError, match="never a private key"):
        pullsetup.files(project, project.nodes["node1"])


def test_the_runtime_is_placed_once_and_a_dropped_pull_is_undone(rt: runtime.Runtime) -> None:
    site = "/opt/funops-agent/v1/site"
    fresh = install._runtime_tasks(rt, site, {})
    assert [type(t) for t in fresh] == [m.PlaceArtifact, m.PointLink]
    there = (rt.release, rt.sha256)
    assert install._runtime_tasks(rt, site, {f"{pullsetup.RUNTIME}/current": there, site: there}) == []
    other = "/opt/funops-agent/v2/site"  # a new version on a runtime already there: linked, not sent
    relinked = install._runtime_tasks(rt, other, {f"{pullsetup.RUNTIME}/current": there})
    assert relinked == [m.PointLink(other, f"{pullsetup.RUNTIME}/releases/{rt.release}")]
    assert install._drop_pull({p: (None, None) for p in pullsetup.FILES}, "/var/lib/funops") == []
    dropped = install._drop_pull({CONFIG_FILE: ("ab", "0644")}, "/var/lib/funops")
    assert dropped == [
        m.StopUnit("funops-pull.timer"),
        m.RemoveFile(CONFIG_FILE, f"/var/lib/funops/backup{CONFIG_FILE}"),
    ]


# ---- on the node ----------------------------------------------------------------------------------


def test_pull_puts_the_site_beside_the_zip_first_on_the_path(tmp_path: Path) -> None:
    version = tmp_path / "v1"
    (tmp_path / "runtime").mkdir()
    version.mkdir()
    (version / "funops-agent.pyz").write_bytes(install.bundle())
    (version / "site").symlink_to(tmp_path / "runtime")
    (tmp_path / "current").symlink_to(version)
    code = (
        "import sys; from funops.agent.__main__ import runtime_site; import funops.node.poll as n\n"
        "n.main = lambda config, converge: print(runtime_site(), sys.path[0], config) or 7\n"
        "from funops.agent.__main__ import main; sys.exit(main(['pull']))"
    )
    pyz = str(tmp_path / "current" / "funops-agent.pyz")
    done = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {pyz!r})\n{code}"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 7, done.stderr
    real = str((tmp_path / "runtime").resolve())
    assert done.stdout.split() == [real, real, CONFIG_FILE]


def test_pull_from_a_checkout_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import funops.node.poll as pull_node

    seen: list[str] = []
    monkeypatch.setattr(pull_node, "main", lambda config, converge: seen.append(config) or 0)
    path = list(sys.path)
    assert agent_main.main(["pull", "--config", "/tmp/p.json"]) == 0
    assert seen == ["/tmp/p.json"] and sys.path == path and agent_main.runtime_site() is None


def test_the_agents_status_reports_the_polls(tmp_path: Path) -> None:
    assert "pull" not in node.status(str(tmp_path))
    (tmp_path / "pull.json").write_text(json.dumps({"generation": 4, "result": "converged"}))
    assert node.status(str(tmp_path)) == {"apps": {}, "pull": {"generation": 4, "result": "converged"}}
    (tmp_path / "pull.json").write_text("{half")
    assert "unreadable" in node.status(str(tmp_path))["pull"]["error"]
    (tmp_path / "pull.json").write_text("[1]")
    assert node.status(str(tmp_path))["pull"] == {"error": f"{tmp_path}/pull.json: a JSON object expected"}


def test_the_agents_certificate_read_back_is_recorded_only_when_it_is_the_pinned_one(example: Path) -> None:
    """`publish` seals bundles to certs/agents/<node>.pem: what install reads back must be what it pinned."""
    import hashlib
    import ssl

    from funops.agent import ca

    ca.init(example, "op@host")  # any certificate will do
    cert = ca.ca_cert_path(example)
    script = render(m.ReadFiles((str(cert),), 65536), str).script
    output = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    pem = cert.read_bytes()
    pin = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()
    node1 = _project(example, None).nodes["node1"]
    assert install._certificate(node1, output, pin) == pem
    with pytest.raises(
        FunopsError, match="node node1: the agent certificate read back is not the one pinned"
    ):
        install._certificate(node1, output, "0" * 64)
    with pytest.raises(FunopsError, match="node node1: its agent certificate could not be read back"):
        install._certificate(node1, "", pin)
    recorded = example / "certs" / "agents" / "node1.pem"
    install._record_certificate(recorded, pem)
    assert recorded.read_bytes() == pem
