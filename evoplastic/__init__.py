"""evoplastic: evolve decomposed plasticity rules for information-bottlenecked meta-learning."""

__version__ = "0.1.0"
