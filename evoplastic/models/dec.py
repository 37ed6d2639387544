"""Decomposed plasticity (method §3, "Dec"): DecPRNN and DecPDNN with NoDN, PreDN or PostDN.

The Dec rule of a plastic matrix W (d_y x d_x) is the rank-4 update
``(A_y*post)(A_x*pre)^T + (B_y*post) B_x^T + C_y (C_x*pre)^T + D_y D_x^T``, computed entry by
entry from the eight vectors: the four full rule matrices are never built.
Modulated: ``W += 0.2 m Dec``; unmodulated: ``W += Dec`` (no 0.2). No clipping.

A step of one lifetime is one compiled kernel (:mod:`.dec_kernels`), the same for the lock-step
batch and the fused engine, so that a lifetime's numbers never depend on its batch-mates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models import dec_kernels as DK
from evoplastic.models import kernels as K
from evoplastic.models.base import F32, N_IN, N_OUT, Model

_DEC = ("Ay", "Ax", "By", "Bx", "Cy", "Cx", "Dy", "Dx")
MODULATIONS = ("none", "pre", "post")


def dec_shapes(prefix: str, d_y: int, d_x: int) -> list[tuple[str, tuple[int, ...]]]:
    """The 8 Dec vectors of one plastic matrix, named ``prefix.Ay`` ... ``prefix.Dx``."""
    return [(f"{prefix}.{v}", (d_y,) if v.endswith("y") else (d_x,)) for v in _DEC]


def _modulator_shapes(modulation: str, outputs: int, pre_in: int, hidden: int) -> list:
    if modulation == "post":
        return [("m.W", (outputs, hidden)), ("m.b", (outputs,))]
    if modulation == "pre":
        return [("m_in.W", (outputs, pre_in)), ("m_in.b", (outputs,)),
                ("m_h.W", (outputs, hidden)), ("m_h.b", (outputs,))]
    return []


@dataclass(frozen=True)
class DecPRNN(Model):
    """Plastic recurrent layer: ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``, ``y_t = W_o h_t + b_o``.

    Memory: ``W`` (H, H + 15) holding ``[W_h | W_x]`` (so the forward pass is one matvec on
    ``[h_{t-1}; x_t]``) and ``h`` (H,). N_Mem = H*H + 15*H + H.
    """

    modulation: str = "none"

    @property
    def id(self) -> str:  # type: ignore[override]
        return {"none": "decprnn", "pre": "decprnn-predn", "post": "decprnn-postdn"}[self.modulation]

    doc = "decomposed plastic RNN (method §3)"
    maskable = True

    def param_shapes(self):
        h = self.hidden
        return ([("W_o", (N_OUT, h)), ("b_o", (N_OUT,)), ("b", (h,))]
                + dec_shapes("h", h, h) + dec_shapes("x", h, N_IN)
                + _modulator_shapes(self.modulation, 2, N_IN, h))

    def memory_shapes(self):
        return {"W": (self.hidden, self.hidden + N_IN), "h": (self.hidden,)}

    def init_memory(self, batch, params=None):
        """State of ``batch`` new lifetimes, all zero (see :mod:`.dec_kernels`): ``WT`` (B, H + 15,
        H) the transposed ``[W_h | W_x]``, ``h`` (B, H) and the pending update ``_pp``, ``_pr``,
        ``_ps`` (scale 0: none)."""
        h, x = self.hidden, self.hidden + N_IN
        return {"WT": np.zeros((batch, x, h), F32), "h": np.zeros((batch, h), F32),
                "_pp": np.zeros((batch, h), F32), "_pr": np.zeros((batch, x), F32),
                "_ps": np.zeros((batch, 2), F32)}

    def prepare(self, p):
        return DK.with_packed(dict(p), DK.DECRNN_NAMES)

    def memory_state(self, p, mem):
        """``W`` (B, H, H + 15) = ``[W_h | W_x]`` with the pending update applied, and ``h``."""
        wt, pp, pr, ps = (mem[k].copy() for k in ("WT", "_pp", "_pr", "_ps"))
        flush = DK.decrnn_flush_rows if K.HAVE_NUMBA else DK.decrnn_flush_rows_np
        flush(p["_g"], p["_lay"][0], wt, pp, pr, ps)
        return {"W": np.ascontiguousarray(wt.transpose(0, 2, 1)), "h": mem["h"].copy()}

    def step(self, p, mem, x, live=None):
        # method §3, one compiled kernel per lifetime (models/dec_kernels.py): the previous step's
        # Dec update is applied in the same pass over W that computes this step's pre-activation.
        y = np.empty((len(x), N_OUT), F32)
        live = np.ones(len(x), bool) if live is None else live
        rows = DK.decrnn_rows if K.HAVE_NUMBA else DK.decrnn_rows_np
        rows(p["_g"], p["_lay"][0], DK.MOD_CODES[self.modulation], mem["WT"], mem["h"], mem["_pp"],
             mem["_pr"], mem["_ps"], np.ascontiguousarray(x, F32), live, y)
        return y


@dataclass(frozen=True)
class DecPDNN(Model):
    """Plastic feed-forward: ``h1 = tanh(W1 x + b1)``, ``h2 = tanh(W2 h1 + b2)``, ``y = W_o h2 + b_o``.

    ``W1`` (H, 15) and ``W2`` (H, H) plastic with Dec; PostDN ``m1 = sigmoid(FC(h1))``,
    ``m2 = sigmoid(FC(h2))``; PreDN ``m1 = sigmoid(FC(x))``, ``m2 = sigmoid(FC(h1))`` (1 output each).
    """

    modulation: str = "none"

    @property
    def id(self) -> str:  # type: ignore[override]
        return {"none": "decpdnn", "pre": "decpdnn-predn", "post": "decpdnn-postdn"}[self.modulation]

    doc = "decomposed plastic feed-forward net (method §3)"

    def param_shapes(self):
        h = self.hidden
        mods = []
        if self.modulation == "post":
            mods = [("m1.W", (1, h)), ("m1.b", (1,)), ("m2.W", (1, h)), ("m2.b", (1,))]
        elif self.modulation == "pre":
            mods = [("m1.W", (1, N_IN)), ("m1.b", (1,)), ("m2.W", (1, h)), ("m2.b", (1,))]
        return ([("W_o", (N_OUT, h)), ("b_o", (N_OUT,)), ("b1", (h,)), ("b2", (h,))]
                + dec_shapes("l1", h, N_IN) + dec_shapes("l2", h, h) + mods)

    def memory_shapes(self):
        return {"W1": (self.hidden, N_IN), "W2": (self.hidden, self.hidden)}

    def init_memory(self, batch, params=None):
        """``W1T`` (B, 15, H) and ``W2T`` (B, H, H): the plastic matrices, transposed, zero."""
        h = self.hidden
        return {"W1T": np.zeros((batch, N_IN, h), F32), "W2T": np.zeros((batch, h, h), F32)}

    def prepare(self, p):
        return DK.with_packed(dict(p), DK.DECPDNN_NAMES)

    def memory_state(self, p, mem):
        """``W1`` (B, H, 15) and ``W2`` (B, H, H)."""
        return {"W1": np.ascontiguousarray(mem["W1T"].transpose(0, 2, 1)),
                "W2": np.ascontiguousarray(mem["W2T"].transpose(0, 2, 1))}

    def step(self, p, mem, x, live=None):
        y = np.empty((len(x), N_OUT), F32)
        live = np.ones(len(x), bool) if live is None else live
        rows = DK.decpdnn_rows if K.HAVE_NUMBA else DK.decpdnn_rows_np
        rows(p["_g"], p["_lay"][0], DK.MOD_CODES[self.modulation], mem["W1T"], mem["W2T"],
             np.ascontiguousarray(x, F32), live, y)
        return y
