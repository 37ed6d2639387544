"""Structure masks (after NeuronML's "Neuromodulated Meta-Learning"): evolve which
hidden units a recurrent model uses.

``Masked(inner)`` (id ``<inner id>+mask``, e.g. ``decprnn-postdn+mask``) is the inner model plus
one gene per hidden unit, ``mask`` (H,), appended at the end of the genome. Unit j is *active*
where ``mask[j] > 0``: a hard 0/1 gate, so that a genome whose mask genes are all positive
computes exactly (bit for bit) what the unmasked model computes with the other genes.

Where the gate acts: on the hidden activity, right where the inner model computes it each step
(``base.gate``; before the output head, the modulators, the plasticity rules and the memory
write). A masked unit therefore outputs 0 at every step, its hidden state stays 0, and its plastic
weights see 0 activity on its side. (Its incoming plastic weights may still drift through rule
terms that do not involve its activity, but they only ever multiply into its gated output, so
they change nothing.) Per model: DecPRNN, PRNN, ET and Meta-RNN gate ``h``; Meta-LSTM gates the
cell ``c`` (then ``h = o tanh(0) = 0``); NM-RNN and LR-RNN gate the output-generating state ``x``
(the N units; the M neuromodulatory units are not masked).

Frugality: the method §2 fitness pays ``frugality * active_fraction`` (``lifetime.fitness_of``), once,
where ``active_fraction`` is the fraction of active units of the genome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evoplastic.models.base import Model

SUFFIX = "+mask"


@dataclass(frozen=True)
class Masked(Model):
    """A maskable (recurrent) model with one mask gene per hidden unit; see the module docstring."""

    inner: Model | None = None

    def __post_init__(self) -> None:
        if self.inner is None or not self.inner.maskable:
            what = "nothing" if self.inner is None else f"{self.inner.id}, a feed-forward model"
            raise ValueError(f"a structure mask gates the hidden units of a recurrent model, not {what}")
        if self.hidden != self.inner.hidden:
            raise ValueError(f"Masked: hidden {self.hidden} differs from the inner model's {self.inner.hidden}")
        if "mask" in dict(self.inner.param_shapes()):
            raise ValueError(f"{self.inner.id} already has a tensor named 'mask'")

    @property
    def id(self) -> str:  # type: ignore[override]
        return self.inner.id + SUFFIX

    @property
    def doc(self) -> str:  # type: ignore[override]
        return f"{self.inner.doc}, with a structure mask"

    def param_shapes(self):
        return self.inner.param_shapes() + [("mask", (self.hidden,))]

    def memory_shapes(self):
        return self.inner.memory_shapes()

    def init_memory(self, batch, params=None):
        return self.inner.init_memory(batch, params)

    def prepare(self, p):
        prepare = getattr(self.inner, "prepare", None)
        return prepare(p) if prepare is not None else dict(p)

    def step(self, p, mem, x, live=None):
        return self.inner.step(p, mem, x, live)  # the inner model gates with p["mask"] (base.gate)

    def memory_state(self, p, mem):
        return self.inner.memory_state(p, mem)

    def active_fraction(self, genomes: np.ndarray) -> np.ndarray:
        """Fraction of active hidden units (mask gene > 0) per genome, (P,) float64."""
        return (self.unpack(genomes)["mask"] > 0).mean(axis=1, dtype=np.float64)
