"""What a version of an app is and runs: its name, a container image, a systemd app's artifact. Shared
by the Release and the app types (funops/apptypes) that declare them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .common import FieldError, RepoPath, Strict, pattern

Version = Annotated[
    str,
    Field(
        pattern=pattern(
            r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$", "a version such as v1.2.3 (letters, digits, '._-')"
        )
    ),
]
ImageRef = Annotated[
    str,
    Field(
        pattern=pattern(
            r"^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$", "an image reference such as registry:5000/team/app"
        )
    ),
]


class Artifact(Strict):
    """What a systemd app runs (issue 15): fetched on the node from `url` and checked against
    `sha256`, or a file or directory of the repo (`path`) uploaded by funops. A `.tar`, `.tar.gz` or
    `.tgz` download is unpacked; any other file is placed as is, under its own name."""

    url: Annotated[str, Field(pattern=pattern(r"^https?://[^\s'\"\\]+$", "an http(s) URL"))] | None = None
    """Where the node downloads the artifact (http or https); needs sha256."""
    sha256: Annotated[str, Field(pattern=pattern(r"^[0-9a-f]{64}$", "64 lowercase hex digits"))] | None = None
    """The download's SHA-256 (64 lowercase hex digits), checked on the node."""
    path: RepoPath | None = None
    """A file or directory of the repo, uploaded by funops (its sha256 is computed: give none)."""

    @model_validator(mode="after")
    def _one_source(self) -> Artifact:
        if (self.url is None) == (self.path is None):
            raise ValueError("an artifact needs exactly one of url or path")
        if self.url is not None and self.sha256 is None:
            raise FieldError(("sha256",), "an artifact url needs its sha256 (checked on the node)")
        if self.path is not None and self.sha256 is not None:
            raise FieldError(("sha256",), "a path artifact's sha256 is computed from the repo: drop it")
        return self


def image_tag(image: str) -> str | None:
    """The tag of an image reference (`repo:tag`), not confusing a registry port with a tag."""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_repository(image: str) -> str:
    tag = image_tag(image)
    return image[: -len(tag) - 1] if tag else image
