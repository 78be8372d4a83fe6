"""`type: proxy`: funops runs nothing; the app only gives the ingresses routing to it fixed backends
(servers funops does not manage)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ..model.common import FieldError, Port, Strict, pattern
from .base import AppType

if TYPE_CHECKING:
    from .base import AppSpec


class Backend(Strict):
    address: Annotated[str, Field(pattern=pattern(r"^[A-Za-z0-9.\-:\[\]]+$", "a host name or IP address"))]
    """Host name or IP address of the server."""
    port: Port
    """The server's port."""
    weight: Annotated[int, Field(ge=1, le=1000)] = 1
    """The server's share of the requests, as an nginx weight (default 1)."""


class ProxyFields(Strict):
    backends: list[Backend] = []
    """The servers ingresses route this app's requests to (funops does not manage them); proxy apps only."""


class Proxy(AppType):
    name = "proxy"
    fields = ProxyFields
    refused = ("command", "image", "volumes", "selector", "replicas", "config_files", "env", "user",
               "hardening", "cap_add", "create_user", "hardening_overrides", "artifact", "directories",
               "schedule", "persistent", "randomized_delay")  # fmt: skip
    runs = False

    def check(self, spec: AppSpec) -> None:
        if not spec.backends:
            raise FieldError(("backends",), "a proxy app needs backends")

    def endpoints(self, spec: AppSpec) -> list[dict]:
        return sorted(
            (
                {"address": b.address, "port": b.port, "weight": b.weight, "down": False}
                for b in spec.backends
            ),
            key=lambda s: (s["address"], s["port"]),
        )


TYPE = Proxy()
