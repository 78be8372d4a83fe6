"""Fixtures for tests against the lab's real nodes (see lab/README.md).

`lab` (session): the lab with FUNOPS_LAB_NODES nodes (default 3), brought up once per session and
torn down at the end unless FUNOPS_LAB_KEEP=1 or it was already up before the session started.
No docker engine: the tests fail when FUNOPS_REQUIRE_LAB=1 (`make test`), else they are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lab as labkit
from lab import Lab, LabError
from lab import acme as lab_acme
from lab import prometheus as lab_prometheus

HERE = Path(__file__).resolve().parent


# The lab files that take longest (their tests' applies and waits; check with `--durations`), first: under
# pytest-xdist (`--dist loadfile --no-loadscope-reorder` hands files out in collection order) they
# start first, so that none starts last and runs alone; the unit tests fill the workers in between.
LONGEST_FIRST = (
    "test_converge.py",
    "test_releases.py",
    "test_pull.py",
    "test_drift.py",
    "test_zero_downtime.py",
    "test_hostile_runtime.py",
    "test_agent.py",
    "test_smoke.py",
    "test_acme.py",
    "test_pull_install.py",
)


def _handed_out(item: pytest.Item) -> tuple[int, int]:
    """Where a test's file goes in the workers' queue: the LONGEST_FIRST lab files, the other lab
    files, then the rest (a stable sort keeps each file's tests in their order)."""
    path = Path(str(item.fspath))
    if HERE not in path.parents:
        return (2, 0)
    return (0, LONGEST_FIRST.index(path.name)) if path.name in LONGEST_FIRST else (1, 0)


def lab_node_count() -> int:
    return int(os.environ.get("FUNOPS_LAB_NODES", "3"))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a serial run keeps the collection's order
        items.sort(key=_handed_out)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`lab_node` runs a test once per node: node1..nodeN."""
    if "lab_node" in metafunc.fixturenames:
        metafunc.parametrize("lab_node", [f"node{k}" for k in range(1, lab_node_count() + 1)])


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if not labkit.engine_answers():
        reason = "no docker engine answers (run `make lab-host`, which starts one)"
        if os.environ.get("FUNOPS_REQUIRE_LAB") == "1":
            pytest.fail(f"the lab is required (FUNOPS_REQUIRE_LAB=1) but {reason}", pytrace=False)
        pytest.skip(f"lab tests need real nodes: {reason}")
    already_up = bool(labkit.current().nodes)
    try:
        the_lab = labkit.up(lab_node_count())
    except LabError as e:
        pytest.fail(f"the lab did not come up: {e}", pytrace=False)
    yield the_lab
    if os.environ.get("FUNOPS_LAB_KEEP") != "1" and not already_up:
        labkit.down()


@pytest.fixture(scope="session")
def acme_lab() -> Iterator[lab_acme.AcmeLab]:
    """The lab's ACME CA (pebble) and BIND for `lab.test` on 127.0.<slot>.250 (see lab/acme.py):
    directory URL, CA bundle, DNS server/port/zone/TSIG, `fetch_root()`. Needs no nodes; stopped at
    the end unless it was up before the session or FUNOPS_LAB_KEEP=1."""
    yield from _daemons("the lab CA", ("pebble", "named", "dig"), lab_acme)


@pytest.fixture(scope="session")
def prometheus_lab() -> Iterator[lab_prometheus.PrometheusLab]:
    """The lab's Prometheus, Pushgateway and Alertmanager on 127.0.<slot>.251 (see lab/prometheus.py),
    with the shipped alert rules at `for: 0s`. Needs no nodes; stopped at the end unless it was up
    before the session or FUNOPS_LAB_KEEP=1."""
    tools = ("prometheus", "prometheus-pushgateway", "prometheus-alertmanager")
    yield from _daemons("the lab Prometheus", tools, lab_prometheus)


def _daemons(what: str, tools: tuple[str, ...], module: Any) -> Iterator[Any]:
    """A lab module's daemons (`module.up()`/`current()`/`down()`), skipped (failed with
    FUNOPS_REQUIRE_LAB=1) when their tools are not installed."""
    import shutil

    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (run `make lab-host`)"
        if os.environ.get("FUNOPS_REQUIRE_LAB") == "1":
            pytest.fail(f"{what} is required (FUNOPS_REQUIRE_LAB=1) but {reason}", pytrace=False)
        pytest.skip(f"{what} needs {reason}")
    already_up = module.current() is not None
    try:
        info = module.up()
    except LabError as e:
        pytest.fail(f"{what} did not come up: {e}", pytrace=False)
    yield info
    if os.environ.get("FUNOPS_LAB_KEEP") != "1" and not already_up:
        module.down()
