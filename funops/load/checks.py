"""Cross-reference checks: between documents, between documents and nodes, and against the repo."""

from __future__ import annotations

from collections import defaultdict

from ..apptypes import REGISTRY, app_type
from ..errors import Problem
from ..model.canary import wanted_versions
from ..model.common import Selector
from ..model.placement import matching_nodes, place
from .project import Origin, Project
from .source import SourceError
from .suggest import did_you_mean


def check_references(project: Project) -> list[Problem]:
    problems: list[Problem] = []
    problems += _check_releases(project)
    problems += _check_apps(project)
    problems += _check_services(project)
    problems += _check_ingresses(project)
    problems += _check_certificates(project)
    if not problems:
        problems += _check_node_conflicts(project)
    return problems


def _check_selector(project: Project, kind: str, name: str, selector: Selector, path: tuple) -> list[Problem]:
    origin = project.origin(kind, name)
    problems = [
        origin.problem((*path, "nodes", i), f"unknown node {node!r}", did_you_mean(node, project.nodes))
        for i, node in enumerate(selector.nodes)
        if node not in project.nodes
    ]
    if not problems and not any(
        n.matches(selector.match_labels, selector.nodes) for n in project.nodes.values()
    ):
        problems.append(origin.problem(path, "selector matches no node of the inventory"))
    return problems


def _check_releases(project: Project) -> list[Problem]:
    problems = []
    seen: dict[str, str] = {}
    for name, release in sorted(project.releases.items()):
        origin = project.origin("Release", name)
        app = project.apps.get(release.spec.app)
        if app is None:
            hint = did_you_mean(release.spec.app, project.apps)
            problems.append(
                origin.problem(("spec", "app"), f"unknown Application {release.spec.app!r}", hint)
            )
            continue
        if release.spec.app in seen:
            problems.append(
                origin.problem(
                    ("spec", "app"),
                    f"app {release.spec.app!r} is already released by Release {seen[release.spec.app]!r}",
                )
            )
        seen[release.spec.app] = name
        if not app_type(app).runs:
            message = f"a {app.spec.type} app has no versions to release"
            problems.append(origin.problem(("spec", "app"), message))
        if release.spec.image and not app_type(app).release_image:
            problems.append(origin.problem(("spec", "image"), f"image is only valid for {_IMAGE_TYPES} apps"))
    return problems


# The app types whose Release may name an image ("container").
_IMAGE_TYPES = " and ".join(name for name, t in REGISTRY.items() if t.release_image)


def _check_apps(project: Project) -> list[Problem]:
    problems = []
    roots = project.settings.allowed_roots
    for name, app in sorted(project.apps.items()):
        origin = project.origin("Application", name)
        spec = app.spec
        if spec.selector is not None:
            problems += _check_selector(project, "Application", name, spec.selector, ("spec", "selector"))
            eligible = [n for n in matching_nodes(app, project.nodes) if not n.cordoned]
            if spec.replicas and len(eligible) < spec.replicas and not problems:
                problems.append(
                    origin.problem(
                        ("spec", "replicas"),
                        f"{spec.replicas} replicas wanted but only {len(eligible)} eligible node(s) match",
                    )
                )
        if app_type(app).runs and not wanted_versions(app, project.release_for(name)):
            field = app_type(app).version_field
            problems.append(
                origin.problem(
                    field, "no version: add a Release for this app, spec.version, or a tag to the image"
                )
            )
        for i, cfg in enumerate(spec.config_files):
            if not any(cfg.path == r or cfg.path.startswith(r.rstrip("/") + "/") for r in roots):
                problems.append(
                    origin.problem(
                        ("spec", "configFiles", i, "path"),
                        f"{cfg.path} is outside the allowed roots ({', '.join(roots)}); "
                        "see allowedRoots in funops.yaml",
                    )
                )
            owned = _funops_file(project, cfg.path)
            if owned:
                problems.append(
                    origin.problem(
                        ("spec", "configFiles", i, "path"),
                        f"{cfg.path} is funops's own file ({owned}): a config file may not replace it",
                    )
                )
            if cfg.source:
                problems += _repo_file(project, cfg.source, origin, ("spec", "configFiles", i, "source"))
        paths = [c.path for c in spec.config_files]
        for i, path in enumerate(paths):
            if path in paths[:i]:
                problems.append(origin.problem(("spec", "configFiles", i, "path"), f"{path} is listed twice"))
        problems += _check_directories(project, origin, [d.path for d in spec.directories])
    return problems


def _check_directories(project: Project, origin: Origin, paths: list[str]) -> list[Problem]:
    """An app's `directories` are chowned to it: only below an allowed root (never a root itself, such
    as /var/lib), never funops's own nor one holding funops's own files (/etc, /etc/funops)."""
    problems = []
    roots = project.settings.allowed_roots
    for i, path in enumerate(paths):
        field = ("spec", "directories", i, "path")
        if not any(path.startswith(r.rstrip("/") + "/") for r in roots):
            where = "an allowed root itself" if path in roots else "outside the allowed roots"
            message = f"{path} is {where} ({', '.join(roots)}): declare a directory below one"
            problems.append(origin.problem(field, message + "; see allowedRoots in funops.yaml"))
        owned = _funops_file(project, path) or _holds_funops_files(project, path)
        if owned:
            problems.append(origin.problem(field, f"{path} is funops's own ({owned}): an app may not own it"))
        if path in paths[:i]:
            problems.append(origin.problem(field, f"{path} is listed twice"))
    return problems


def _holds_funops_files(project: Project, path: str) -> str | None:
    """What of funops's own lies inside the directory `path` (an app owning it could replace it)."""
    from ..resources import APPS_DIR, NGINX_DIR, TLS_DIR, UNIT_DIR

    inside = path.rstrip("/") + "/"
    for root, what in (
        (project.settings.state_dir, "the state directory"),
        (APPS_DIR, "the apps' env files"),
        (TLS_DIR, "the ingresses' TLS files"),
        (UNIT_DIR, "the systemd units"),
        (NGINX_DIR, "the nginx sites"),
    ):
        if root == path.rstrip("/") or root.startswith(inside):
            return f"it holds {what}"
    return None


def _funops_file(project: Project, path: str) -> str | None:
    """What of funops's own a node path is (its state and lock, the env/TLS files and units and nginx
    sites it renders), or None. The per-node conflict check covers two config files with one path."""
    from ..resources import APPS_DIR, NGINX_DIR, TLS_DIR, UNIT_DIR, app_unit

    def under(root: str) -> bool:
        return path == root or path.startswith(root.rstrip("/") + "/")

    if under(project.settings.state_dir):
        return "the state directory, with the node's state and the apply lock"
    if under(APPS_DIR):
        return "the apps' env files"
    if under(TLS_DIR):
        return "the ingresses' TLS files"
    if path.startswith(f"{NGINX_DIR}/funops-"):
        return "an ingress's nginx site"
    if any(path == f"{UNIT_DIR}/{app_unit(name)}" for name in project.apps):
        return "an app's systemd unit"
    for name, app in project.apps.items():
        if path in (own := app_type(app).node_files(name)):
            return own[path]
    return None


def _repo_file(project: Project, path: str, origin: Origin, field: tuple) -> list[Problem]:
    """A file the manifest takes from the repo: present, regular, and inside the repo."""
    try:
        found = project.source.read_bytes(path) is not None
    except SourceError as exc:
        return [origin.problem(field, str(exc))]
    return [] if found else [origin.problem(field, f"{path} does not exist in the repo")]


def _check_services(project: Project) -> list[Problem]:
    problems = []
    for name, svc in sorted(project.services.items()):
        origin = project.origin("Service", name)
        app = project.apps.get(svc.spec.app)
        if app is None:
            hint = did_you_mean(svc.spec.app, project.apps)
            problems.append(origin.problem(("spec", "app"), f"unknown Application {svc.spec.app!r}", hint))
        elif app_type(app).unroutable:
            message = f"Application {svc.spec.app!r} {app_type(app).unroutable}"
            problems.append(origin.problem(("spec", "app"), message))
        elif app_type(app).runs and not (svc.spec.port or app.spec.port):
            problems.append(
                origin.problem(
                    ("spec", "port"),
                    f"no port: set spec.port here or spec.port on Application {app.metadata.name!r}",
                )
            )
    return problems


def _check_ingresses(project: Project) -> list[Problem]:
    problems = []
    domains: dict[str, str] = {}
    for name, ing in sorted(project.ingresses.items()):
        origin = project.origin("Ingress", name)
        spec = ing.spec
        problems += _check_selector(project, "Ingress", name, spec.selector, ("spec", "selector"))
        for i, rule in enumerate(spec.rules):
            if rule.service not in project.services:
                problems.append(
                    origin.problem(
                        ("spec", "rules", i, "service"),
                        f"unknown Service {rule.service!r}",
                        did_you_mean(rule.service, project.services),
                    )
                )
        for i, domain in enumerate(spec.domains):
            if domain in domains:
                problems.append(
                    origin.problem(
                        ("spec", "domains", i),
                        f"domain {domain!r} is already served by Ingress {domains[domain]!r} "
                        f"({project.origin('Ingress', domains[domain]).file})",
                    )
                )
            domains.setdefault(domain, name)
        for field in ("certificate", "chain"):
            path = spec.tls and getattr(spec.tls, field)
            if path:
                problems += _repo_file(project, path, origin, ("spec", "tls", field))
        if spec.http_port == spec.https_port:
            problems.append(origin.problem(("spec", "httpsPort"), "httpPort and httpsPort must differ"))
        problems += _check_certificate_ref(project, name)
    return problems


def _check_certificate_ref(project: Project, ingress: str) -> list[Problem]:
    """`tls.certificateRef` names a Certificate, and that certificate covers every domain the ingress
    serves (else browsers refuse the names left out)."""
    origin = project.origin("Ingress", ingress)
    spec = project.ingresses[ingress].spec
    ref = spec.tls.certificate_ref if spec.tls else None
    if ref is None:
        return []
    cert = project.certificates.get(ref)
    if cert is None:
        known = ", ".join(sorted(project.certificates)) or "none is declared"
        message = f"unknown Certificate {ref!r} ({known})"
        hint = did_you_mean(ref, project.certificates)
        return [origin.problem(("spec", "tls", "certificateRef"), message, hint)]
    return [
        origin.problem(
            ("spec", "domains", i),
            f"{domain} is not covered by Certificate {ref!r} (its domains: {', '.join(cert.spec.domains)})",
        )
        for i, domain in enumerate(spec.domains)
        if not cert.spec.covers(domain)
    ]


def _check_certificates(project: Project) -> list[Problem]:
    """A Certificate's issuer and DNS server are named in funops.yaml, and some Ingress serves it (its
    edge nodes are where it lives)."""
    problems = []
    acme = project.settings.acme
    used = {i.spec.tls.certificate_ref for i in project.ingresses.values() if i.spec.tls}
    for name, cert in sorted(project.certificates.items()):
        origin = project.origin("Certificate", name)
        spec = cert.spec
        if spec.issuer not in acme.issuers:
            known = ", ".join(sorted(acme.issuers)) or "funops.yaml has no acme.issuers"
            message = f"unknown ACME issuer {spec.issuer!r} ({known})"
            problems.append(
                origin.problem(("spec", "issuer"), message, did_you_mean(spec.issuer, acme.issuers))
            )
        if spec.dns is not None and spec.dns not in acme.dns:
            known = ", ".join(sorted(acme.dns)) or "funops.yaml has no acme.dns"
            message = f"unknown DNS server {spec.dns!r} ({known})"
            problems.append(origin.problem(("spec", "dns"), message, did_you_mean(spec.dns, acme.dns)))
        if name not in used:
            problems.append(
                origin.problem(
                    ("metadata", "name"),
                    "no Ingress serves this Certificate (tls.certificateRef): it would live on no node",
                )
            )
    return problems


def _check_node_conflicts(project: Project) -> list[Problem]:
    """Two things claiming one port (or one file) on one node, after placement."""
    claims: dict[tuple[str, str], list[tuple[str, str, tuple]]] = defaultdict(list)
    for name, app in sorted(project.apps.items()):
        if not app_type(app).runs:
            continue
        for node in place(app, project.nodes, project.settings.placement):
            if app.spec.port:
                claims[(node, f"port {app.spec.port}")].append(("Application", name, ("spec", "port")))
            for i, cfg in enumerate(app.spec.config_files):
                claims[(node, f"file {cfg.path}")].append(
                    ("Application", name, ("spec", "configFiles", i, "path"))
                )
    for name, ing in sorted(project.ingresses.items()):
        for node in project.nodes.values():
            if node.matches(ing.spec.selector.match_labels, ing.spec.selector.nodes):
                claims[(node.name, f"port {ing.spec.http_port}")].append(
                    ("Ingress", name, ("spec", "httpPort"))
                )
                if ing.spec.tls:
                    claims[(node.name, f"port {ing.spec.https_port}")].append(
                        ("Ingress", name, ("spec", "httpsPort"))
                    )
    problems = _directory_conflicts(project)
    for (node, what), owners in sorted(claims.items()):
        # Ingresses share nginx's listening ports by design (server_name tells them apart).
        if len(owners) < 2 or all(kind == "Ingress" for kind, _, _ in owners):
            continue
        first_kind, first_name, first_path = owners[0]
        first = project.origin(first_kind, first_name).problem(first_path, "")
        for kind, name, path in owners[1:]:
            message = (
                f"{what} on node {node!r} is also claimed by {first_kind} {first_name!r} "
                f"({first.file}:{first.line})"
            )
            problems.append(project.origin(kind, name).problem(path, message))
    return problems


def _directory_conflicts(project: Project) -> list[Problem]:
    """Apps on one node may share a directory only when they want the same owner, group and mode (a
    node holds one of each); a directory is not one of their config files either."""
    wanted: dict[tuple[str, str], tuple[str, dict[str, str], tuple]] = {}
    files: dict[tuple[str, str], tuple[str, tuple]] = {}
    placed = [
        (n, app, place(app, project.nodes, project.settings.placement))
        for n, app in sorted(project.apps.items())
    ]
    for name, app, nodes in placed:
        for node in nodes:
            for i, cfg in enumerate(app.spec.config_files):
                files.setdefault((node, cfg.path), (name, ("spec", "configFiles", i, "path")))
    problems = []
    for name, app, nodes in placed:
        origin = project.origin("Application", name)
        for node in nodes:
            for i, directory in enumerate(app.spec.directories):
                path, field = directory.path, ("spec", "directories", i, "path")
                attributes = directory.attributes(app.spec.user)
                first = wanted.setdefault((node, path), (name, attributes, field))
                if (node, path) in files:
                    other, other_field = files[(node, path)]
                    at = project.origin("Application", other).problem(other_field, "")
                    message = (
                        f"directory {path} on node {node!r} is a config file of Application {other!r} "
                        f"({at.file}:{at.line})"
                    )
                    problems.append(origin.problem(field, message))
                elif first[1] != attributes:
                    at = project.origin("Application", first[0]).problem(first[2], "")
                    message = (
                        f"directory {path} on node {node!r} is also claimed by Application {first[0]!r} "
                        f"({at.file}:{at.line}) as {_shown(first[1])}; here it is {_shown(attributes)}"
                    )
                    problems.append(origin.problem(field, message))
    return problems


def _shown(attributes: dict[str, str]) -> str:
    return f"{attributes['owner']}:{attributes['group']} {attributes['mode']}"
