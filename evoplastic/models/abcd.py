"""PRNN with the full alpha-ABCD rule (method §3): full matrices A, B, C, D per plastic weight.

``Delta = 0.05 (A*(post pre^T) + B*(post 1^T) + C*(1 pre^T) + D)``; modulated ``W += m Delta``
(no 0.2), unmodulated ``W += Delta``. Same recurrence and memory layout as DecPRNN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models import abcd_kernels as AK
from evoplastic.models import kernels as K
from evoplastic.models.base import F32, N_IN, N_OUT, Model, gate, keep_dead, linear, sigmoid
from evoplastic.models.dec import _modulator_shapes
from evoplastic.models.dec_kernels import MOD_CODES, with_packed


@dataclass(frozen=True)
class PRNN(Model):
    modulation: str = "none"

    @property
    def id(self) -> str:  # type: ignore[override]
        return {"none": "prnn", "pre": "prnn-predn", "post": "prnn-postdn"}[self.modulation]

    doc = "plastic RNN with full alpha-ABCD rules (method §3)"
    maskable = True

    def param_shapes(self):
        h = self.hidden
        rules = [(f"{blk}.{r}", (h, d)) for blk, d in (("h", h), ("x", N_IN)) for r in "ABCD"]
        return ([("W_o", (N_OUT, h)), ("b_o", (N_OUT,)), ("b", (h,))] + rules
                + _modulator_shapes(self.modulation, 2, N_IN, h))

    def memory_shapes(self):
        return {"W": (self.hidden, self.hidden + N_IN), "h": (self.hidden,)}

    def prepare(self, p):
        """Fuse the h and x rule matrices to match the fused memory ``[W_h | W_x]``."""
        q = dict(p)
        for r in "ABCD":
            q[r] = np.concatenate([p[f"h.{r}"], p[f"x.{r}"]], axis=2)
        return self._compiled_parts(q)

    def _compiled_parts(self, q):
        """Compiled path (models/abcd_kernels.py): flat parameters ``_g``, offsets ``_lay``, the
        rule matrices transposed ``_rT`` (B, 4, H + 15, H)."""
        if K.HAVE_NUMBA:
            with_packed(q, AK.PRNN_NAMES)
            q["_rT"] = AK.transpose_rules(q)
        return q

    def init_memory(self, batch, params=None):
        """``W`` (B, H, H + 15) (numpy path) or ``WT`` (B, H + 15, H) (compiled path), ``h``; zero."""
        h, w = self.hidden, self.hidden + N_IN
        mem = {"h": np.zeros((batch, h), F32)}
        if K.HAVE_NUMBA:
            mem["WT"] = np.zeros((batch, w, h), F32)
        else:
            mem["W"] = np.zeros((batch, h, w), F32)
        return mem

    def memory_state(self, p, mem):
        w = mem["W"] if "W" in mem else mem["WT"].transpose(0, 2, 1)
        return {"W": np.ascontiguousarray(w), "h": mem["h"].copy()}

    def step(self, p, mem, x, live=None):
        if "WT" in mem:  # compiled, the fused engine's own kernel
            y = np.empty((len(x), N_OUT), F32)
            live = np.ones(len(x), bool) if live is None else live
            AK.prnn_rows(p["_g"], p["_lay"][0], MOD_CODES[self.modulation], p["_rT"], mem["WT"], mem["h"],
                         np.ascontiguousarray(x, F32), live, y)
            return y
        H = self.hidden
        w, h_prev = mem["W"], mem["h"]
        pre = np.concatenate([h_prev, x], axis=1)
        h = gate(p, np.tanh(linear(w, pre, p["b"])))
        y = linear(p["W_o"], h, p["b_o"])
        if self.modulation == "post":
            m = sigmoid(linear(p["m.W"], h, p["m.b"]))
        elif self.modulation == "pre":
            m = sigmoid(linear(p["m_in.W"], x, p["m_in.b"])) + sigmoid(linear(p["m_h.W"], h_prev, p["m_h.b"]))
        else:
            m = np.ones((len(x), 2), F32)
        if live is not None:
            m = m * live[:, None]
        col = np.empty((len(x), H + N_IN), F32)  # per-column scale: m[0] on W_h, m[1] on W_x
        col[:, :H] = F32(0.05) * m[:, :1]
        col[:, H:] = F32(0.05) * m[:, 1:2]
        post, pre_c = h[:, :, None], (pre * col)[:, None, :]
        delta = p["A"] * (post * pre_c) + p["B"] * (post * col[:, None, :]) + p["C"] * pre_c
        delta += p["D"] * col[:, None, :]
        w += delta
        mem["h"] = keep_dead(h, h_prev, live)
        return y
