"""NM-RNN (Costacurta et al., NeurIPS 2024, "Structured flexibility in recurrent neural networks
via neuromodulation") and its ablation LR-RNN, evolved here like every other model.

A small full-rank *neuromodulatory* RNN (M units) reads the input and emits K gains ``s_t``; they
scale the K rank-one components of an *output-generating* low-rank RNN (N = hidden units):

- ``z_t = (1 - a_z) z_{t-1} + a_z tanh(W_z z_{t-1} + B_z u_t + b_z)``, ``s_t = sigmoid(A z_t + c)``;
- ``x_t = (1 - a) x_{t-1} + a (sum_k s_t[k] l_k (r_k . tanh(x_{t-1})) + B u_t + b)``, i.e. the
  recurrent matrix is ``L diag(s_t) R^T`` (L, R: N x K, columns l_k, r_k);
- ``y_t = W_o tanh(x_t) + b_o``.

LR-RNN is the same output-generating net with ``s_t = 1`` and no modulatory genes.

Time constants: the genes ``a`` and ``a_z`` (one scalar each) are squashed as
``a = sigmoid(gene)``, so a is in (0, 1) (float32 rounds it to exactly 1 for genes above ~17).
Why (0, 1]: the update is an Euler step of ``tau dx/dt = -x + drive`` with ``a = dt / tau``;
a = 0 would freeze the state at its initial 0 (no dynamics at all), a = 1 is the plain
non-leaky RNN, and a > 1 would overshoot the drive (unstable above 2). The sigmoid keeps every
genome valid without a clip, and CMA-ES's initial genes near 0 give a = 0.5.

Memories ``x`` (N,) and ``z`` (M,) start at 0 once per lifetime (method §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models import kernels as K
from evoplastic.models import nm_kernels as NK
from evoplastic.models.base import F32, N_IN, N_OUT, Model, gate, keep_dead, linear, sigmoid
from evoplastic.models.dec_kernels import with_packed


@dataclass(frozen=True)
class NMRNN(Model):
    """Low-rank RNN (rank K) whose components are gated by a small neuromodulatory RNN (M units).

    Genome: the output-generating net's tensors first (shared with LR-RNN, same names, same
    order), then the modulatory net's, so an LR-RNN genome is a prefix of an NM-RNN genome.
    """

    rank: int = 4  # K
    modulator: int = 8  # M; 0 gives LR-RNN (s_t = 1)

    maskable = True  # the mask gates the N output-generating units x, not the modulatory z

    @property
    def id(self) -> str:  # type: ignore[override]
        return "nm-rnn" if self.modulator else "lr-rnn"

    @property
    def doc(self) -> str:  # type: ignore[override]
        if self.modulator:
            return f"low-rank RNN (rank {self.rank}) gated by a neuromodulatory RNN of {self.modulator} units"
        return f"low-rank RNN (rank {self.rank}), NM-RNN without neuromodulation"

    def __post_init__(self) -> None:
        if self.rank < 1 or self.modulator < 0:
            raise ValueError(f"NM-RNN needs rank >= 1 and modulator >= 0, got {self.rank} and {self.modulator}")

    def param_shapes(self):
        n, k, m = self.hidden, self.rank, self.modulator
        shapes = [("a", (1,)), ("L", (n, k)), ("R", (n, k)), ("B", (n, N_IN)), ("b", (n,)),
                  ("W_o", (N_OUT, n)), ("b_o", (N_OUT,))]
        if m:
            shapes += [("a_z", (1,)), ("W_z", (m, m)), ("B_z", (m, N_IN)), ("b_z", (m,)),
                       ("A", (k, m)), ("c", (k,))]
        return shapes

    def memory_shapes(self):
        out = {"x": (self.hidden,)}
        if self.modulator:
            out["z"] = (self.modulator,)
        return out

    def prepare(self, p):
        """Squash the time-constant genes once per batch: ``a = sigmoid(gene)``, (B, 1)."""
        q = dict(p)
        q["_a"] = sigmoid(p["a"])
        q["_R_T"] = np.ascontiguousarray(np.swapaxes(p["R"], 1, 2))  # (B, K, N)
        if self.modulator:
            q["_a_z"] = sigmoid(p["a_z"])
        if K.HAVE_NUMBA:  # compiled (models/nm_kernels.py), the fused engine's own kernel
            with_packed(q, NK.NM_NAMES)
        return q

    def step(self, p, mem, x, live=None):
        if "_g" in p:
            y = np.empty((len(x), N_OUT), F32)
            zs = mem["z"] if self.modulator else np.zeros((len(x), 0), F32)
            NK.nm_rows(p["_g"], p["_lay"][0], self.rank, mem["x"], zs, np.ascontiguousarray(x, F32),
                       np.ones(len(x), bool) if live is None else live, y)
            return y
        x_prev = mem["x"]
        proj = linear(p["_R_T"], np.tanh(x_prev))  # r_k . tanh(x_{t-1}), (B, K)
        if self.modulator:
            z_prev, a_z = mem["z"], p["_a_z"]
            drive_z = np.tanh(linear(p["W_z"], z_prev) + linear(p["B_z"], x, p["b_z"]))
            z = (F32(1) - a_z) * z_prev + a_z * drive_z
            proj *= sigmoid(linear(p["A"], z, p["c"]))  # s_t scales the rank-one components
            mem["z"] = keep_dead(z, z_prev, live)
        a = p["_a"]
        drive = linear(p["L"], proj) + linear(p["B"], x, p["b"])
        h = gate(p, (F32(1) - a) * x_prev + a * drive)  # a masked unit stays at x = 0, tanh 0 = 0
        mem["x"] = keep_dead(h, x_prev, live)
        return linear(p["W_o"], np.tanh(h), p["b_o"])
