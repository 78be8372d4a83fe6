"""Nginx sites and upstreams: files whose change owes `reload:nginx`, written only after every app the
node touched is healthy, then `nginx -t`, then the reload.

A site is a file on disk (its id stays `file:<path>`, its facts are the file kind's); what is its
own is when and how it lands: if the test fails (or anything before the reload), the files written
are put back from their backups, so nginx keeps serving the old config.
"""

from __future__ import annotations

from ..resources import NGINX_RELOAD, Resource
from ..tasks import model as m
from .base import GatedGroup, NodeWork

NODE_HANDLERS = {NGINX_RELOAD: 3}  # after every restart: upstreams point at healthy instances


def is_site(res: Resource) -> bool:
    return NGINX_RELOAD in res.handlers


def gated(work: NodeWork, sites: list[Resource], write: type, restore: type) -> GatedGroup | None:
    """`write(res)` / `restore(res)`: the file kind's tasks for one site."""
    if not sites and NGINX_RELOAD not in work.handlers:
        return None
    writes = [write(res) for res in sites]
    return GatedGroup(
        tasks=[*writes, m.NginxTest(), m.NginxReload()],
        undo=[restore(res) for res in sites],
        resources=sites,
        handler=NGINX_RELOAD,
    )
