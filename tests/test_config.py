"""Experiment configs: strict, typed, one-line errors naming the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evoplastic import config as cfglib
from evoplastic.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_smoke_config_loads_with_its_values() -> None:
    cfg = cfglib.load(ROOT / "experiments" / "smoke.yaml")
    assert cfg.model.id == "decprnn-postdn" and cfg.strategy.popsize == 24
    assert cfg.tasks.schedule == ((0, 2), (6, 4))
    assert [cfg.tasks_at(g) for g in (0, 5, 6, 100)] == [2, 2, 4, 4]


def test_defaults_follow_spec_4() -> None:
    cfg = cfglib.from_dict({})
    assert (cfg.strategy.popsize, cfg.strategy.sigma0, cfg.strategy.init_std) == (360, 0.01, 0.05)
    assert [cfg.tasks_at(g) for g in (0, 3999, 4000, 7999, 8000)] == [2, 2, 4, 4, 8]
    assert cfg.validation.interval == 100 and cfg.validation.count == 1024


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    p = write(tmp_path, "strategy:\n  sigma_0: 0.01\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: strategy\.sigma_0: unknown key; did you mean 'sigma0'\?"):
        cfglib.load(p)
    with pytest.raises(ConfigError, match=r"^.*: modle: unknown key; did you mean 'model'\?$"):
        cfglib.load(write(tmp_path, "modle: {id: dnn}\n"))


@pytest.mark.parametrize("text, path, value", [
    ("strategy:\n  sigma0: 1e-3\n", "strategy.sigma0", 0.001),  # YAML 1.1 reads this as a string
    ("strategy:\n  sigma0: 1.0e3\n", "strategy.sigma0", 1000.0),
    ("strategy:\n  popsize: 1e1\n", "strategy.popsize", 10),  # a whole number, so an integer
    ("seed: 2E2\n", "seed", 200),
])
def test_scientific_notation_means_what_was_written(tmp_path: Path, text: str, path: str, value: float) -> None:
    cfg = cfglib.load(write(tmp_path, "name: t\n" + text))
    got = cfglib._get(cfg, path)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, message", [
    ("generations: ten\n", r"generations: expected an integer, got the string 'ten'"),
    ("generations: 2.5\n", r"generations: expected an integer, got 2.5"),
    ("seed: true\n", r"seed: expected an integer, got True"),
    ("model: dnn\n", r"model: expected a mapping, got 'dnn'"),
    ("tasks: {schedule: [[0, 2], [10]]}\n", r"tasks\.schedule\[1\]: expected a list of 2"),
    ("lifetime: {weights: 1}\n", r"lifetime\.weights: expected a list, got 1"),
])
def test_wrong_types(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfglib.load(write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ("tasks: {size: 8}\n", r"tasks\.size: maze size must be an odd integer >= 7, got 8"),
    ("tasks: {size: 5}\n", r"tasks\.size: maze size must be an odd integer >= 7, got 5"),
    ("tasks: {crowd_ratio: 1.5}\n", r"tasks\.crowd_ratio: must be in \[0, 1\), got 1.5"),
    ("strategy: {sigma0: -1.0}\n", r"strategy\.sigma0: must be in \(0, 1e\+06\]"),
    ("strategy: {popsize: 1}\n", r"strategy\.popsize: must be in 2\.\.100,000"),
    ("tasks: {schedule: [[5, 2]]}\n", r"tasks\.schedule: must be \[\[0, n0\]"),
    ("tasks: {schedule: [[0, 2], [0, 4]]}\n", r"tasks\.schedule: must be"),
    ("workers: {backend: dask}\n", r"workers\.backend: must be 'ray' or 'inprocess'"),
    ("model: {id: decprnn-postd}\n", r"model\.id: unknown id 'decprnn-postd'; did you mean 'decprnn-postdn'\?"),
    ("strategy: {name: cmaes}\n", r"strategy\.name: unknown name 'cmaes'"),
    ("strategy: {popsize: 3}\n", r"strategy\.popsize: sepcma needs >= 4, got 3"),
    ("strategy: {options: {step_sise: tpa}}\n", r"strategy\.options: .*step_sise"),
])
def test_out_of_range_values(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfglib.load(write(tmp_path, text))


def test_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "tasks:\n  repeats: 0\n")
    with pytest.raises(ConfigError) as info:
        cfglib.load(p)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(p))
    with pytest.raises(FileNotFoundError, match="no such config file"):
        cfglib.load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfglib.load(write(tmp_path, "a: [1, 2\n"))


def test_set_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "strategy: {popsize: 8}\n")
    cfg = cfglib.load(p, ["strategy.popsize=16", "tasks.schedule=[[0, 3]]", "workers.address=auto"])
    assert cfg.strategy.popsize == 16 and cfg.tasks.schedule == ((0, 3),) and cfg.workers.address == "auto"
    with pytest.raises(ConfigError, match=r"strategy\.popsiz: unknown key; did you mean 'popsize'"):
        cfglib.load(p, ["strategy.popsiz=3"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        cfglib.load(p, ["strategy.popsize"])


def test_round_trip_and_hash(tmp_path: Path) -> None:
    cfg = cfglib.load(ROOT / "experiments" / "smoke.yaml")
    again = cfglib.load(write(tmp_path, cfglib.dump(cfg)))
    assert again == cfg and again.science_hash() == cfg.science_hash()
    # Workers, generations and checkpointing do not change results; the seed does.
    assert cfglib.load(tmp_path / "exp.yaml", ["workers.count=7", "generations=3"]).science_hash() == cfg.science_hash()
    assert cfglib.load(tmp_path / "exp.yaml", ["seed=1"]).science_hash() != cfg.science_hash()
    with pytest.raises(Exception):
        cfg.seed = 3  # frozen


def test_every_shipped_experiment_loads() -> None:
    from evoplastic import sweep

    files = sorted((ROOT / "experiments").rglob("*.yaml"))
    assert len(files) >= 36
    for f in files:
        if f.name.startswith("ood-") or f.name == "cluster.yaml":
            continue
        if "grid" in (yaml.safe_load(f.read_text()) or {}):  # a sweep file
            assert len(sweep.load(f).points) >= 2
        else:
            cfglib.load(f)


def test_comparisons_share_their_budget() -> None:
    root = ROOT / "experiments"
    cfgs = {p.stem: cfglib.load(p) for p in sorted(root.glob("compare-9x9-*.yaml"))}
    compare = {k: v.to_dict() for k, v in cfgs.items() if k.startswith("compare-9x9-")}
    assert set(compare) == {f"compare-9x9-{m}" for m in
                            ("decprnn-postdn", "nm-rnn", "lr-rnn", "meta-rnn", "decprnn-postdn-mask")}
    budgets = [{k: v for k, v in d.items() if k not in ("name", "model")} for d in compare.values()]
    assert all(b == budgets[0] for b in budgets)  # equal ES budget: only the model differs
    assert budgets[0]["strategy"]["popsize"] == 40 and budgets[0]["generations"] == 300
    assert cfgs["compare-9x9-decprnn-postdn-mask"].model.frugality == 0.05
    assert cfgs["compare-9x9-decprnn-postdn-mask"].model.id == "decprnn-postdn+mask"
