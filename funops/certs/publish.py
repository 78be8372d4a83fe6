"""Certificates in pull mode: `funops publish` (in CI) does what apply's ACME phase does — reads what
the edge nodes serve (through their agents: a read, which a pull-mode agent serves), orders what is
due, and puts certificate and key into the resources of each edge node's bundle, which is sealed to
that node alone. Pull nodes never talk to the CA.

A pull-mode agent takes no pushed writes, so HTTP-01's tokens cannot be placed on it: a certificate
served by pull nodes uses DNS-01 (refused otherwise, naming the node).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import FunopsError
from ..transports import Transport
from .phase import Order, obtain

if TYPE_CHECKING:
    from ..compile.compiler import DesiredState
    from ..load.project import Project


def certificates_for_publish(
    project: Project,
    desired: DesiredState,
    names: list[str],
    connect: Callable[[str], Transport] | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
    order: Order | None = None,
) -> None:
    """Fill the certificate resources of the published nodes `names` in `desired` (in place)."""
    from ..plan.planner import make_plan

    holders = [n for n in names if any(r.kind == "cert" for r in desired.nodes[n].resources)]
    if not holders:
        return
    for n in holders:
        for res in desired.nodes[n].resources:
            cert = project.certificates.get(res.name) if res.kind == "cert" else None
            if cert is not None and cert.spec.challenge != "dns-01":
                raise FunopsError(
                    f"certificate {res.name}: {n} is in pull mode, where HTTP-01 tokens cannot be placed "
                    "(its agent takes no pushed writes): use challenge: dns-01 for it"
                )
    if connect is None:
        from ..transports import Connections

        connections = Connections(project.nodes, project.settings, project.root)
        try:
            return certificates_for_publish(project, desired, names, connections, emit, order)
        finally:
            connections.close()
    plan = make_plan(project, holders, connect)
    unreachable = sorted(n for n in holders if not plan.gathered[n].reachable)
    if unreachable:
        raise FunopsError(
            f"cannot read the certificates {', '.join(unreachable)} serve (through their agents): "
            f"{plan.gathered[unreachable[0]].error}"
        )
    obtain(plan, connect, emit or (lambda e: None), order)
    for n in holders:
        fresh = {r.id: r for r in plan.desired.nodes[n].resources if r.kind == "cert"}
        desired.nodes[n].resources = [fresh.get(r.id, r) for r in desired.nodes[n].resources]
