"""Decomposed plasticity (SPEC 3, "Dec"): DecPRNN and DecPDNN with NoDN, PreDN or PostDN.

The Dec rule of a plastic matrix W (d_y x d_x) is the rank-4 update
``(A_y*post)(A_x*pre)^T + (B_y*post) B_x^T + C_y (C_x*pre)^T + D_y D_x^T``, applied as one batched
product ``U V^T`` with U (d_y, 4) and V (d_x, 4): the four full rule matrices are never built.
Modulated: ``W += 0.2 m Dec``; unmodulated: ``W += Dec`` (no 0.2). No clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models import kernels
from evoplastic.models.base import F32, N_IN, N_OUT, Model, gate, keep_dead, linear, sigmoid

_DEC = ("Ay", "Ax", "By", "Bx", "Cy", "Cx", "Dy", "Dx")
MODULATIONS = ("none", "pre", "post")


def dec_shapes(prefix: str, d_y: int, d_x: int) -> list[tuple[str, tuple[int, ...]]]:
    """The 8 Dec vectors of one plastic matrix, named ``prefix.Ay`` ... ``prefix.Dx``."""
    return [(f"{prefix}.{v}", (d_y,) if v.endswith("y") else (d_x,)) for v in _DEC]


def prepare_dec(p: dict[str, np.ndarray], name: str, prefixes: tuple[str, ...]) -> None:
    """Stack the Dec vectors of one or two plastic matrices sharing ``post`` (once per batch).

    Adds ``name.ay`` ... (B, 2, Y) (block 0 and block 1 post-side vectors; one prefix is used
    for both) and ``name.ax`` ... (B, X) (pre-side vectors of the blocks side by side).
    """
    two = prefixes if len(prefixes) == 2 else prefixes * 2
    for v in ("Ay", "By", "Cy", "Dy"):
        p[f"{name}.{v.lower()}"] = np.ascontiguousarray(np.stack([p[f"{q}.{v}"] for q in two], axis=1))
    for v in ("Ax", "Bx", "Cx", "Dx"):
        p[f"{name}.{v.lower()}"] = np.ascontiguousarray(np.concatenate([p[f"{q}.{v}"] for q in prefixes], axis=1))


def dec_update(w: np.ndarray, p: dict[str, np.ndarray], name: str, post: np.ndarray, pre: np.ndarray,
               scale: np.ndarray, split: int, x_now: np.ndarray | None = None,
               z_out: np.ndarray | None = None) -> None:
    """SPEC 3 Dec update, rank 4 per block, in place (see :func:`kernels.dec_update`)."""
    g = lambda v: p[f"{name}.{v}"]  # noqa: E731
    kernels.dec_update(w, post, pre, g("ay"), g("by"), g("cy"), g("dy"), g("ax"), g("bx"), g("cx"),
                       g("dx"), np.ascontiguousarray(scale, dtype=F32), split, x_now, z_out)


def _modulator_shapes(modulation: str, outputs: int, pre_in: int, hidden: int) -> list:
    if modulation == "post":
        return [("m.W", (outputs, hidden)), ("m.b", (outputs,))]
    if modulation == "pre":
        return [("m_in.W", (outputs, pre_in)), ("m_in.b", (outputs,)),
                ("m_h.W", (outputs, hidden)), ("m_h.b", (outputs,))]
    return []


def _scales(modulation: str, m: np.ndarray | None, live: np.ndarray | None, batch: int) -> np.ndarray:
    """(B, k) update scales: 0.2 m when modulated (SPEC 3), else 1; 0 for finished lifetimes."""
    s = np.ones((batch, 1), F32) if m is None else F32(0.2) * m
    if live is not None:
        s = s * live[:, None]
    return s


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

    doc = "decomposed plastic RNN (SPEC 3)"
    maskable = True

    def param_shapes(self):
        h = self.hidden
        return ([("W_o", (N_OUT, h)), ("b_o", (N_OUT,)), ("b", (h,))]
                + dec_shapes("h", h, h) + dec_shapes("x", h, N_IN)
                + _modulator_shapes(self.modulation, 2, N_IN, h))

    def memory_shapes(self):
        return {"W": (self.hidden, self.hidden + N_IN), "h": (self.hidden,)}

    def prepare(self, p):
        q = dict(p)
        prepare_dec(q, "dec", ("h", "x"))
        return q

    def flush(self, p, mem):
        """Apply the pending Dec update so that ``mem["W"]`` holds the current weights."""
        if "_pend_post" in mem:
            dec_update(mem["W"], p, "dec", mem.pop("_pend_post"), mem.pop("_pend_pre"), mem.pop("_pend_scale"),
                       self.hidden)

    def memory_state(self, p, mem):
        out = {k: v.copy() for k, v in mem.items()}
        self.flush(p, out)
        return out

    def step(self, p, mem, x, live=None):
        H = self.hidden
        w, h_prev = mem["W"], mem["h"]
        pre = np.concatenate([h_prev, x], axis=1)  # [h_{t-1}; x_t]
        # The previous step's Dec update is applied here, in the same pass over W that computes
        # this step's pre-activation (one pass per step). Until then it waits in mem["_pend_*"]
        # (see flush()); the maths is SPEC 3's: W_{t-1} = W_{t-2} + update_{t-1}, then W_{t-1} pre_t.
        z = np.empty((len(x), H), F32)
        if "_pend_post" in mem:
            dec_update(w, p, "dec", mem["_pend_post"], mem["_pend_pre"], mem["_pend_scale"], H, pre, z)
        else:
            np.matmul(w, pre[:, :, None], out=z[:, :, None])
        z += p["b"]
        h = gate(p, np.tanh(z))  # a masked unit is 0 for the output, the modulator and the Dec rule
        y = linear(p["W_o"], h, p["b_o"])  # uses h_t from the pre-update weights (SPEC 3)
        m = None
        if self.modulation == "post":
            m = sigmoid(linear(p["m.W"], h, p["m.b"]))
        elif self.modulation == "pre":
            m = sigmoid(linear(p["m_in.W"], x, p["m_in.b"])) + sigmoid(linear(p["m_h.W"], h_prev, p["m_h.b"]))
        s = _scales(self.modulation, m, live, len(x))
        if s.shape[1] == 1:
            s = np.repeat(s, 2, axis=1)
        # Pending update: W_h (columns < H) with (post, pre) = (h_t, h_{t-1}), W_x with (h_t, x_t);
        # scale 0 for finished lifetimes.
        mem["_pend_post"], mem["_pend_pre"], mem["_pend_scale"] = h, pre, np.ascontiguousarray(s)
        mem["h"] = keep_dead(h, h_prev, live)
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

    doc = "decomposed plastic feed-forward net (SPEC 3)"

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

    def prepare(self, p):
        q = dict(p)
        prepare_dec(q, "dec1", ("l1",))
        prepare_dec(q, "dec2", ("l2",))
        return q

    def step(self, p, mem, x, live=None):
        h1 = np.tanh(linear(mem["W1"], x, p["b1"]))
        h2 = np.tanh(linear(mem["W2"], h1, p["b2"]))
        y = linear(p["W_o"], h2, p["b_o"])
        m = None
        if self.modulation == "post":
            m = np.concatenate([sigmoid(linear(p["m1.W"], h1, p["m1.b"])),
                                sigmoid(linear(p["m2.W"], h2, p["m2.b"]))], axis=1)
        elif self.modulation == "pre":
            m = np.concatenate([sigmoid(linear(p["m1.W"], x, p["m1.b"])),
                                sigmoid(linear(p["m2.W"], h1, p["m2.b"]))], axis=1)
        s = _scales(self.modulation, m, live, len(x))
        zero = np.zeros((len(x), 1), F32)
        dec_update(mem["W1"], p, "dec1", h1, x, np.concatenate([s[:, :1], zero], 1), split=N_IN)
        dec_update(mem["W2"], p, "dec2", h2, h1, np.concatenate([s[:, -1:], zero], 1), split=self.hidden)
        return y
