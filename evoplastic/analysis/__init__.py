"""Analyses of evolved genomes: what the memories hold (``memory``) and the structure
measures of masked models (``structure``). Figures need matplotlib (the ``plots`` extra)."""
