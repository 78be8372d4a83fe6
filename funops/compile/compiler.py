"""Manifests → the desired resources per node. Pure and byte-stable: sorted inputs, no timestamps."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import Any

from .. import resources as r
from ..apptypes import app_type
from ..apptypes.application import Application
from ..errors import InputError, Problem
from ..ids import Handler, Owner, ResourceId
from ..kinds.cert import NEW, current
from ..load.project import Origin, Project
from ..load.source import read_secret_file
from ..model.canary import assign_versions, wanted_versions
from ..model.inventory import Node
from ..model.manifests import Artifact, Ingress, Release, SecretRef
from ..model.placement import NodeCapacity, place
from ..model.text import bad_char, shown, single_line_problem
from ..resources import (
    APPS_DIR,
    CHALLENGE_ROOT,
    NGINX_DIR,
    TLS_DIR,
    TemplateOrigin,
)
from . import artifacts

# What a line of a rendered unit / env file may be (checked after rendering: funops/model/text.py).
UNIT_LINE = re.compile(r"[ \t]*(|[#;].*|\[[A-Za-z][A-Za-z0-9-]*\]|[A-Za-z][A-Za-z0-9]*[ \t]*=.*)")
ENV_LINE = re.compile(r"|#.*|[A-Za-z_][A-Za-z0-9_]*=.*")


@dataclass
class Facts:
    """What compile may take from the live world: node capacity, where apps run now, health."""

    capacity: Mapping[str, NodeCapacity] = field(default_factory=dict)
    placements: Mapping[str, frozenset[str]] = field(default_factory=dict)  # app → nodes (sticky)
    unhealthy: frozenset[tuple[str, str]] = frozenset()  # (app, node) pairs left out of upstreams


@dataclass
class DesiredState:
    """What the repo declares, compiled: each node's resources, where each app runs, at which version."""

    nodes: dict[str, r.NodeDesired]
    placements: dict[str, list[str]]  # app → node names
    versions: dict[str, dict[str, str]]  # app → node → version
    # What compile read beside the repo's files: each secret file ("file:PATH") and variable ("env:NAME")
    # with the sha256 of its value, so a kept compile (funops/cache/compiled.py) can tell it changed.
    inputs: dict[str, str] = field(default_factory=dict)


def compile_project(project: Project, facts: Facts | None = None) -> DesiredState:
    return _Compiler(project, facts or Facts()).run()


def compile_ingresses(project: Project, facts: Facts, base: DesiredState) -> DesiredState:
    """Only the ingresses' resources, their upstreams from `base` (this project compiled with the
    same placements): what a drain renders for each set of endpoints marked down. `facts.unhealthy`
    feeds the upstreams alone, so the apps' files need not be rendered again for each set."""
    compiler = _Compiler(project, facts)
    compiler.state.placements, compiler.state.versions = base.placements, base.versions
    return compiler.ingresses()


def compile_with_facts(project: Project, facts: Facts, without: DesiredState) -> DesiredState:
    """The compile with live facts, reusing `without` (this project compiled with no facts, perhaps
    scoped to some apps) when the facts change nothing in it: every app placed on the same nodes and
    no backend down. Placement and the down backends are all that facts feed, so a no-op plan
    renders every template once."""
    settings = project.settings.placement
    unmoved = all(
        place(app, project.nodes, settings, facts.capacity, facts.placements.get(name, frozenset()))
        == without.placements.get(name)
        for name, app in project.apps.items()
        if app_type(app).runs
    )
    return without if unmoved and not facts.unhealthy else compile_project(project, facts)


def input_digest(value: str) -> str:
    """The digest `DesiredState.inputs` keeps of a secret's value (in memory and in the 0600 cache
    beside the compiled state, which holds the value itself)."""
    import hashlib

    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def env_path(app: str) -> str:
    return f"{APPS_DIR}/{app}.env"


class _Compiler:
    def __init__(self, project: Project, facts: Facts) -> None:
        self.project = project
        self.facts = facts
        from .render import Renderer  # jinja2: only when something is compiled (not from the cache)

        self.renderer = Renderer(project.source)
        self.problems: list[Problem] = []
        self._artifacts: dict[tuple[str, str], r.Resource | None] = {}
        self.state = DesiredState(
            nodes={name: r.NodeDesired(node) for name, node in sorted(project.nodes.items())},
            placements={},
            versions={},
        )

    def run(self) -> DesiredState:
        for _, app in sorted(self.project.apps.items()):
            if app_type(app).runs:
                self._app(app)
        return self.ingresses()

    def ingresses(self) -> DesiredState:
        for _, ingress in sorted(self.project.ingresses.items()):
            self._ingress(ingress)
        if self.problems:
            raise InputError(self.problems)
        for desired in self.state.nodes.values():
            desired.sort()
        return self.state

    # ---- apps -------------------------------------------------------------------------------

    def _app(self, app: Application) -> None:
        name = app.metadata.name
        nodes = place(
            app,
            self.project.nodes,
            self.project.settings.placement,
            self.facts.capacity,
            self.facts.placements.get(name, frozenset()),
        )
        release = self.project.release_for(name)
        versions = assign_versions(nodes, wanted_versions(app, release))
        self.state.placements[name] = nodes
        self.state.versions[name] = versions
        for node_name in nodes:
            self._app_on_node(app, self.project.nodes[node_name], versions[node_name])

    def _context(self, app: Application, node: Node, version: str) -> dict[str, Any]:
        release = self.project.release_for(app.metadata.name)
        artifact = self._artifact(app)
        return {
            "project": {"name": self.project.settings.project},
            "node": _node_context(node),
            "app": {
                **app.spec.model_dump(exclude={"env", "config_files", "selector", "backends"}),
                "name": app.metadata.name,
                "labels": app.metadata.labels,
            },
            "release": {
                "name": release.metadata.name if release else None,
                "version": version,
                "artifact": artifact.model_dump(exclude_none=True) if artifact else None,
                # Where the artifact is unpacked (the command and config templates point there);
                # absent without one, so a template using it fails to render instead of saying "None".
                **({"dir": artifacts.release_dir(app.metadata.name, version)} if artifact else {}),
            },
        }

    def _artifact(self, app: Application) -> Artifact | None:
        release = self.project.release_for(app.metadata.name)
        return (release.spec.artifact if release else None) or app.spec.artifact

    def _artifact_resource(self, app: Application, version: str, restart: str) -> r.Resource | None:
        """The app's artifact at `version` (built once per version: every node gets the same)."""
        artifact, name = self._artifact(app), app.metadata.name
        if artifact is None:
            return None
        if (name, version) in self._artifacts:
            return self._artifacts[(name, version)]
        release = self.project.release_for(name)
        from_release = release is not None and release.spec.artifact is not None
        where = self.project.origin(
            *(("Release", release.metadata.name) if release and from_release else ("Application", name))
        )
        res, error, runs_artifacts = None, None, app_type(app).artifact
        if not runs_artifacts:
            error = f"not valid for a {app.spec.type} app"
        else:
            keep = self.project.settings.keep_releases
            res, error = artifacts.resource(name, version, artifact, self.project.source, keep, restart)
        if error is not None:
            field = (
                ("spec", "artifact") if res is None and not runs_artifacts else ("spec", "artifact", "path")
            )
            self.problems.append(where.problem(field, error))
        self._artifacts[(name, version)] = res
        return res

    def _app_on_node(self, app: Application, node: Node, version: str) -> None:
        """What every app type has (artifact, directories, config files, env file), then what its type
        runs it with (funops/apptypes)."""
        desired = self.state.nodes[node.name]
        name = app.metadata.name
        this_type = app_type(app)
        owner = Owner.of_app(name)
        ctx = self._context(app, node, version)
        where = self.project.origin("Application", name)
        restart = this_type.restart(name)
        artifact = self._artifact_resource(app, version, restart)
        if artifact is not None:
            desired.resources.append(artifact)
        desired.resources += self._directories(app, owner, desired)

        for i, cfg in enumerate(app.spec.config_files):
            path = ("spec", "configFiles", i)
            content, origin = self._config_content(cfg.content, cfg.source, ctx, path, where)
            if content is not None:
                desired.resources.append(
                    _file(
                        cfg.path,
                        content,
                        owner,
                        cfg.mode,
                        cfg.owner,
                        cfg.group,
                        (restart,),
                        template=origin,
                        diff=cfg.diff,
                    )
                )

        env, secret_keys = self._env(app, ctx)
        env_file = env_path(name) if env else None
        if env_file:
            template = this_type.env_template
            content = self._render(template, where, ("spec", "env"), **ctx, env=sorted(env.items()))
            content = self._structured(content, template, ENV_LINE, where, ("spec", "env"))
            if content is not None:
                data = content.encode()
                # A container reads its env only when created: its restart handler recreates it.
                # (The env's digest is no part of the spec hash: that is printed and put on a label.)
                origin = self._origin(template)
                keys = tuple(sorted(secret_keys))
                desired.resources.append(
                    _file(
                        env_file,
                        data,
                        owner,
                        "0600",
                        "root",
                        "root",
                        (restart,),
                        bool(keys),
                        template=origin,
                        secret_keys=keys,
                    )
                )

        release = self.project.release_for(name)
        build = _AppBuild(self, app, node, version, release, owner, restart, env_file, ctx, where)
        desired.resources += this_type.resources(build)
        unit, container = this_type.placement(name)
        desired.apps[name] = r.AppPlacement(
            app=name,
            type=app.spec.type,
            version=version,
            release=release.metadata.name if release else None,
            port=app.spec.port,
            bind=_bind(node),
            health=app.spec.health_check,
            unit=unit,
            container=container,
            create_user=app.spec.user if app.spec.create_user else None,
        )

    def _directories(self, app: Application, owner: Owner, desired: r.NodeDesired) -> list[r.Resource]:
        """The app's `directories`: owned by its user unless they say otherwise. Apps may share one
        with the same attributes (load/checks.py refuses different ones): the first app by name owns
        its resource, since a node holds one resource per id."""
        taken = {res.id for res in desired.resources}
        return [
            r.Resource(
                id=rid,
                kind="directory",
                owner=owner,
                order=r.ORDER_DIRECTORY,
                desired=d.attributes(app.spec.user),
            )
            for d in app.spec.directories
            if (rid := ResourceId.of("directory", d.path)) not in taken
        ]

    def _env(self, app: Application, ctx: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
        """The app's environment: injected variables first, the app's own win. Secrets resolved;
        the keys whose values are secrets returned beside it."""
        where = self.project.origin("Application", app.metadata.name)
        env: dict[str, str] = {}
        secret: set[str] = set()
        for i, inject in enumerate(self.project.settings.inject_env):
            if app.spec.type in inject.types:
                path = ("injectEnv", i, "template")
                value = self._string(inject.template, ctx, self.project.settings_origin, path)
                if value is not None and self._one_line(value, self.project.settings_origin, path, ctx):
                    env[inject.name] = value
        for key, value in sorted(app.spec.env.items()):
            path = ("spec", "env", key)
            is_secret = isinstance(value, SecretRef)
            if isinstance(value, SecretRef):
                resolved = self._secret(value, where, path)
                secret.add(key)
            else:
                resolved = self._string(value, ctx, where, path)
            if resolved is None or not self._one_line(resolved, where, path, ctx, secret=is_secret):
                continue
            env[key] = resolved
        return env, secret

    def _one_line(self, value: str, where: Any, path: tuple, ctx: dict, secret: bool = False) -> bool:
        """A rendered value bound for one line of a file (env file, unit): checked after rendering,
        since a template (or a secret, or an injected value) can produce what the field may not hold."""
        message = single_line_problem(value, secret=secret)
        if message is None:
            return True
        app, node = ctx.get("app", {}).get("name"), ctx.get("node", {}).get("name")
        message += f" (app {app} on node {node})" if app and node else ""
        if where is None:
            self.problems.append(Problem("funops.yaml", None, ".".join(map(str, path)), message))
        else:
            self.problems.append(where.problem(path, message))
        return False

    def _exec_line(self, command: str, where: Any, ctx: dict) -> bool:
        """ExecStart= is one line; a trailing backslash would continue it onto the next directive."""
        path = ("spec", "command")
        if not self._one_line(command, where, path, ctx):
            return False
        if command.rstrip().endswith("\\"):
            self.problems.append(where.problem(path, f"{shown(command)} ends with a backslash"))
            return False
        return True

    def _structured(
        self, text: str | None, template: str, line_re: re.Pattern, where: Any, path: tuple
    ) -> str | None:
        """The rendered file still has the structure its format allows, whatever a (repo) template put
        in it: every line a comment, a section or a directive, none continued by a trailing backslash."""
        whole = text or ""
        lines = whole.split("\n")
        # The whole text at once first (a unit file of every node: ~0.1 s of a 2,000-node compile);
        # the loop below finds the line to name when something is wrong.
        if (
            bad_char(whole.replace("\n", " ")) is None
            and "\\\n" not in whole
            and not whole.endswith("\\")
            and all(map(line_re.fullmatch, lines))
        ):
            return text
        for number, line in enumerate(lines, 1):
            if not line_re.fullmatch(line) or line.endswith("\\") or bad_char(line) is not None:
                base = where.problem(path, "")
                message = (
                    f"rendered line {number} {shown(line)} is not a valid line of this file "
                    f"(rendering {base.file}:{base.line})"
                )
                self.problems.append(Problem(f"templates/{template}", None, "", message))
                return None
        return text

    def _secret(self, ref: SecretRef, where: Any, path: tuple) -> str | None:
        if ref.from_env is not None:
            value = os.environ.get(ref.from_env)
            if value is None:
                self.problems.append(
                    where.problem((*path, "fromEnv"), f"environment variable {ref.from_env} is not set")
                )
            else:
                self.state.inputs[f"env:{ref.from_env}"] = input_digest(value)
            return value
        written = Path(ref.from_file or "")
        file = written if written.is_absolute() else self.project.root / written
        try:
            text = read_secret_file(file)
            self.state.inputs[f"file:{file}"] = input_digest(text)
            return text.rstrip("\n")
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            message = f"cannot read secret file {written}: {why}"
            self.problems.append(where.problem((*path, "fromFile"), message))
            return None

    def _config_content(
        self, content: str | None, source: str | None, ctx: dict, path: tuple, where: Any
    ) -> tuple[bytes | None, TemplateOrigin | None]:
        """The file's bytes, and the template they came from when `source` is one of the repo's
        templates/ (rendered through the loader: it may include or extend other templates, and its
        errors name its own line)."""
        if content is not None:
            text = self._string(content, ctx, where, (*path, "content"))
            return (None if text is None else text.encode()), None
        source = source or ""
        from .render import REPO_TEMPLATE_DIR

        if source.startswith(f"{REPO_TEMPLATE_DIR}/") and source.endswith(".j2"):
            name = source.removeprefix(f"{REPO_TEMPLATE_DIR}/")
            text = self._render(name, where, (*path, "source"), **ctx)
            return (None, None) if text is None else (text.encode(), self._origin(name))
        data = self.project.source.read_bytes(source) or b""
        if not source.endswith(".j2"):
            return data, None
        try:
            template = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            message = f"{source} is not UTF-8 text (line {line}, byte {data[exc.start]:#04x})"
            self.problems.append(where.problem((*path, "source"), message))
            return None, None
        text = self._string(template, ctx, where, (*path, "source"))
        return (None if text is None else text.encode()), None

    # ---- ingress ----------------------------------------------------------------------------

    def _ingress(self, ingress: Ingress) -> None:
        name = ingress.metadata.name
        spec = ingress.spec
        owner = Owner.of_ingress(name)
        where = self.project.origin("Ingress", name)
        upstreams, rules = self._upstreams(ingress)
        tls_files = None
        tls_content: list[tuple[str, bytes, str, bool]] = []
        cert = self._certificate(ingress)
        if spec.tls and spec.tls.certificate_ref:
            ref = spec.tls.certificate_ref
            tls_files = {"certificate": f"{current(ref)}/fullchain.pem", "key": f"{current(ref)}/privkey.pem"}
        elif spec.tls:
            cert_pem = self.project.source.read_bytes(spec.tls.certificate or "") or b""
            key = self._secret(spec.tls.key, where, ("spec", "tls", "key")) if spec.tls.key else None
            tls_files = {"certificate": f"{TLS_DIR}/{name}.crt", "key": f"{TLS_DIR}/{name}.key"}
            tls_content = [(tls_files["certificate"], cert_pem, "0644", False)]
            if spec.tls.chain:  # the issuer chain nginx verifies OCSP responses with
                tls_files["chain"] = f"{TLS_DIR}/{name}.chain.crt"
                chain = self.project.source.read_bytes(spec.tls.chain) or b""
                tls_content.append((tls_files["chain"], chain, "0644", False))
            if key is not None:
                tls_content.append((tls_files["key"], (key + "\n").encode(), "0600", True))
        for node in sorted(self.project.nodes.values(), key=lambda n: n.name):
            if not node.matches(spec.selector.match_labels, spec.selector.nodes):
                continue
            desired = self.state.nodes[node.name]
            if cert is not None and desired.resource(cert.id) is None:
                desired.resources.append(cert)
            for path, data, mode, secret in tls_content:
                desired.resources.append(
                    _file(path, data, owner, mode, "root", "root", (r.NGINX_RELOAD,), secret)
                )
            text = self._render(
                "nginx/site.conf.j2",
                where,
                ("spec",),
                project={"name": self.project.settings.project},
                node=_node_context(node),
                ingress={**spec.model_dump(), "name": name},
                upstreams=upstreams,
                rules=rules,
                tls=tls_files,
                acme_challenge=CHALLENGE_ROOT if self._http01(ingress) else None,
                listen=f"{node.bind_address}:" if node.bind_address else "",
            )
            if text is not None:
                desired.resources.append(
                    _file(
                        f"{NGINX_DIR}/funops-{name}.conf",
                        text.encode(),
                        owner,
                        "0644",
                        "root",
                        "root",
                        (r.NGINX_RELOAD,),
                        order=r.ORDER_NGINX,
                        routes=tuple(sorted({self.project.services[x.service].spec.app for x in spec.rules})),
                        template=self._origin("nginx/site.conf.j2"),
                    )
                )

    def _certificate(self, ingress: Ingress) -> r.Resource | None:
        """The Certificate the ingress serves (tls.certificateRef), as a resource of each of its nodes.
        Its serial is the fleet's decision, made once the nodes are gathered (funops/certificates.py)."""
        ref = ingress.spec.tls.certificate_ref if ingress.spec.tls else None
        cert = self.project.certificates.get(ref or "")
        if cert is None:
            return None
        return r.Resource(
            id=ResourceId.of("cert", ref or ""),
            kind="cert",
            owner=Owner.of_ingress(ingress.metadata.name),
            order=r.ORDER_CERT,
            desired={"serial": NEW, "domains": sorted(cert.spec.domains)},
            run_spec={"keep": max(2, self.project.settings.keep_releases)},
        )

    def _http01(self, ingress: Ingress) -> bool:
        ref = ingress.spec.tls.certificate_ref if ingress.spec.tls else None
        cert = self.project.certificates.get(ref or "")
        return cert is not None and cert.spec.challenge == "http-01"

    def _upstreams(self, ingress: Ingress) -> tuple[list[dict], list[dict]]:
        """Static upstreams from the endpoints of each service: sorted, weighted by
        the canary split, unhealthy ones marked down; all down → keep them all, or answer 503."""
        name = ingress.metadata.name
        upstreams: dict[str, dict] = {}
        rules = []
        for rule in sorted(ingress.spec.rules, key=lambda x: x.path):
            svc = self.project.services[rule.service]
            upstream = f"{name}__{svc.metadata.name}".replace("-", "_")
            if upstream not in upstreams:
                upstreams[upstream] = {
                    "name": upstream,
                    "servers": self._endpoints(svc.spec.app, svc.spec.port),
                }
            servers = upstreams[upstream]["servers"]
            unavailable = bool(servers) and all(s["down"] for s in servers)
            if unavailable and ingress.spec.when_all_unhealthy == "keep":
                for s in servers:
                    s["down"] = False
                unavailable = False
            if unavailable:
                upstreams[upstream]["servers"] = []
            rules.append(
                {
                    "path": rule.path,
                    "upstream": upstream,
                    "strip_prefix": rule.strip_prefix,
                    # `rewrite` on the captured rest, then proxy_pass without a URI: nginx does not
                    # decode and re-normalise the path (`proxy_pass http://up/;` would: %2F..%2F).
                    "strip_regex": "^" + rule.path.rstrip("/").replace(".", "\\.") + "/?(.*)$",
                    "unavailable": unavailable,
                }
            )
        return [upstreams[k] for k in sorted(upstreams)], rules

    def _endpoints(self, app_name: str, port: int | None) -> list[dict]:
        app = self.project.apps[app_name]
        fixed = app_type(app).endpoints(app.spec)
        if fixed is not None:
            return fixed
        port = port or app.spec.port
        versions = self.state.versions.get(app_name, {})
        percent = {v.version: v.percent for v in wanted_versions(app, self.project.release_for(app_name))}
        per_version: dict[str, int] = {}
        for version in versions.values():
            per_version[version] = per_version.get(version, 0) + 1
        raw = {v: percent.get(v, 0) * 100 // n for v, n in per_version.items()}
        divisor = 0
        for w in raw.values():
            divisor = gcd(divisor, w)
        servers = []
        for node_name, version in sorted(versions.items()):
            node = self.project.nodes[node_name]
            servers.append(
                {
                    "address": _bind(node) if node.bind_address else node.address,
                    "port": port,
                    "weight": max(1, raw[version] // (divisor or 1)),
                    "down": (app_name, node_name) in self.facts.unhealthy,
                    "node": node_name,
                }
            )
        return servers

    # ---- rendering with located errors --------------------------------------------------------

    def _render(self, template: str, where: Any, path: tuple, **ctx: Any) -> str | None:
        try:
            return self.renderer.render(template, **ctx)
        except template_errors() as exc:
            self.problems.append(_template_problem(exc, template, where, path))
            return None

    def _origin(self, template: str) -> TemplateOrigin | None:
        try:
            return self.renderer.origin(template)
        except _jinja2().TemplateError:  # it failed to render: the problem is reported already
            return None

    def _render_json(self, template: str, where: Any, **ctx: Any) -> dict | None:
        text = self._render(template, where, ("spec",), **ctx)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.problems.append(
                Problem(
                    _template_path(self._origin(template), template),
                    exc.lineno,
                    "",
                    f"not valid JSON: {exc.msg}",
                )
            )
            return None

    def _string(self, text: str, ctx: dict, where: Any, path: tuple) -> str | None:
        try:
            return self.renderer.render_string(text, **ctx)
        except template_errors() as exc:
            app, node = ctx.get("app", {}).get("name"), ctx.get("node", {}).get("name")
            message = _jinja_message(exc) + (f" (app {app} on node {node})" if app and node else "")
            if where is None:
                self.problems.append(Problem("funops.yaml", None, ".".join(map(str, path)), message))
            else:
                self.problems.append(where.problem(path, message))
            return None


@dataclass
class _AppBuild:
    """One app on one node, for its type's `resources` (funops/apptypes/base.py, AppBuild): the
    compiler's rendering, with problems located at the app's manifest."""

    compiler: _Compiler
    app: Application
    node: Node
    version: str
    release: Release | None
    owner: Owner
    restart: Handler
    env_file: str | None
    ctx: dict[str, Any]
    where: Origin

    def render(self, template: str, path: tuple, **extra: Any) -> str | None:
        return self.compiler._render(template, self.where, path, **self.ctx, **extra)

    def render_json(self, template: str, **extra: Any) -> dict | None:
        return self.compiler._render_json(template, self.where, **self.ctx, **extra)

    def unit_text(self, template: str, path: tuple, **extra: Any) -> str | None:
        text = self.render(template, path, **extra)
        return self.compiler._structured(text or None, template, UNIT_LINE, self.where, path)

    def string(self, text: str, path: tuple) -> str | None:
        return self.compiler._string(text, self.ctx, self.where, path)

    def exec_line(self, command: str) -> bool:
        return self.compiler._exec_line(command, self.where, self.ctx)

    def origin(self, template: str) -> TemplateOrigin | None:
        return self.compiler._origin(template)

    def file(
        self, path: str, data: bytes, handlers: tuple[str, ...], order: int, template: TemplateOrigin | None
    ) -> r.Resource:
        return _file(path, data, self.owner, "0644", "root", "root", handlers, order=order, template=template)


def template_errors() -> tuple[type[BaseException], ...]:
    """What rendering a user's template may raise: jinja2's errors (the sandbox's SecurityError among
    them) and the plain Python errors of expressions such as `{{ 1 / 0 }}` or `{{ "a" + 1 }}` — bad
    input, not bugs. (A function: an `except` evaluates it only when something was raised, so
    importing this module does not import jinja2.)"""
    return (
        _jinja2().TemplateError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
        AttributeError,
        RecursionError,
    )


def _jinja2() -> Any:
    import jinja2

    return jinja2


def _file(
    path: str,
    data: bytes,
    owner: str,
    mode: str,
    user: str,
    group: str,
    handlers: tuple[str, ...] = (),
    secret: bool = False,
    order: int = r.ORDER_FILE,
    routes: tuple[str, ...] = (),
    template: TemplateOrigin | None = None,
    secret_keys: tuple[str, ...] | None = None,
    diff: bool = True,
) -> r.Resource:
    return r.Resource(
        id=ResourceId.of("file", path),
        kind="file",
        owner=owner,
        order=order,
        handlers=handlers,
        secret=secret,
        desired={"sha256": r.sha256(data), "mode": mode.rjust(4, "0"), "owner": user, "group": group},
        content=data,
        routes=routes,
        template=template,
        secret_keys=secret_keys,
        diff=diff,
    )


def _bind(node: Node) -> str:
    return node.bind_address or "0.0.0.0"


def _node_context(node: Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "address": node.address,
        "bind": _bind(node),
        "labels": node.labels,
        "vars": node.vars,
    }


def _jinja_message(exc: Exception) -> str:
    jinja2 = _jinja2()
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"template refused by the sandbox: {exc}"
    if isinstance(exc, jinja2.TemplateNotFound):  # its message is the bare name
        return f"template error: template not found: {exc.name}"
    if isinstance(exc, jinja2.TemplateError):
        return f"template error: {exc.message or exc}"
    return f"template error: {type(exc).__name__}: {exc}"


def _template_path(origin: TemplateOrigin | None, template: str) -> str:
    from .render import REPO_TEMPLATE_DIR

    return origin.path if origin else f"{REPO_TEMPLATE_DIR}/{template}"


def _template_problem(exc: Exception, template: str, where: Any, path: tuple) -> Problem:
    """A failing bundled or repo template: name the template file and line the error is in (a repo
    template, or the bundled one it extends) and the manifest being rendered."""
    from .render import REPO_TEMPLATE_DIR, template_location

    file, line = template_location(exc)
    base = where.problem(path, "")
    return Problem(
        file or f"{REPO_TEMPLATE_DIR}/{template}",
        line,
        "",
        f"{_jinja_message(exc)} (rendering {base.file}:{base.line})",
    )
