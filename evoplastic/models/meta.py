"""Non-plastic baselines (method §3): Meta-RNN, Meta-LSTM, Meta-DNN and DNN.

Their genome is an ordinary network; whatever they learn within a lifetime lives in the hidden
state (Meta-RNN, Meta-LSTM) or nowhere (the feed-forward nets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models import kernels as K
from evoplastic.models import meta_kernels as MK
from evoplastic.models.base import F32, N_IN, N_OUT, Model, gate, keep_dead, linear, sigmoid
from evoplastic.models.dec_kernels import with_packed


def _prepare(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Compiled path: flat parameters ``_g``, offsets ``_lay`` and ``W`` transposed, ``_wt``."""
    q = dict(p)
    if K.HAVE_NUMBA:
        with_packed(q, MK.META_NAMES)
        q["_wt"] = MK.transpose_w(p)
    return q


def _compiled_step(p, mem, x, live, lstm: bool) -> np.ndarray:
    y = np.empty((len(x), N_OUT), F32)
    live = np.ones(len(x), bool) if live is None else live
    MK.meta_rows(p["_g"], p["_lay"][0], lstm, p["_wt"], mem["h"], mem["c"] if lstm else mem["h"],
                 np.ascontiguousarray(x, F32), live, y)
    return y


@dataclass(frozen=True)
class MetaRNN(Model):
    """``h_t = tanh(W [x_t; h_{t-1}] + b)`` (input first), ``y = W_o h_t + b_o``."""

    id = "meta-rnn"
    doc = "recurrent net, learning only in its hidden state"
    maskable = True

    def param_shapes(self):
        h = self.hidden
        return [("W", (h, N_IN + h)), ("b", (h,)), ("W_o", (N_OUT, h)), ("b_o", (N_OUT,))]

    def memory_shapes(self):
        return {"h": (self.hidden,)}

    def prepare(self, p):
        return _prepare(p)

    def step(self, p, mem, x, live=None):
        if "_g" in p:  # compiled (models/meta_kernels.py), the fused engine's own kernel
            return _compiled_step(p, mem, x, live, False)
        h = gate(p, np.tanh(linear(p["W"], np.concatenate([x, mem["h"]], axis=1), p["b"])))
        mem["h"] = keep_dead(h, mem["h"], live)
        return linear(p["W_o"], h, p["b_o"])


@dataclass(frozen=True)
class MetaLSTM(Model):
    """``z = W [x_t; h_{t-1}] + b`` split as (g, i, f, o); ``c_t = s(f) c + s(i) tanh(g)``,
    ``h_t = s(o) tanh(c_t)``, ``y = W_o h_t + b_o``."""

    id = "meta-lstm"
    doc = "LSTM, learning only in its hidden and cell state"
    maskable = True

    def param_shapes(self):
        h = self.hidden
        return [("W", (4 * h, N_IN + h)), ("b", (4 * h,)), ("W_o", (N_OUT, h)), ("b_o", (N_OUT,))]

    def memory_shapes(self):
        return {"h": (self.hidden,), "c": (self.hidden,)}

    def prepare(self, p):
        return _prepare(p)

    def step(self, p, mem, x, live=None):
        if "_g" in p:  # compiled (models/meta_kernels.py), the fused engine's own kernel
            return _compiled_step(p, mem, x, live, True)
        H = self.hidden
        z = linear(p["W"], np.concatenate([x, mem["h"]], axis=1), p["b"])
        g, i, f, o = np.tanh(z[:, :H]), sigmoid(z[:, H:2 * H]), sigmoid(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c = gate(p, f * mem["c"] + i * g)  # a masked unit keeps c = 0, so h = o tanh(0) = 0
        h = o * np.tanh(c)
        mem["c"] = keep_dead(c, mem["c"], live)
        mem["h"] = keep_dead(h, mem["h"], live)
        return linear(p["W_o"], h, p["b_o"])


@dataclass(frozen=True)
class MetaDNN(Model):
    """Two tanh layers on the 15 inputs (``dnn``: on the 9 observation values only); no memory."""

    inputs: int = N_IN

    @property
    def id(self) -> str:  # type: ignore[override]
        return "meta-dnn" if self.inputs == N_IN else "dnn"

    doc = "feed-forward net, no memory"

    def param_shapes(self):
        h = self.hidden
        return [("W1", (h, self.inputs)), ("b1", (h,)), ("W2", (h, h)), ("b2", (h,)),
                ("W_o", (N_OUT, h)), ("b_o", (N_OUT,))]

    def memory_shapes(self):
        return {}

    def step(self, p, mem, x, live=None):
        h1 = np.tanh(linear(p["W1"], np.ascontiguousarray(x[:, :self.inputs]), p["b1"]))
        h2 = np.tanh(linear(p["W2"], h1, p["b2"]))
        return linear(p["W_o"], h2, p["b_o"])
