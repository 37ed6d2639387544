"""The genomes shipped under genomes/ load, evaluate from a clean checkout, and score what
genomes/README.md's table says they score (every figure of each row is recomputed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENOMES = ROOT / "genomes"


def _ship_genome():
    spec = importlib.util.spec_from_file_location("ship_genome", ROOT / "scripts" / "ship_genome.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_rows() -> dict[str, str]:
    """genomes/README.md's table rows, keyed by the genome file they link."""
    rows = {}
    for line in (GENOMES / "README.md").read_text().splitlines():
        if line.startswith("| [") and "](" in line:
            rows[line.split("](", 1)[1].split(")", 1)[0]] = line.strip()
    return rows


def test_every_shipped_genome_has_a_row_and_every_row_a_genome():
    files = sorted(p.name for p in GENOMES.glob("*.npz"))
    assert files, "genomes/ ships no genome"
    assert sorted(_table_rows()) == files


@pytest.mark.parametrize("name", sorted(p.name for p in GENOMES.glob("*.npz")))
def test_shipped_genome_scores_what_the_table_says(name):
    ship = _ship_genome()
    assert ship.readme_row(GENOMES / name) == _table_rows()[name]


def test_training_record_sums_the_metrics(tmp_path):
    """lifetimes, agent-steps and seconds up to the genome's generation, against a hand-made run."""
    ship = _ship_genome()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text((ROOT / "experiments" / "tiny.yaml").read_text())
    from evoplastic import config as cfglib

    cfg = cfglib.load(run / "config.yaml")
    lines = ["generation,tasks,agent_steps,seconds", "0,,,"]
    lines += [f"{g},{2 + g % 2},{1000 * g},{0.5}" for g in range(1, 6)]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    rec = ship.training_record(run, 3)
    n = cfg.strategy.popsize * cfg.tasks.repeats
    assert rec["lifetimes"] == (3 + 2 + 3) * n
    assert rec["agent_steps"] == 1000 + 2000 + 3000
    assert rec["train_seconds"] == 1.5
    assert rec["generations_trained"] == 5
    with pytest.raises(SystemExit, match="ends at generation 5"):
        ship.training_record(run, 6)
