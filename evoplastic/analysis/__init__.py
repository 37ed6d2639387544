"""Analyses of evolved genomes (issue 13): what the memories hold (``memory``) and the structure
measures of masked models (``structure``). Figures need matplotlib (the ``plots`` extra)."""
