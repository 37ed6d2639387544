"""The fused lifetime engine: each lifetime runs whole, first step to last, in compiled code.

Same semantics as the lock-step evaluator (:func:`evoplastic.lifetime._run_batch`), lifetime by
lifetime instead of step by step over a batch: the maze step of :class:`~evoplastic.envs.maze.VectorMaze`
(its own padded grids, moves and observation window), the input assembly, the model's step
(the same compiled per-lifetime kernel the lock-step path calls, :mod:`.models.dec_kernels`),
action selection with the counter-based generator of :mod:`evoplastic.rng` (same keys, same
counters, so the same random numbers), rollout ends, and memories carried across rollouts.
A lifetime's state lives in a few small buffers reused from one lifetime to the next (about
25 KB for DecPRNN, hidden 64): memory does not grow with the number of lifetimes, and the
plastic weights stay in the core's L1/L2 cache for the whole lifetime.

Covered models: :data:`COVERED` (the Dec family, the PRNN with alpha-ABCD rules, Meta-RNN and
Meta-LSTM, and their structure masks). Other models run on the lock-step path (``lifetime.engine: auto`` picks per model).
"""

from __future__ import annotations

import math
import types

import numpy as np

from evoplastic.envs.maze import GOAL_REWARD, STEP_REWARD, VectorMaze
from evoplastic.models import abcd_kernels as AK
from evoplastic.models import dec_kernels as DK
from evoplastic.models import kernels as K
from evoplastic.models import meta_kernels as MK
from evoplastic.models import nm_kernels as NK
from evoplastic.models.base import N_IN, N_OUT, Model

F32 = np.float32
KIND_DECRNN, KIND_DECPDNN, KIND_META_RNN, KIND_META_LSTM, KIND_PRNN, KIND_NM = 0, 1, 2, 3, 4, 5
KIND_NAMES = ("decrnn", "decpdnn", "meta_rnn", "meta_lstm", "prnn", "nm")
COVERED = ("decprnn", "decprnn-predn", "decprnn-postdn", "decpdnn", "decpdnn-predn", "decpdnn-postdn",
           "decprnn+mask", "decprnn-predn+mask", "decprnn-postdn+mask",
           "meta-rnn", "meta-lstm", "meta-rnn+mask", "meta-lstm+mask",
           "prnn", "prnn-predn", "prnn-postdn", "prnn+mask", "prnn-predn+mask", "prnn-postdn+mask",
           "nm-rnn", "lr-rnn", "nm-rnn+mask", "lr-rnn+mask")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE_U = np.uint64(1)
_INV53 = 1.0 / 2.0 ** 53
_STEP_R = F32(STEP_REWARD)
_GOAL_R = F32(GOAL_REWARD)


def covers(model: Model) -> bool:
    """True when the fused engine runs ``model``."""
    return K.HAVE_NUMBA and model.id in COVERED


if K.HAVE_NUMBA:
    njit = K.njit

    @njit
    def uniform(key, counter):  # pragma: no cover - compiled
        """:func:`evoplastic.rng.uniform` for one key: draw ``counter`` as a float64 in [0, 1)."""
        z = key + (np.uint64(counter) + _ONE_U) * _GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        z = z ^ (z >> _S31)
        return float(z >> _S11) * _INV53

    @njit
    def select_action(y, key, counter, p_fixed):  # pragma: no cover - compiled
        """method §2 action selection (as :func:`evoplastic.lifetime.select_actions`, float64):
        greedy ``argmax y[0:4]`` with probability ``p`` (``p_fixed`` if >= 0, else
        ``sigmoid(2 y[4])``), else a sample of ``softmax(y[0:4])``."""
        p = p_fixed if p_fixed >= 0 else 1.0 / (1.0 + math.exp(-2.0 * float(y[4])))
        u = uniform(key, counter)
        best, top = 0, float(y[0])
        for a in range(1, 4):
            if float(y[a]) > top:
                best, top = a, float(y[a])
        if u < p:
            return best
        c0 = math.exp(float(y[0]) - top)
        c1 = c0 + math.exp(float(y[1]) - top)
        c2 = c1 + math.exp(float(y[2]) - top)
        c3 = c2 + math.exp(float(y[3]) - top)
        v = uniform(key, counter + 1) * c3
        n = (c0 <= v) + (c1 <= v) + (c2 <= v) + (c3 <= v)
        return min(n, 3)

    @njit
    def select_rows(y, keys, counter, p_fixed, out):  # pragma: no cover - compiled
        for k in range(y.shape[0]):
            out[k] = select_action(y[k], keys[k], counter, p_fixed)

    def _run_template(mod, n_h, nm_k, nm_m, gs, lay, g_of, t_of, keys, view, blocked, start, goal, moves, window,
             rollouts, max_steps, first_p, feed_rd, steps_out, reached_out, mem_a, mem_b):  # pragma: no cover
        """The lifetime loop of one model kind, ``KIND`` (a global constant of each specialised copy,
        :func:`_run_for`): every lifetime l (genome row g_of[l], task t_of[l], key keys[l]) for ``rollouts``
        rollouts (NM-RNN: rank ``nm_k``, ``nm_m`` modulatory units); writes steps_out, reached_out (L, R); returns the number of agent-steps.

        ``mem_a``, ``mem_b`` (L, ., H) float32, if not empty, receive each lifetime's final
        memories: DecPRNN / PRNN ``WT`` (pending update applied) and ``h``; DecPDNN ``W1T`` and
        ``W2T``; Meta-RNN / LSTM ``h`` and ``c``; NM-RNN ``x`` and ``z``.
        """
        n_x = n_h + N_IN
        x, y = np.zeros(N_IN, F32), np.empty(N_OUT, F32)
        # state and scratch: DecPRNN wt, h, pp, pr, ps; DecPDNN w1t, w2t
        plastic_rnn = KIND == KIND_DECRNN or KIND == KIND_PRNN  # buffers only for the kind that runs
        wt, h = np.empty((n_x if plastic_rnn else 0, n_h), F32), np.empty(n_h, F32)
        pp, pr, ps = np.empty(n_h, F32), np.empty(n_x, F32), np.empty(2, F32)
        pre, z, hn = np.empty(n_x, F32), np.empty(n_h, F32), np.empty(n_h, F32)
        coef, t, pv = np.empty((2, 4, n_h), F32), np.empty(4, F32), np.empty((n_x, 5), F32)
        pdnn = KIND == KIND_DECPDNN
        w1t, w2t = np.empty((N_IN if pdnn else 0, n_h), F32), np.empty((n_h if pdnn else 0, n_h), F32)
        n_u = 4 * n_h if KIND == KIND_META_LSTM else n_h  # Meta-RNN / LSTM: units of W
        meta = KIND == KIND_META_RNN or KIND == KIND_META_LSTM
        wm, c, zm = np.empty((n_x if meta else 0, n_u), F32), np.empty(n_h, F32), np.empty(n_u, F32)
        rt = np.empty((4 if KIND == KIND_PRNN else 0, n_x, n_h), F32)  # PRNN: A..D transposed
        zs, proj, zn = np.empty(nm_m, F32), np.empty(nm_k, F32), np.empty(nm_m, F32)  # NM-RNN
        total = 0
        for life in range(g_of.shape[0]):
            g, key, task = gs[g_of[life]], keys[life], t_of[life]
            wt[:] = 0
            h[:] = 0
            pp[:] = 0
            pr[:] = 0
            ps[:] = 0
            w1t[:] = 0
            w2t[:] = 0
            c[:] = 0
            zs[:] = 0
            if KIND == KIND_META_RNN or KIND == KIND_META_LSTM:  # W (units, 15 + H), transposed once
                at = lay[0]
                for i in range(n_u):
                    for j in range(n_x):
                        wm[j, i] = g[at + i * n_x + j]
            elif KIND == KIND_PRNN:  # h.A..D (H, H) and x.A..D (H, 15) of the genome, transposed once
                for r in range(4):
                    ah, ax = lay[3 + r], lay[7 + r]
                    for i in range(n_h):
                        for j in range(n_h):
                            rt[r, j, i] = g[ah + i * n_h + j]
                        for j in range(N_IN):
                            rt[r, n_h + j, i] = g[ax + i * N_IN + j]
            for r in range(rollouts):
                slot0 = r * (max_steps + 1)
                prev = int(uniform(key, 3 * (slot0 + max_steps)) * 4)
                pos, steps, reward = start[task], 0, F32(0)
                p_fixed = first_p if r == 0 else -1.0
                while True:
                    for k in range(9):
                        x[k] = view[pos + window[k]]
                    for k in range(4):
                        x[9 + k] = 0
                    x[9 + prev] = 1
                    if feed_rd:
                        x[13], x[14] = reward, 0  # the previous reward; done is 0 while running
                    if KIND == KIND_DECRNN:
                        DK.decrnn_row(g, lay, mod, wt, h, pp, pr, ps, x, True, y, pre, z, hn, coef, t, pv)
                    elif KIND == KIND_DECPDNN:
                        DK.decpdnn_row(g, lay, mod, w1t, w2t, x, True, y, z, hn, coef, t, pv)
                    elif KIND == KIND_PRNN:
                        AK.prnn_row(g, lay, mod, rt, wt, h, x, True, y, pre, z, hn, t)
                    elif KIND == KIND_NM:
                        NK.nm_row(g, lay, nm_k, h, zs, x, True, y, z, proj, zn, hn)
                    else:
                        MK.meta_row(g, lay, KIND == KIND_META_LSTM, wm, h, c, x, True, y, pre, zm, t)
                    action = select_action(y, key, 3 * (slot0 + steps), p_fixed)
                    target = pos + moves[action]
                    if not blocked[target]:  # a wall bump leaves the agent in place (method §1)
                        pos = target
                    steps += 1
                    reward = _STEP_R
                    hit = pos == goal[task]
                    if hit:
                        reward = reward + _GOAL_R
                    prev = action
                    if hit or steps >= max_steps:
                        break
                total += steps
                steps_out[life, r] = steps
                reached_out[life, r] = hit
            if mem_a.shape[0] > 0:
                if KIND == KIND_DECRNN or KIND == KIND_PRNN:
                    if KIND == KIND_DECRNN:
                        DK.decrnn_flush(g, lay, wt, pp, pr, ps, coef, pv)
                    mem_a[life] = wt
                    mem_b[life, 0] = h
                elif KIND == KIND_META_RNN or KIND == KIND_META_LSTM:
                    mem_a[life, 0] = h
                    mem_b[life, 0] = c
                elif KIND == KIND_NM:
                    mem_a[life, 0] = h
                    mem_b[life, 0, :nm_m] = zs
                else:
                    mem_a[life] = w1t
                    mem_b[life] = w2t
        return total

    _RUNS: dict[int, object] = {}

    def _run_for(kind: int):
        """The compiled lifetime loop of ``kind``: :func:`_run_template` with ``KIND`` a global
        constant, so numba prunes the other kinds' branches before typing and compiles only this
        kind's kernels (all kinds in one function compiled all of them, some 7 s on every first run).
        Each copy has its own name, so numba's on-disk cache keeps them apart."""
        if kind not in _RUNS:
            name = f"_run_{KIND_NAMES[kind]}"
            f = types.FunctionType(_run_template.__code__, {**globals(), "KIND": kind}, name)
            f.__qualname__ = name
            _RUNS[kind] = njit(f)
        return _RUNS[kind]


def _unmasked(model: Model) -> Model:
    """The model a structure mask wraps (``<id>+mask``), or the model itself."""
    return getattr(model, "inner", None) or model


def kind_of(model: Model) -> tuple[int, int, tuple[str, ...]]:
    """(kind, modulation code, parameter names) of a covered model."""
    inner = _unmasked(model)
    if inner.id in ("meta-rnn", "meta-lstm"):
        return (KIND_META_RNN if inner.id == "meta-rnn" else KIND_META_LSTM), 0, MK.META_NAMES
    if inner.id.startswith("prnn"):
        return KIND_PRNN, DK.MOD_CODES[inner.modulation], AK.PRNN_NAMES
    if inner.id in ("nm-rnn", "lr-rnn"):
        return KIND_NM, 0, NK.NM_NAMES
    mod = DK.MOD_CODES[inner.modulation]
    if type(inner).__name__ == "DecPRNN":
        return KIND_DECRNN, mod, DK.DECRNN_NAMES
    return KIND_DECPDNN, mod, DK.DECPDNN_NAMES


def run(model: Model, named: dict[str, np.ndarray], g_of: np.ndarray, t_of: np.ndarray, keys: np.ndarray,
        maze: VectorMaze, rollouts: int, first_p: float | None, feed_rd: bool, memory: bool = False
        ) -> tuple[np.ndarray, np.ndarray, int, dict[str, np.ndarray] | None]:
    """Run lifetimes whole. ``maze``: a :class:`VectorMaze` with one slot per task (its grids,
    start and goal cells are read, never stepped). ``named``: the genomes' tensors (P, ...); ``g_of``, ``t_of`` (L,)
    genome row and task row (of ``maze``'s tasks) of each lifetime; ``keys`` (L,) uint64.

    Returns steps (L, R) int32, reached (L, R) bool, the number of agent-steps, and with
    ``memory`` each lifetime's final memories as ``Model.memory_state`` gives them (else None).
    """
    kind, mod, names = kind_of(model)
    gs, lay = DK.pack(named, names)
    inner = _unmasked(model)
    nm_k, nm_m = (inner.rank, inner.modulator) if kind == KIND_NM else (0, 0)
    n_life, n_h = len(g_of), model.hidden
    steps = np.zeros((n_life, rollouts), np.int32)
    reached = np.zeros((n_life, rollouts), np.bool_)
    n_rec = n_life if memory else 0
    if kind == KIND_DECRNN or kind == KIND_PRNN:
        mem_a, mem_b = np.zeros((n_rec, n_h + N_IN, n_h), F32), np.zeros((n_rec, 1, n_h), F32)
    elif kind in (KIND_META_RNN, KIND_META_LSTM, KIND_NM):
        mem_a, mem_b = np.zeros((n_rec, 1, n_h), F32), np.zeros((n_rec, 1, max(n_h, nm_m)), F32)
    else:
        mem_a, mem_b = np.zeros((n_rec, N_IN, n_h), F32), np.zeros((n_rec, n_h, n_h), F32)
    n = _run_for(kind)(mod, model.hidden, nm_k, nm_m, gs, lay, np.asarray(g_of, np.int64), np.asarray(t_of, np.int64),
             np.asarray(keys, np.uint64), maze._view, maze._blocked, maze._start, maze._goal,
             maze._moves, maze._window, rollouts, maze.max_steps,
             -1.0 if first_p is None else float(first_p), feed_rd, steps, reached, mem_a, mem_b)
    mem = None
    if memory:
        swap = lambda a: np.ascontiguousarray(a.transpose(0, 2, 1))  # noqa: E731 - stored transposed
        if kind == KIND_DECRNN or kind == KIND_PRNN:
            mem = {"W": swap(mem_a), "h": mem_b[:, 0].copy()}
        elif kind == KIND_META_RNN:
            mem = {"h": mem_a[:, 0].copy()}
        elif kind == KIND_META_LSTM:
            mem = {"h": mem_a[:, 0].copy(), "c": mem_b[:, 0].copy()}
        elif kind == KIND_NM:
            mem = {"x": mem_a[:, 0].copy()}
            if nm_m:
                mem["z"] = mem_b[:, 0, :nm_m].copy()
        else:
            mem = {"W1": swap(mem_a), "W2": swap(mem_b)}
    return steps, reached, int(n), mem
