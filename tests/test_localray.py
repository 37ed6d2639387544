"""Local Ray sizing: the CPUs this process may use (affinity, cgroup quota); token auth stated, not announced."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from evoplastic import localray
from evoplastic import sweep as sweeplib
from evoplastic.cli import main


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


@pytest.mark.parametrize("files,expected", [
    ({}, 4),                                                        # no cgroup limit: the affinity mask
    ({"cpu.max": "max 100000\n"}, 4),                               # v2, unlimited
    ({"cpu.max": "150000 100000\n"}, 2),                            # v2, 1.5 CPUs -> 2
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu.max": "800000 100000\n"}, 4),                            # quota above the mask: the mask
    ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"}, 1),   # v1
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, 4),       # v1, unlimited
])
def test_usable_cpus(tmp_path: Path, four_cpus: None, files: dict[str, str], expected: int) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert localray.usable_cpus(tmp_path) == expected


def test_init_kwargs_local_and_cluster(monkeypatch: pytest.MonkeyPatch, four_cpus: None, tmp_path: Path) -> None:
    monkeypatch.setattr(localray, "CGROUP", tmp_path)
    # setenv first, so that monkeypatch records the variable's original state (often unset) and
    # restores it: init_kwargs writes os.environ directly, and a leaked value breaks later Ray tests
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setenv("RAY_worker_niceness", "7")
    monkeypatch.delenv("RAY_worker_niceness")
    monkeypatch.setitem(sys.modules, "ray", object())  # Ray already imported: too late to state the mode
    assert localray.init_kwargs(None) == {"num_cpus": 4} and "RAY_AUTH_MODE" not in os.environ
    monkeypatch.delitem(sys.modules, "ray")
    assert os.environ["RAY_worker_niceness"] == "0"  # workers at the driver's priority, even so
    monkeypatch.delenv("RAY_worker_niceness")
    assert localray.init_kwargs("auto") == {} and "RAY_AUTH_MODE" not in os.environ
    assert "RAY_worker_niceness" not in os.environ  # a cluster's own setting decides
    assert localray.init_kwargs(None) == {"num_cpus": 4} and os.environ["RAY_AUTH_MODE"] == "token"
    assert localray.init_kwargs(None, workers=6) == {"num_cpus": 6}  # asked for more: oversubscribe
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's choice stands
    monkeypatch.setenv("RAY_worker_niceness", "15")
    localray.init_kwargs(None)
    assert os.environ["RAY_AUTH_MODE"] == "disabled" and os.environ["RAY_worker_niceness"] == "15"


@pytest.mark.parametrize("argv,parallel,count", [([], 2, None), (["--workers", "4"], 2, 2),
                                                 (["--workers", "5", "--parallel", "1"], 1, 5)])
def test_sweep_workers_are_the_total(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str],
                                     parallel: int, count: int | None) -> None:
    seen = {}

    def fake_run(sw, out, argv, tensorboard=False):
        seen["sweep"] = sw
        (out / "summary.md").parent.mkdir(parents=True, exist_ok=True)
        (out / "summary.md").write_text("")
        return []

    monkeypatch.setattr(sweeplib, "run", fake_run)
    assert main(["sweep", "experiments/sweep-example.yaml", "--out", str(tmp_path / "s"), *argv]) == 0
    sw = seen["sweep"]
    assert sw.parallel == parallel and {p.config.workers.count for p in sw.points} == {count}
