"""Exclusive ownership of a run or sweep directory for the whole of one command.

``with DirLock(path, "run directory"):`` takes ``fcntl.flock`` on ``PATH/.lock`` (the kernel drops
it when the process dies, however it dies) and writes the holder (PID, host, command, start time)
into the file, so a second command refuses in one line naming the holder. A lock file that still
names a holder but is not locked was left by a process that died: it is taken over, saying so.
If the command fails before writing anything, a directory it created for the lock is removed again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from evoplastic.errors import UserError

LOCK_NAME = ".lock"
log = logging.getLogger("evoplastic.lock")


class DirLock:
    """Context manager holding ``PATH/.lock`` exclusively (see the module docstring).

    Args:
        path: the run or sweep directory (created if missing).
        what: "run directory" or "sweep directory", for messages.
    """

    def __init__(self, path: str | Path, what: str = "run directory") -> None:
        self.path, self.what = Path(path), what
        self._fd: int | None = None
        self._made_dir = self._made_file = False

    def __enter__(self) -> "DirLock":
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: exists and is not a directory; choose another {self.what}")
        self._made_dir = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK_NAME
        self._made_file = not lock.exists()
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise UserError(f"{self.path}: this {self.what} is in use by {holder}; wait for that command to "
                            "end or stop it, or use another directory") from None
        old = os.pread(fd, 4096, 0)
        if old.strip():
            log.warning("%s: took over the lock left by %s (that process is gone)", self.path, _describe(old))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(sys.argv),
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        lock = self.path / LOCK_NAME
        try:
            if kind is not None and self._made_file and [p.name for p in self.path.iterdir()] == [LOCK_NAME]:
                lock.unlink()  # the command failed before writing anything: leave nothing behind
                if self._made_dir:
                    self.path.rmdir()
            else:
                os.ftruncate(fd, 0)  # a clean release: an empty lock file names no holder
        except OSError:
            pass  # releasing must not hide the command's own error
        finally:
            os.close(fd)


def _describe(raw: bytes) -> str:
    """'PID 123 on host (evoplastic train ...) since ...' from a lock file's contents."""
    try:
        info = json.loads(raw.decode())
        return f"PID {info['pid']} on {info['host']} ({info['command']}) since {info['since']}"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another process (its lock file names no holder)"
