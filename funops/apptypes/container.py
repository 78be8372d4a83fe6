"""`type: container`: the app's image run by docker as a container named after the app, from the run
spec its bundled template renders (`container/run.json.j2`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from .. import resources as r
from ..ids import Handler, ResourceId
from ..model.common import FieldError, Strict, pattern
from ..model.versions import ImageRef, image_repository
from .base import AppBuild, AppType
from .hardening import container_security

if TYPE_CHECKING:
    from .base import AppSpec

RUN_TEMPLATE = "container/run.json.j2"
Volume = Annotated[
    str, Field(pattern=pattern(r"^/[^:\s]+:/[^:\s]+(:ro|:rw)?$", "/host/path:/container/path[:ro]"))
]


class ContainerFields(Strict):
    image: ImageRef | None = None
    """The container image, such as registry:5000/team/app (its tag may give the version)."""
    volumes: list[Volume] = []
    """Bind mounts: /host/path:/container/path, optionally :ro or :rw."""
    cleanup_images: bool = False
    """Remove the app's images that no kept release needs (default false)."""
    pids_limit: Annotated[int, Field(ge=1, le=4194304)] = 1024
    """The most processes the container may run (docker --pids-limit, default 1024)."""
    read_only_rootfs: bool = False
    """Mount the container's root filesystem read-only, with a private /tmp (default false)."""


class Container(AppType):
    name = "container"
    fields = ContainerFields
    refused = ("command", "backends", "create_user", "hardening_overrides", "artifact", "schedule",
               "persistent", "randomized_delay")  # fmt: skip
    release_image = True
    version_field = ("spec", "image")  # its version may be the image's tag
    env_template = "env/docker.env.j2"

    def check(self, spec: AppSpec) -> None:
        if not spec.image:
            raise FieldError(("image",), "a container app needs an image")

    def restart(self, name: str) -> Handler:
        return Handler.restart("container", name)

    def resources(self, build: AppBuild) -> list[r.Resource]:
        app = build.app
        repo = (build.release or app).spec.image or app.spec.image
        image = f"{image_repository(repo or '')}:{build.version}"
        security = container_security(app.spec)
        spec = build.render_json(RUN_TEMPLATE, image=image, env_file=build.env_file, security=security)
        if spec is None:
            return []
        # Of the spec only (names, paths, image, limits): no secret material, so it may be printed,
        # put on a label and on docker's command line. The env file's digest is no part of it: the
        # restart handler recreates the container when the env changes (it reads it only when created).
        spec_hash = r.sha256(json.dumps({"spec": spec}, sort_keys=True).encode())[:16]
        spec["labels"]["funops.spec-hash"] = spec_hash
        return [
            r.Resource(
                id=ResourceId.of("container", app.metadata.name),
                kind="container",
                owner=build.owner,
                order=r.ORDER_CONTAINER,
                desired={"image": image, "specHash": spec_hash, "status": "running"},
                run_spec=spec,
                template=build.origin(RUN_TEMPLATE),
            )
        ]

    def placement(self, name: str) -> tuple[str | None, str | None]:
        return None, name

    def logs(self, name: str) -> tuple[tuple[str, ...], str | None]:
        """Docker keeps the logs (the container is named after the app)."""
        return (), name


TYPE = Container()
