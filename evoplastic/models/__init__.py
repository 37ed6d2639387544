"""The model zoo of the paper's Table 1 (method §3), and NM-RNN / LR-RNN, by command-line id.

Tied-rule PRNNs (Evolving & Merging, ``models/tied.py``) are ``prnn-postdn-tied@FILE`` etc.

Any recurrent model id with the suffix ``+mask`` (e.g. ``decprnn-postdn+mask``) is that model with
a structure mask (``models/masked.py``); those ids are not listed in MODEL_IDS.
"""

from __future__ import annotations

from evoplastic.models.abcd import PRNN
from evoplastic.models.base import N_IN, N_OUT, Model
from evoplastic.models.dec import DecPDNN, DecPRNN
from evoplastic.models.et import PRNNET
from evoplastic.models.masked import SUFFIX as MASK_SUFFIX
from evoplastic.models.masked import Masked
from evoplastic.models.meta import MetaDNN, MetaLSTM, MetaRNN
from evoplastic.models.nm import NMRNN
from evoplastic.models.tied import TIED_IDS, make_tied

_FACTORIES = {
    "decprnn": lambda h: DecPRNN(h, "none"),
    "decprnn-predn": lambda h: DecPRNN(h, "pre"),
    "decprnn-postdn": lambda h: DecPRNN(h, "post"),
    "decpdnn": lambda h: DecPDNN(h, "none"),
    "decpdnn-predn": lambda h: DecPDNN(h, "pre"),
    "decpdnn-postdn": lambda h: DecPDNN(h, "post"),
    "prnn": lambda h: PRNN(h, "none"),
    "prnn-predn": lambda h: PRNN(h, "pre"),
    "prnn-postdn": lambda h: PRNN(h, "post"),
    "prnn-et": lambda h: PRNNET(h, scratch=False),
    "prnn-scratch-et": lambda h: PRNNET(h, scratch=True),
    "meta-rnn": lambda h: MetaRNN(h),
    "meta-lstm": lambda h: MetaLSTM(h),
    "meta-dnn": lambda h: MetaDNN(h),
    "dnn": lambda h: MetaDNN(h, inputs=9),
    # New ids go last: the oracle tests seed their genomes from the position in MODEL_IDS.
    "nm-rnn": lambda h: NMRNN(h),
    "lr-rnn": lambda h: NMRNN(h, modulator=0),
}
MODEL_IDS = tuple(_FACTORIES)
MASKABLE_IDS = tuple(m for m in MODEL_IDS if _FACTORIES[m](1).maskable)  # the recurrent ones
# Evolving & Merging (models/tied.py): "<id>@FILE" with a tying file from `evoplastic merge`; kept out
# of MODEL_IDS because the bare id has sizes but no rule assignment to run with.
DERIVED_IDS = TIED_IDS


def get_model(model_id: str, hidden: int = 64) -> Model:
    """The model called ``model_id`` with ``hidden`` units (``<id>+mask``: with a structure mask)."""
    base, plus, suffix = model_id.partition("+")
    if plus:
        if plus + suffix != MASK_SUFFIX:
            raise ValueError(f"unknown model suffix {plus + suffix!r} in {model_id!r}; the only suffix is "
                             f"{MASK_SUFFIX!r} (structure mask)")
        inner = get_model(base, hidden)
        if not inner.maskable:
            raise ValueError(f"{model_id!r}: a structure mask gates the hidden units of a recurrent model "
                             f"and {base} is feed-forward; maskable models: {', '.join(MASKABLE_IDS)}")
        return Masked(inner.hidden, inner)
    if model_id.partition("@")[0] in TIED_IDS:
        return make_tied(model_id, hidden)
    try:
        factory = _FACTORIES[model_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(model_id, MODEL_IDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {model_id!r}{hint}; models: {', '.join(MODEL_IDS)}") from None
    if int(hidden) != hidden or hidden < 1:
        raise ValueError(f"hidden size must be a positive integer, got {hidden!r}")
    return factory(int(hidden))


__all__ = ["DERIVED_IDS", "MASKABLE_IDS", "MODEL_IDS", "Model", "N_IN", "N_OUT", "get_model"]
