"""Evolution strategies: method §4 by hand, convergence, determinism, exact resume, failed evaluations."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evoplastic.strategies import STRATEGIES, centered_ranks, make_strategy, restore_strategy

ALL = [("sepcma", {}), ("sepcma", {"step_size": "tpa"}), ("reference-sepcma", {})]
IDS = ["sepcma-csa", "sepcma-tpa", "reference"]


@pytest.fixture(autouse=True)
def _quiet_pycma_tpa():
    # pycma warns when a TPA mirror sample has a coordinate beyond 7 standard deviations: expected here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="elements of z2", category=UserWarning)
        yield


# -- reference-sepcma against method §4, computed by hand ----------------------------------------


def _generator(state: dict[str, np.ndarray]) -> np.random.Generator:
    st = json.loads(str(state["rng"]))
    bg = getattr(np.random, st["bit_generator"])()
    bg.state = st
    return np.random.Generator(bg)


def spec4_by_hand(state: dict[str, np.ndarray], fitness_fn: Any) -> dict[str, Any]:
    """One method §4 generation from a reference-sepcma state, with explicit loops over plain floats."""
    opts = json.loads(str(state["options"]))
    n, lam = int(state["dim"]), int(state["popsize"])
    k, c_cov, segments = opts["top_k"], opts["c_cov"], opts["segments"]
    mean, sigma = [float(v) for v in state["mean"]], float(state["sigma"])
    cov, p_c, p_s = ([float(v) for v in state[key]] for key in ("cov", "p_c", "p_s"))
    gen = int(state["gen"]) + 1
    # constants
    w_full = [math.log(k + 1) - math.log(i + 1) for i in range(k)]
    mu_eff = 1.0 / sum((w / sum(w_full)) ** 2 for w in w_full)
    p_std = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
    c_s = (mu_eff + 2) / (n + mu_eff + 3)
    d_s = 1 + 2 * math.sqrt((mu_eff - n - 2) / (n + 1)) + c_s if mu_eff > n + 2 else 1 + c_s
    c_c = 4 / (n + 4)
    # sampling, in the documented draw order: scale picks, then normals; the mean is the last row
    rng = _generator(state)
    u, z = rng.random((lam - 1, len(segments))), rng.standard_normal((lam - 1, n))
    population = []
    for i in range(lam - 1):
        row, gene = [], 0
        for t, size in enumerate(segments):
            s = 0.708 if u[i, t] <= 0.05 else (1.0 if u[i, t] <= 0.05 + 0.90 else 1.225)
            for _ in range(size):
                row.append(mean[gene] + sigma * math.sqrt(cov[gene]) * s * z[i, gene])
                gene += 1
        population.append(row)
    population.append(list(mean))
    fitness = fitness_fn(np.array(population).astype(np.float32))
    # selection: finite only, fitness descending, ties -> higher row first
    valid = [i for i in range(lam) if math.isfinite(fitness[i])]
    top = sorted(valid, key=lambda i: (fitness[i], i), reverse=True)[:k]
    w = [w_full[i] / sum(w_full[: len(top)]) for i in range(len(top))]
    new, d, s_sq, p_s_new = [], [], [], []
    for j in range(n):
        new.append(sum(w[r] * population[i][j] for r, i in enumerate(top)))
        d.append(new[j] - mean[j])
        s_sq.append(sum(w[r] * (population[i][j] - mean[j]) ** 2 for r, i in enumerate(top)))
        p_s_new.append((1 - c_s) * p_s[j] + math.sqrt(c_s * (2 - c_s) * mu_eff) / sigma * d[j] / math.sqrt(cov[j]))
    norm = math.sqrt(sum(v * v for v in p_s_new))
    sigma_raw = sigma * math.exp(c_s / d_s * (norm / p_std - 1))
    h_unit = math.sqrt(2 * c_s) * (1.4 + 2 / (n + 1)) * p_std
    h = 1.0 if norm < h_unit * math.sqrt(gen + 1) else 0.0
    cov_raw = [(1 - c_cov) * cov[j] + c_cov / mu_eff * p_c[j] ** 2 + c_cov * (1 - 1 / mu_eff) / sigma**2 * s_sq[j]
               for j in range(n)]
    p_c_new = [(1 - c_c) * p_c[j] + h * math.sqrt(c_c * (2 - c_c) * mu_eff) / sigma * d[j] for j in range(n)]
    return {"population": np.array(population), "fitness": fitness, "mean": np.array(new), "p_s": np.array(p_s_new),
            "p_c": np.array(p_c_new), "h": h, "h_ratio": norm / h_unit, "mu_eff": mu_eff, "d_s": d_s, "gen": gen,
            "sigma_raw": sigma_raw, "sigma": min(max(sigma_raw, 1e-6), 1.0),
            "cov_raw": np.array(cov_raw), "cov": np.array([min(max(c, 1e-12), 1.0) for c in cov_raw])}


def _quadratic(x: np.ndarray) -> np.ndarray:
    return -np.sum((x.astype(np.float64) - 0.25) ** 2 * np.arange(1, x.shape[1] + 1), axis=1)


def _with_nan(rows: list[int]):
    def f(x: np.ndarray) -> np.ndarray:
        out = _quadratic(x)
        out[rows] = np.nan
        return out
    return f


def _outward(x: np.ndarray) -> np.ndarray:
    return np.sum((x.astype(np.float64) - x[-1]) ** 2, axis=1)  # farthest from the mean (last row) is best


def _inward(x: np.ndarray) -> np.ndarray:
    return -_outward(x)


# name: (dim, popsize, segments, generations before, state tweaks, fitness)
HAND_CASES: dict[str, tuple[int, int, list[int], int, dict[str, Any], Any]] = {
    "second-generation": (5, 6, [2, 3], 1, {}, _with_nan([1])),
    "h-zero": (5, 6, [2, 3], 1, {"p_s": np.full(5, 6.0)}, _quadratic),
    "h-uses-gen-plus-1": (5, 6, [2, 3], 1, {"p_s": np.full(5, 6.0)}, _quadratic),  # gen set below
    "ties-higher-row-first": (5, 6, [5], 1, {}, lambda x: np.array([1.0, 5.0, 5.0, 3.0, 5.0, 2.0])),
    "fewer-valid-than-k": (5, 6, [5], 1, {}, _with_nan([0, 2, 3, 5])),
    "d_s-branch": (1, 20, [1], 2, {}, _quadratic),
    "clip-high": (5, 6, [1, 4], 1, {"sigma": np.array(1.0), "p_c": np.full(5, 10.0), "p_s": np.full(5, 10.0)},
                  _outward),
    "clip-low": (5, 6, [5], 0, {"mean": np.zeros(5), "cov": np.full(5, 1e-13), "sigma": np.array(1e-6)}, _inward),
}


@pytest.mark.parametrize("case", list(HAND_CASES))
def test_reference_generation_equals_spec4_by_hand(case: str) -> None:
    dim, popsize, segments, before, tweaks, fitness_fn = HAND_CASES[case]
    es = make_strategy("reference-sepcma", dim, popsize, 0.3, np.linspace(-0.5, 0.5, dim), 11, segments=segments)
    for _ in range(before):
        es.tell(_quadratic(es.ask()))
    state = {**es.state(), **tweaks}
    if case == "h-uses-gen-plus-1":  # put |p_s| between the thresholds of gen and gen + 1
        state["gen"] = np.array(math.floor(spec4_by_hand(state, fitness_fn)["h_ratio"] ** 2) - 1)
    es = restore_strategy(state)
    want = spec4_by_hand(state, fitness_fn)

    genomes = es.ask()
    assert np.array_equal(genomes, want["population"].astype(np.float32))
    stats = es.tell(want["fitness"])
    got = es.state()
    assert stats["h"] == want["h"] and stats["dropped"] == int(np.sum(~np.isfinite(want["fitness"])))
    assert int(got["gen"]) == want["gen"]
    for key in ("mean", "p_s", "p_c", "cov"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-15, err_msg=key)
    np.testing.assert_allclose(float(got["sigma"]), want["sigma"], rtol=1e-12)
    assert es.c["d_s"] == pytest.approx(want["d_s"], rel=1e-14)
    # each case must exercise what it is named after
    if case == "h-zero":
        assert want["h"] == 0.0
    if case == "h-uses-gen-plus-1":
        assert want["h"] == 1.0 and math.sqrt(want["gen"]) <= want["h_ratio"] < math.sqrt(want["gen"] + 1)
    if case == "second-generation":
        assert want["h"] == 1.0 and np.any(state["p_c"] != 0)
    if case == "fewer-valid-than-k":
        assert np.isfinite(want["fitness"]).sum() < popsize // 2
    if case == "d_s-branch":
        assert want["mu_eff"] > dim + 2
    if case == "clip-high":
        assert want["sigma_raw"] > 1 and np.all(want["cov_raw"] > 1) and float(got["sigma"]) == 1.0
    if case == "clip-low":
        assert want["sigma_raw"] < 1e-6 and np.all(want["cov_raw"] < 1e-12) and float(got["sigma"]) == 1e-6


# -- convergence -------------------------------------------------------------------------------


def _sphere(x: np.ndarray) -> np.ndarray:
    return np.sum(x.astype(np.float64) ** 2, axis=1)


def _ellipsoid(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    return np.sum(1e3 ** (np.arange(n) / (n - 1)) * x.astype(np.float64) ** 2, axis=1)  # condition 1e3


@pytest.mark.parametrize("problem", [_sphere, _ellipsoid], ids=["sphere", "ellipsoid"])
@pytest.mark.parametrize("name,options", ALL, ids=IDS)
def test_converges_in_100_dimensions(name: str, options: dict[str, Any], problem: Any) -> None:
    dim = 100
    es = make_strategy(name, dim, 16 if name == "sepcma" else 20, 0.3, np.ones(dim), 0, **options)
    f0 = problem(es.mean[None])[0]
    for _ in range(1500):
        es.tell(-problem(es.ask()))  # fitness: higher is better
        if problem(es.mean[None])[0] < 1e-8 * f0:
            break
    assert problem(es.mean[None])[0] < 1e-8 * f0


# -- determinism and exact resume --------------------------------------------------------------


def _run(es: Any, generations: int, fitness_fn: Any = _with_nan([3])) -> list[np.ndarray]:
    asked = []
    for _ in range(generations):
        asked.append(es.ask())
        es.tell(fitness_fn(asked[-1]))
    return asked


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
def test_same_seed_same_run_other_seed_other_run(name: str, options: dict[str, Any]) -> None:
    runs = [_run(make_strategy(name, 30, 10, 0.2, np.zeros(30), seed, **options), 5) for seed in (4, 4, 5)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not np.array_equal(runs[0][-1], runs[2][-1])
    ss = np.random.SeedSequence(4, spawn_key=(1,))
    assert np.array_equal(_run(make_strategy(name, 30, 10, 0.2, np.zeros(30), ss, **options), 2)[1],
                          _run(make_strategy(name, 30, 10, 0.2, np.zeros(30), ss, **options), 2)[1])


@pytest.mark.parametrize("split", [0, 4])
@pytest.mark.parametrize("name,options", ALL + [("sepcma", {"active": False})], ids=IDS + ["sepcma-passive"])
def test_resume_from_npz_continues_bit_for_bit(name: str, options: dict[str, Any], split: int, tmp_path: Path) -> None:
    def make() -> Any:
        return make_strategy(name, 40, 10, 0.3, np.linspace(-1, 1, 40), 9, segments=[10, 30], **options)

    whole = make()
    asked_whole = _run(whole, 8)

    first = make()
    asked = _run(first, split)
    state = first.state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    np.savez(tmp_path / "es.npz", **state)
    with np.load(tmp_path / "es.npz", allow_pickle=False) as z:
        loaded = {k: z[k] for k in z.files}
    resumed = restore_strategy(loaded, segments=[10, 30], **options)
    asked += _run(resumed, 8 - split)

    for g, (a, b) in enumerate(zip(asked_whole, asked)):
        assert np.array_equal(a, b), f"generation {g} differs"
    assert resumed.sigma == whole.sigma and np.array_equal(resumed.mean, whole.mean)
    end_whole, end_resumed = whole.state(), resumed.state()
    assert end_whole.keys() == end_resumed.keys()
    for key in end_whole:
        assert np.array_equal(end_whole[key], end_resumed[key]), key


def test_resume_refuses_other_settings() -> None:
    es = make_strategy("reference-sepcma", 6, 6, 0.1, np.zeros(6), 0)
    with pytest.raises(ValueError, match="option 'c_cov'=0.05 differs from the saved state's 0.02"):
        restore_strategy(es.state(), c_cov=0.05)
    sep = make_strategy("sepcma", 6, 6, 0.1, np.zeros(6), 0)
    with pytest.raises(ValueError, match="option 'step_size'='tpa' differs"):
        restore_strategy(sep.state(), step_size="tpa")


def test_ask_is_idempotent_and_state_needs_a_generation_boundary() -> None:
    es = make_strategy("sepcma", 6, 6, 0.1, np.zeros(6), 0)
    with pytest.raises(RuntimeError, match="tell\\(\\) without a pending ask"):
        es.tell(np.zeros(6))
    a = es.ask()
    assert a.dtype == np.float32 and a.shape == (6, 6) and np.array_equal(a, es.ask())
    with pytest.raises(RuntimeError, match="state\\(\\) between ask\\(\\) and tell\\(\\)"):
        es.state()


# -- failed evaluations ------------------------------------------------------------------------


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
def test_nonfinite_fitness_is_dropped_and_reported(name: str, options: dict[str, Any]) -> None:
    es = make_strategy(name, 10, 8, 0.2, np.zeros(10), 1, **options)
    f = _quadratic(es.ask())
    f[[2, 5]] = [np.nan, np.inf]
    stats = es.tell(f)
    assert stats["dropped"] == 2 and np.isfinite(stats["fitness_mean"]) and stats["fitness_best_index"] not in (2, 5)
    assert np.isfinite(es.ask()).all() and np.isfinite(es.mean).all()


@pytest.mark.parametrize("name,options", ALL, ids=IDS)
def test_all_nonfinite_generation_is_a_clear_error(name: str, options: dict[str, Any]) -> None:
    es = make_strategy(name, 10, 8, 0.2, np.zeros(10), 1, **options)
    x = es.ask()
    with pytest.raises(ValueError, match=r"all 8 fitness values are NaN or infinite; check the evaluator") as err:
        es.tell(np.array([np.nan] * 7 + [-np.inf]))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"expected fitness of shape \(8,\)"):
        es.tell(np.zeros(7))
    es.tell(_quadratic(x))  # the generation is still pending and can be told properly


def test_sepcma_tells_pycma_negated_ranks_with_failures_last() -> None:
    es = make_strategy("sepcma", 10, 8, 0.2, np.zeros(10), 1)
    told: list[list[float]] = []
    tell = es._es.tell
    es._es.tell = lambda X, F: (told.append(F), tell(X, F))[1]
    f = np.arange(8.0)  # row 7 best
    f[[1, 4]] = [np.nan, -np.inf]
    es.ask()
    es.tell(f)
    values = np.array(told[0])  # pycma minimises
    assert values[7] == -0.5 and values[1] == values[4] == values.max() > values[0]


# -- pycma configuration -----------------------------------------------------------------------


def test_sepcma_pycma_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cma.sigma_adaptation import CMAAdaptSigmaCSA, CMAAdaptSigmaTPA

    monkeypatch.chdir(tmp_path)
    csa = make_strategy("sepcma", 300, 5, 0.1, np.zeros(300), 0)  # pycma alone would pick TPA at >= 300
    assert isinstance(csa._es.adapt_sigma, CMAAdaptSigmaCSA) and not isinstance(csa._es.adapt_sigma, CMAAdaptSigmaTPA)
    assert csa._es.opts["CMA_diagonal"] is True and csa._es.sp.lam_mirr == 0  # no mirrors despite popsize < 6
    assert np.min(csa._es.sp.weights) < 0  # active CMA by default
    tpa = make_strategy("sepcma", 300, 5, 0.1, np.zeros(300), 0, step_size="tpa", active=False)
    assert isinstance(tpa._es.adapt_sigma, CMAAdaptSigmaTPA) and np.min(tpa._es.sp.weights) == 0

    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    _run(csa, 6, lambda x: -_sphere(x))
    _run(tpa, 6, lambda x: -_sphere(x))
    assert np.array_equal(np.random.get_state()[1], before), "pycma must not draw from global np.random"
    assert list(tmp_path.iterdir()) == [], "pycma must not write files"


# -- centred ranks -----------------------------------------------------------------------------


def test_centered_ranks_known_values() -> None:
    assert np.array_equal(centered_ranks(np.array([3.0, 1.0, 2.0])), [0.5, -0.5, 0.0])
    assert np.array_equal(centered_ranks(np.array([1.0, 2.0, 2.0, 3.0])), [-0.5, 0.0, 0.0, 0.5])
    assert np.array_equal(centered_ranks(np.array([np.nan, 1.0, 2.0])), [-0.5, 0.0, 0.5])
    assert np.array_equal(centered_ranks(np.array([np.nan, np.inf, 5.0])), [-0.25, -0.25, 0.5])
    assert np.array_equal(centered_ranks(np.array([-1e300, -np.inf, 7.0, 7.0, 8.0])), [-0.25, -0.5, 0.125, 0.125, 0.5])
    assert np.array_equal(centered_ranks(np.array([4.2])), [0.0])


# -- options validation ------------------------------------------------------------------------


def test_unknown_strategy_and_option_names_are_clear_errors() -> None:
    assert set(STRATEGIES) == {"sepcma", "reference-sepcma"}
    with pytest.raises(ValueError, match="unknown strategy 'cma'; valid: sepcma, reference-sepcma"):
        make_strategy("cma", 4, 6, 0.1, np.zeros(4), 0)
    with pytest.raises(ValueError, match="unknown option 'stepsize' for strategy 'sepcma' \\(did you mean "
                                         "'step_size'\\?\\); valid options: active, segments, step_size"):
        make_strategy("sepcma", 4, 6, 0.1, np.zeros(4), 0, stepsize="tpa")
    with pytest.raises(ValueError, match="unknown option 'step_size' for strategy 'reference-sepcma'.*"
                                         "valid options: c_cov, segments, top_k"):
        make_strategy("reference-sepcma", 4, 6, 0.1, np.zeros(4), 0, step_size="tpa")


@pytest.mark.parametrize("name,kwargs,message", [
    ("sepcma", {"step_size": "xnes"}, "'step_size' must be one of csa, tpa"),
    ("sepcma", {"active": "yes"}, "'active' must be true or false"),
    ("reference-sepcma", {"c_cov": 0.0}, "'c_cov' must be in \\(0, 1\\]"),
    ("reference-sepcma", {"top_k": 0}, "'top_k' must be in 1..popsize=6"),
    ("reference-sepcma", {"segments": [2, 3]}, "'segments' must be positive tensor sizes summing to dim=4"),
    ("sepcma", {"popsize": 3}, "popsize must be >= 4"),
    ("reference-sepcma", {"mean0": np.zeros(5)}, "mean0 must be a finite \\(4,\\) vector"),
    ("reference-sepcma", {"sigma0": -1.0}, "sigma0 must be finite and > 0"),
    ("sepcma", {"seed": 1.5}, "seed must be an int or a numpy SeedSequence"),
])
def test_bad_option_values_are_clear_errors(name: str, kwargs: dict[str, Any], message: str) -> None:
    args = {"dim": 4, "popsize": 6, "sigma0": 0.1, "mean0": np.zeros(4), "seed": 0}
    options = {k: v for k, v in kwargs.items() if k not in args}
    args.update({k: v for k, v in kwargs.items() if k in args})
    with pytest.raises(ValueError, match=message):
        make_strategy(name, **args, **options)
