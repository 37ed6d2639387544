"""Exceptions that cross module boundaries (the CLI maps them to exit codes)."""

from __future__ import annotations


class NoWorkersError(RuntimeError):
    """Every worker actor is gone and none can be started."""


class Stop(BaseException):
    """SIGINT/SIGTERM arrived during training: checkpoint the last completed generation, exit."""
