"""`evoplastic estimate`: lifetimes counted from the config by hand, a real (short) measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoplastic import config as cfglib
from evoplastic import estimate
from evoplastic.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_lifetimes_per_run_by_hand() -> None:
    # quickstart: 160 genomes x 1 repeat, 4 tasks until generation 1,500 then 8 (the curriculum's 16
    # from 5,000 is never reached); 2,400 generations; 512 validation tasks every 100
    assert estimate.lifetimes_per_run(cfglib.load(ROOT / "experiments/quickstart.yaml")) == (
        160 * 8, (1500 * 4 + 900 * 8) * 160 + (2400 // 100 + 1) * 512)
    # the paper's curriculum: 2 tasks until 4,000, 4 until 8,000, then 8; 360 genomes x 4 repeats
    paper = cfglib.load(ROOT / "experiments/paper/decprnn-postdn-15.yaml")
    assert estimate.lifetimes_per_run(paper) == (360 * 8 * 4, (2 * 4000 + 4 * 4000 + 8 * 22000) * 360 * 4
                                                 + 301 * 1024)


def test_measure_and_extrapolate(capsys: pytest.CaptureFixture) -> None:
    cfg = cfglib.load(ROOT / "experiments/smoke.yaml", ["model.hidden=16", "workers.batch=16"])
    s_life, steps, done, spent = estimate.measure(cfg, seconds=0.05)
    assert done >= 3 * 16 and done % 16 == 0 and 0 < s_life <= spent / done  # the fastest of >= 3 calls
    assert 3 <= steps <= 3 * 200  # 3 rollouts of 1..200 agent-steps each
    assert main(["estimate", str(ROOT / "experiments/smoke.yaml"), "--workers", "4", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "with 4 workers" in out and "agent-steps per lifetime" in out and "whole run" in out
