"""Exceptions that cross module boundaries (the CLI maps them to exit codes).

:class:`UserError` is the one class of expected errors: a bad config, file, task set or command
line, or a run directory that does not match. The CLI prints its message as one line and exits 2.
Any other exception is a bug and keeps its traceback. ``UserError`` derives from ``ValueError`` so
that library callers catching ``ValueError`` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """An expected error: the message is one line that says what is wrong and, where it can, what
    to do about it."""


class NoWorkersError(RuntimeError):
    """Every worker actor is gone and none can be started."""


class Stop(BaseException):
    """SIGINT/SIGTERM arrived: stop, checkpoint the last completed generation if training, exit.

    ``args[0]`` is the signal name; a command may re-raise it with a note on what was kept.
    """
