"""Shared test helper: lifetime.evaluate that also records every step's outputs."""

from __future__ import annotations

from evoplastic import lifetime


def traced(model, genomes, ts, monkeypatch, **kw):
    """(result, [y of every step call, all rows]) of ``lifetime.evaluate(model, genomes, ts, **kw)``."""
    ys, orig = [], type(model).step

    def step(self, p, mem, x, live=None):
        y = orig(self, p, mem, x, live)
        ys.append(y.copy())
        return y

    with monkeypatch.context() as mp:
        mp.setattr(type(model), "step", step)
        res = lifetime.evaluate(model, genomes, ts, engine="lockstep", **kw)  # steps are Python calls there
    return res, ys
