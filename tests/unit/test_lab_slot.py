"""Lab slots: two labs on one host never share a name, an address, a label value or a directory."""

from __future__ import annotations

import pytest

from lab import config
from lab.config import LabError


def test_slot_1_keeps_the_historical_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNOPS_LAB_SLOT", raising=False)
    monkeypatch.delenv("FUNOPS_LAB_DIR", raising=False)
    assert (config.container_name(3), config.node_address(3)) == ("funops-lab-node3", "127.0.1.3")
    assert config.label_value() == "1"
    assert config.lab_dir() == (config.REPO_ROOT / ".lab").resolve()


def test_another_slot_has_its_own_names_addresses_label_and_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNOPS_LAB_SLOT", "2")
    monkeypatch.delenv("FUNOPS_LAB_DIR", raising=False)
    assert (config.container_name(3), config.node_address(3)) == ("funops-lab2-node3", "127.0.2.3")
    assert config.label_value() == "2"
    assert config.lab_dir() == (config.REPO_ROOT / ".lab2").resolve()


@pytest.mark.parametrize("bad", ["0", "256", "two", "-1"])
def test_a_bad_slot_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("FUNOPS_LAB_SLOT", bad)
    with pytest.raises(LabError, match="FUNOPS_LAB_SLOT"):
        config.node_address(1)


def test_each_pytest_worker_takes_its_own_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNOPS_LAB_SLOTS", raising=False)
    assert [config.worker_slot(f"gw{n}") for n in range(4)] == [1, 10, 11, 12]
    monkeypatch.setenv("FUNOPS_LAB_SLOTS", "5, 7")
    assert [config.worker_slot("gw0"), config.worker_slot("gw1")] == [5, 7]


@pytest.mark.parametrize(
    ("slots", "worker", "error"),
    [
        ("5,7", "gw2", "no lab slot for pytest worker gw2"),
        ("5,5", "gw0", "distinct"),
        ("5,x", "gw0", "1..255"),
    ],
)
def test_a_worker_without_a_slot_of_its_own_is_refused(
    monkeypatch: pytest.MonkeyPatch, slots: str, worker: str, error: str
) -> None:
    monkeypatch.setenv("FUNOPS_LAB_SLOTS", slots)
    with pytest.raises(LabError, match=error):
        config.worker_slot(worker)
