"""A saved plan's drain table and certificate binding as data (plan/drainsites.py, plan/certorders.py);
the lab tests tests/lab/test_saved_plan_drains.py and test_saved_plan_certificates.py run them on
real nodes."""

from __future__ import annotations

import hashlib
import json

import pytest

from funops.kinds.base import GatedGroup
from funops.model.strategy import UpdateStrategy
from funops.plan.certorders import PLACEHOLDER_CHAIN, PLACEHOLDER_KEY, bind, placeholder
from funops.plan.drainsites import DrainTable, Site
from funops.plan.model import NodeProgram, Program
from funops.resources import Resource
from funops.state.node_state import ManagedResource
from funops.tasks import model as m

SITE = "/etc/nginx/conf.d/funops-site.conf"


def site(body: bytes) -> Site:
    return Site(
        f"file:{SITE}", hashlib.sha256(body).hexdigest(), m.DrainWrite(SITE, "0644", body, f"file:{SITE}")
    )


def table() -> DrainTable:
    up, down = site(b"server a;\n"), site(b"server a down;\n")
    return DrainTable(
        ingress=["edge"],
        variants={frozenset(): {"edge": [up]}, frozenset({("web", "n1")}): {"edge": [down]}},
        app_waits={"web": (8080, 5.0)},
        planned_sites={"edge": {SITE: up.sha256}},
        written={"edge": [SITE]},
        steps=[{"batch": 1, "step": "drain", "down": [["web", "n1"]]}],
    )


def test_the_table_travels_as_json_and_back() -> None:
    t = table()
    back = DrainTable.of_doc(json.loads(json.dumps(t.doc())))
    assert back.variants == t.variants and back.app_waits == t.app_waits and back.steps == t.steps
    assert len(t.doc()["files"]) == 2  # each site content once


def test_a_set_not_held_takes_the_smallest_held_superset_or_none() -> None:
    t = table()
    assert t.sites(frozenset({("web", "n1")})) == t.variants[frozenset({("web", "n1")})]
    assert t.sites(frozenset({("web", "n1"), ("web", "n2")})) is None  # nothing drains that much
    assert DrainTable.of_doc(t.doc()).sites(frozenset()) == {"edge": [site(b"server a;\n")]}


def test_a_site_whose_content_is_not_its_sha256_is_refused() -> None:
    doc = table().doc()
    doc["files"][0]["sha256"] = "0" * 64
    with pytest.raises(ValueError, match="does not match its sha256"):
        DrainTable.of_doc(doc)


def test_bind_puts_the_cas_serial_key_and_chain_where_the_placeholder_was() -> None:
    ph = placeholder("www")
    version, link = f"/etc/funops/certs/www/{ph}", "/etc/funops/certs/www/current"
    res = Resource(id="cert:www", kind="cert", owner="ingress/www", desired={"serial": ph}, order=0)
    node = NodeProgram(
        converge=True,
        changes=[
            m.WriteFile(f"{version}/fullchain.pem", "", "0644", "root", "root", None, PLACEHOLDER_CHAIN,
                        label=f"cert:www {ph} fullchain.pem"),
            m.WriteFile(f"{version}/privkey.pem", "", "0600", "root", "root", None, PLACEHOLDER_KEY,
                        label=f"cert:www {ph} privkey.pem"),
        ],
        gated=[GatedGroup(tasks=[m.PointLink(link, ph), m.NginxTest(), m.NginxReload()],
                          undo=[m.DeletePaths((link,))], resources=[res],
                          handler="reload:nginx")],
        managed={"cert:www": ManagedResource(owner="ingress/www", kind="cert", applied={"serial": ph})},
    )  # fmt: skip
    program = Program({"edge": node}, UpdateStrategy(), [["edge"]])
    key = b"-----BEGIN PRIVATE KEY-----\nREAL\n-----END PRIVATE KEY-----\n"
    chain = b"-----BEGIN CERTIFICATE-----\nREAL\n-----END CERTIFICATE-----\n"
    bind(program, ph, "abc123", key + chain)

    chain_task, key_task = node.changes
    assert (chain_task.path, chain_task.content) == ("/etc/funops/certs/www/abc123/fullchain.pem", chain)
    assert (key_task.path, key_task.content) == ("/etc/funops/certs/www/abc123/privkey.pem", key)
    assert ph not in chain_task.label + key_task.label
    assert node.gated[0].tasks[0] == m.PointLink(link, "abc123")
    assert node.gated[0].resources[0].desired["serial"] == "abc123"
    assert node.managed["cert:www"].applied == {"serial": "abc123"}
