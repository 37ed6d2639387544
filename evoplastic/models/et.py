"""PRNN with eligibility traces (method §3, "ET"), PostDN as in the paper.

``W_x`` is an evolved static matrix; ``W_h`` is plastic: per step
``E_t = eta (post pre^T) + (1 - eta) E_{t-1}`` (E starts at 0), ``W_h += 0.001 m E_t``, then
``W_h`` is clipped to [-5, 5], with ``(post, pre) = (h_t, h_{t-1})``, ``m = sigmoid(W_m h_t + b_m)[0]``
and ``eta = 0.5 e / (|e| + 1) + 0.5`` for ``e = g + 10``.

``g`` has two entries: ``g[0]`` is ``W_h``'s trace gene; ``g[1]`` belongs to the static ``W_x`` in
the reference code, which evolves it but never uses it. Keeping it makes N_Gene equal method §3's
1,481 and lets reference checkpoints map one to one; it has no effect. Likewise the modulator has
two outputs and only ``m[0]`` is used.

``prnn-scratch-et`` starts ``W_h`` at 0 each lifetime; ``prnn-et`` starts it at the evolved ``W_h0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models.base import F32, N_IN, N_OUT, Model, gate, keep_dead, linear, sigmoid

ET_RATE = 0.001  # method §3: W += 0.001 m E
CLIP = 5.0


@dataclass(frozen=True)
class PRNNET(Model):
    scratch: bool = True

    @property
    def id(self) -> str:  # type: ignore[override]
        return "prnn-scratch-et" if self.scratch else "prnn-et"

    doc = "plastic RNN with eligibility traces, PostDN (method §3)"
    maskable = True

    def param_shapes(self):
        h = self.hidden
        shapes = [("W_o", (N_OUT, h)), ("b_o", (N_OUT,)), ("b", (h,)), ("W_x", (h, N_IN)), ("g", (2,)),
                  ("m.W", (2, h)), ("m.b", (2,))]
        return shapes if self.scratch else shapes + [("W_h0", (h, h))]

    def memory_shapes(self):
        h = self.hidden
        return {"W_h": (h, h), "E": (h, h), "h": (h,)}

    def init_memory(self, batch, params=None):
        mem = super().init_memory(batch, params)
        if not self.scratch:
            if params is None:
                raise ValueError("prnn-et starts W_h at the evolved W_h0: pass the batch's params")
            np.copyto(mem["W_h"], params["W_h0"])  # method §3 clips after updates, not the start
        return mem

    def prepare(self, p):
        q = dict(p)
        e = p["g"][:, 0] + F32(10.0)
        q["eta"] = (F32(0.5) * e / (np.abs(e) + F32(1.0)) + F32(0.5)).astype(F32)
        return q

    def step(self, p, mem, x, live=None):
        w, e_trace, h_prev = mem["W_h"], mem["E"], mem["h"]
        h = gate(p, np.tanh(linear(w, h_prev) + linear(p["W_x"], x, p["b"])))
        y = linear(p["W_o"], h, p["b_o"])
        m = sigmoid(linear(p["m.W"], h, p["m.b"]))[:, 0]
        eta = p["eta"] if live is None else p["eta"] * live
        rate = F32(ET_RATE) * m if live is None else F32(ET_RATE) * m * live
        outer = h[:, :, None] * h_prev[:, None, :]
        # E += eta (outer - E) == eta outer + (1 - eta) E; eta = 0 leaves E exactly as it was.
        e_trace += eta[:, None, None] * (outer - e_trace)
        w += rate[:, None, None] * e_trace
        np.clip(w, -CLIP, CLIP, out=w)
        mem["h"] = keep_dead(h, h_prev, live)
        return y
