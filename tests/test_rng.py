"""Counter-based lifetime RNG: deterministic, independent of batch composition, uniform."""

import numpy as np

from evoplastic import rng


def test_same_key_same_draws_whatever_the_batch() -> None:
    k_all = rng.keys(7, np.arange(1000), 3)
    k_part = rng.keys(7, np.arange(500, 510), 3)
    assert np.array_equal(k_all[500:510], k_part)
    for c in (0, 1, 199):
        assert np.array_equal(rng.uniform(k_all, c)[500:510], rng.uniform(k_part, c))


def test_keys_depend_on_every_id_and_order() -> None:
    base = rng.keys(1, 2, 3)
    assert base.shape == (1,)
    assert rng.keys(1, 3, 2)[0] != base[0]
    assert rng.keys(2, 2, 3)[0] != base[0]
    keys = rng.keys(0, np.arange(100)[:, None], np.arange(100)[None, :]).ravel()
    assert len(np.unique(keys)) == keys.size


def test_uniform_and_integers_are_uniform() -> None:
    keys = rng.keys(123, np.arange(200_000))
    u = rng.uniform(keys, 5)
    assert (u >= 0).all() and (u < 1).all()
    # mean 1/2 and variance 1/12 within ~5 standard errors
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    assert abs(u.var() - 1 / 12) < 0.002
    counts = np.bincount(rng.integers(keys, 9, 4), minlength=4)
    expected = u.size / 4
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 16.3  # p = 0.001 for 3 degrees of freedom
    # successive draws of one stream are uncorrelated
    v = rng.uniform(keys, 6)
    assert abs(np.corrcoef(u, v)[0, 1]) < 5 / np.sqrt(u.size)
