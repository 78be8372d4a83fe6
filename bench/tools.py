"""The tools the bench compares, one small class each, registered in TOOLS by name.

A tool knows how to prepare its inputs from the lab (untimed), which commands plan and apply the
bench's desired state, and whether a run's output reports changes. Adding a tool (a future
`funops-agent`, say) is one more `@register`ed subclass of Tool; bench/__main__.py needs no change.
"""

from __future__ import annotations

import atexit
import compileall
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml

import funops
import lab

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
BIN = Path(sys.executable).parent  # the venv's scripts: pyinfra and ansible-playbook come from `.[bench]`


@dataclass
class Run:
    """One timed command: wall time of the whole process, its exit code and its output."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Tool:
    name: ClassVar[str]
    ok_codes: ClassVar[tuple[int, ...]] = (0,)

    def __init__(self, the_lab: lab.Lab, workdir: Path) -> None:
        self.lab = the_lab
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)

    def prepare(self) -> None:
        """Write what the tool reads (inventory, repo) from the lab; not timed."""

    def plan(self) -> list[str]:
        raise NotImplementedError

    def apply(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> list[str]:
        raise NotImplementedError

    def validate(self) -> list[str] | None:
        """Checking the configuration alone, if the tool has such a command."""
        return None

    def changed(self, run: Run) -> bool:
        """Whether `run` (a plan or an apply) reports changes on any node."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def after(self) -> None:
        """Clean up after one command (not timed)."""

    def run(self, argv: list[str]) -> Run:
        began = time.perf_counter()
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=self.workdir, env={**os.environ, **self.env()}
        )
        elapsed = time.perf_counter() - began
        self.after()
        if done.returncode not in self.ok_codes:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"{self.name}: `{' '.join(argv)}` failed with exit {done.returncode}")
        return Run(elapsed, done.returncode, done.stdout, done.stderr)


TOOLS: dict[str, type[Tool]] = {}


def register(cls: type[Tool]) -> type[Tool]:
    TOOLS[cls.name] = cls
    return cls


@register
class Funops(Tool):
    name = "funops"
    ok_codes = (0, 2)  # plan: 2 = changes

    def prepare(self) -> None:
        # funops's bytecode written, as a pip install leaves it (the peers' is): with
        # PYTHONDONTWRITEBYTECODE in the environment each run would compile what changed since.
        compileall.compile_dir(Path(funops.__file__).parent, quiet=1)
        self.repo = self.workdir / "repo"
        shutil.copytree(HERE / "repo", self.repo, dirs_exist_ok=True)
        (self.repo / "inventory").mkdir(exist_ok=True)
        shutil.copy(self.lab.inventory_path, self.repo / "inventory" / "lab.yaml")

    def plan(self) -> list[str]:
        return [sys.executable, "-m", "funops", "plan", "-C", str(self.repo)]

    def apply(self) -> list[str]:
        return [sys.executable, "-m", "funops", "apply", "--auto-approve", "-C", str(self.repo)]

    def version(self) -> list[str]:
        return [sys.executable, "-m", "funops", "version"]

    def validate(self) -> list[str] | None:
        return [sys.executable, "-m", "funops", "validate", "-C", str(self.repo)]

    def changed(self, run: Run) -> bool:
        if "Nothing to do: every node is as declared." in run.output:
            return False
        return run.returncode == 2 or "Apply " in run.output


@register
class FunopsAgent(Funops):
    """funops through its node agent: installed over ssh once, untimed (a reset leaves it running)."""

    name = "funops-agent"

    def prepare(self) -> None:
        super().prepare()
        path = self.repo / "inventory" / "lab.yaml"
        inventory = yaml.safe_load(path.read_text())
        for node in inventory["nodes"]:  # each node's agent on its own address
            node["agent"] = {"url": f"https://{node['address']}:7391"}
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        install = [
            sys.executable,
            "-m",
            "funops",
            "agent",
            "install",
            *(n["name"] for n in inventory["nodes"]),
        ]
        done = subprocess.run([*install, "-C", str(self.repo)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"funops agent install failed:\n{done.stdout}{done.stderr}")
        inventory["defaults"]["transport"] = "agent"
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))


@register
class FunopsSshMux(Funops):
    """funops over the system's ssh (`ssh.client: openssh`), one master connection per node kept
    between runs: the first timed run opens them, the later ones reuse them."""

    name = "funops-ssh-mux"

    def prepare(self) -> None:
        super().prepare()
        path = self.repo / "inventory" / "lab.yaml"
        inventory = yaml.safe_load(path.read_text())
        inventory["defaults"]["ssh"].update({"client": "openssh", "controlPersist": 600})
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        # Its own sockets (none from before the bench), outside the bench's workdir: that is removed
        # before the masters are ended, at exit.
        self.runtime = Path(tempfile.mkdtemp(prefix="fo-mux-"))
        atexit.register(self.end_masters)

    def env(self) -> dict[str, str]:
        return {"XDG_RUNTIME_DIR": str(self.runtime)}

    def end_masters(self) -> None:
        for socket in (self.runtime / "funops-ssh").glob("*"):
            if socket.is_socket():
                subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "x"], capture_output=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


def peer_hosts(the_lab: lab.Lab) -> dict[str, dict[str, str]]:
    """Per node: its address (for SSH) and the address its services bind (in the templates)."""
    return {node.name: {"address": node.address, "bind": node.address} for node in the_lab.nodes}


def upstreams(the_lab: lab.Lab) -> list[str]:
    """The nginx site's upstream servers, in funops's order: by node name (node1, node10, node2…)."""
    hosts = peer_hosts(the_lab)
    return [hosts[name]["bind"] for name in sorted(hosts)]


@register
class Pyinfra(Tool):
    name = "pyinfra"

    def prepare(self) -> None:
        hosts = [
            (name, {"ssh_hostname": host["address"], "bind": host["bind"]})
            for name, host in peer_hosts(self.lab).items()
        ]
        group = {
            "ssh_user": "root",
            "ssh_key": str(self.lab.key_path),
            "ssh_known_hosts_file": str(self.lab.known_hosts_path),
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
            "upstreams": upstreams(self.lab),
        }
        (self.workdir / "inventory.py").write_text(
            f'"""Generated by bench/tools.py from the lab."""\n\nlab_nodes = ({hosts!r}, {group!r})\n'
        )

    def _cmd(self, *flags: str) -> list[str]:
        deploy = PEERS / "pyinfra" / "deploy.py"
        return [str(BIN / "pyinfra"), "--json", *flags, "inventory.py", str(deploy)]

    def plan(self) -> list[str]:
        return self._cmd("--dry")

    def apply(self) -> list[str]:
        return self._cmd("-y")

    def version(self) -> list[str]:
        return [str(BIN / "pyinfra"), "--version"]

    def changed(self, run: Run) -> bool:
        """--json: a --dry run lists the hosts each operation would change, an apply those it did
        (`success`). Conditional operations (`_if`) are not counted in a plan: they follow the others."""
        report = json.loads(run.stdout)
        if report["results"] is None:
            return any(op["hosts_with_change"] for op in report["plan"])
        return any(op["success"] or op["error"] for op in report["results"]["operations"])


@register
class Ansible(Tool):
    name = "ansible"

    def prepare(self) -> None:
        ssh_args = (
            f"-F /dev/null -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={self.lab.known_hosts_path} -o GlobalKnownHostsFile=/dev/null"
        )
        hosts = peer_hosts(self.lab)
        inventory = {
            "all": {
                "hosts": {
                    name: {"ansible_host": host["address"], "bind": host["bind"], "node_name": name}
                    for name, host in hosts.items()
                },
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.lab.key_path),
                    "ansible_ssh_common_args": ssh_args,
                    "upstreams": upstreams(self.lab),
                },
            }
        }
        (self.workdir / "inventory.json").write_text(json.dumps(inventory, indent=2) + "\n")

    def env(self) -> dict[str, str]:
        # Each run gets a fresh ControlPath dir: no SSH connection outlives the run that opened it,
        # as with funops and pyinfra (Ansible's default ControlPersist=60s would reuse them).
        self.control_dir = tempfile.mkdtemp(prefix="cp-", dir=self.workdir)
        return {
            "ANSIBLE_CONFIG": str(PEERS / "ansible" / "ansible.cfg"),
            "ANSIBLE_HOME": str(self.workdir / "home"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": self.control_dir,
            "ANSIBLE_FORKS": str(len(self.lab.nodes)),
            "ANSIBLE_NOCOLOR": "1",
        }

    def after(self) -> None:
        for socket in Path(self.control_dir).iterdir():
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "x"], capture_output=True)
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def _cmd(self, *flags: str) -> list[str]:
        playbook = PEERS / "ansible" / "playbook.yml"
        return [str(BIN / "ansible-playbook"), "-i", "inventory.json", *flags, str(playbook)]

    def plan(self) -> list[str]:
        return self._cmd("--check")

    def apply(self) -> list[str]:
        return self._cmd()

    def version(self) -> list[str]:
        return [str(BIN / "ansible-playbook"), "--version"]

    def changed(self, run: Run) -> bool:
        counts = re.findall(r"\bchanged=(\d+)", run.output)
        if len(counts) != len(self.lab.nodes):
            raise SystemExit(f"ansible: expected a PLAY RECAP line per node:\n{run.output}")
        return any(int(n) for n in counts)
