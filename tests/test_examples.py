"""The examples run as written (a few generations) and print what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from evoplastic import genome as genome_io
from evoplastic.models import get_model

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    return subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True, text=True,
                          timeout=120).stdout


def test_es_loop() -> None:
    out = run("examples/es_loop.py", "2").splitlines()
    assert [line.split(":")[0] for line in out] == ["generation   0", "generation   1"]
    assert all("validation mazes" in line for line in out)


def test_watch_genome(tmp_path: Path) -> None:
    model = get_model("decprnn-postdn", 16)
    path = genome_io.save(tmp_path / "g.npz", np.zeros(model.n_gene, np.float32), model.id, 16, generation=7)
    out = run("examples/watch_genome.py", str(path), "maze9", "3")
    assert "saved at generation 7; task 3 of maze9" in out and out.count("\nrollout ") == 3
