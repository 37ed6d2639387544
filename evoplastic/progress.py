"""What a running training shows: a first line at once, then progress with timing, ETA and fitness.

On a terminal one live line is redrawn after every generation; otherwise (a log file, a batch job)
a full line is printed every ``interval`` seconds and at the end. Lines carry a label (the sweep
point's name) when several runs print to the same stream. Optionally every metric row also goes to
TensorBoard through tensorboardX (``pip install 'evoplastic[tensorboard]'``).
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h02m"``, ``95`` -> ``"1m35s"``, ``7.2`` -> ``"7.2s"``; NaN/inf -> ``"?"``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h < 48 else f"{h // 24}d{h % 24:02d}h"


class Progress:
    """Progress of one run from generation ``start`` to ``total``.

    Args:
        total: the generation the run stops at.
        start: the generation it starts (or resumes) from.
        label: prefix of every line (a sweep point's name), or None.
        stream: where lines go (default: standard error).
        interval: seconds between lines when ``stream`` is not a terminal.
        window: generations the seconds-per-generation estimate averages over.
    """

    def __init__(self, total: int, start: int = 0, label: str | None = None, stream: TextIO | None = None,
                 interval: float = 30.0, window: int = 20) -> None:
        self.total, self.start = int(total), int(start)
        self.prefix = f"[{label}] " if label else ""
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = float(interval)
        self.t0 = time.monotonic()
        self._last_line = -math.inf
        self._times: deque[float] = deque(maxlen=window)
        self._live = False
        self.validation: float | None = None

    def say(self, text: str) -> None:
        """One plain line now (ends a live line first)."""
        self._end_live()
        print(self.prefix + text, file=self.stream, flush=True)

    def line(self, row: dict[str, Any], best_validation: float) -> str:
        """The progress text for a metrics row of ``evoplastic.train`` (generation, seconds, fitness)."""
        g = int(row["generation"])
        if row.get("seconds") not in (None, ""):
            self._times.append(float(row["seconds"]))
        if row.get("validation") not in (None, ""):
            self.validation = float(row["validation"])
        per_gen = sum(self._times) / len(self._times) if self._times else math.nan
        eta = per_gen * (self.total - g)
        val = "-" if self.validation is None else f"{self.validation:+.3f}"
        best_val = f"{best_validation:+.3f}" if math.isfinite(best_validation) else "-"
        fit = (f"fitness best {float(row['best_fitness']):+.3f} mean {float(row['mean_fitness']):+.3f}"
               if row.get("best_fitness") not in (None, "") else "fitness -")
        return (f"gen {g}/{self.total}  {format_duration(time.monotonic() - self.t0)} elapsed  "
                f"{per_gen:.2f} s/gen  ETA {format_duration(eta)}  {fit}  "
                f"validation {val} (best {best_val})")

    def update(self, row: dict[str, Any], best_validation: float) -> None:
        """Show the progress after the generation of ``row``."""
        text = self.line(row, best_validation)
        g = int(row["generation"])
        if self.tty:
            print(f"\r\033[K{self.prefix}{text}", end="", file=self.stream, flush=True)
            self._live = True
        elif time.monotonic() - self._last_line >= self.interval or g >= self.total or g == self.start + 1:
            print(self.prefix + text, file=self.stream, flush=True)
            self._last_line = time.monotonic()

    def _end_live(self) -> None:
        if self._live:
            print(file=self.stream, flush=True)
            self._live = False

    def close(self) -> None:
        self._end_live()


class TensorBoard:
    """Metric rows as TensorBoard scalars under ``run_dir/tensorboard`` (tag ``evoplastic/<metric>``,
    step = generation). Needs tensorboardX; :func:`open_tensorboard` explains when it is missing."""

    def __init__(self, log_dir: Path) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(log_dir))

    def add(self, row: dict[str, Any]) -> None:
        step = int(row["generation"])
        for key, value in row.items():
            if key != "generation" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"evoplastic/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(run_dir: Path) -> TensorBoard:
    """A :class:`TensorBoard` writer for ``run_dir``.

    Raises:
        ImportError: tensorboardX is not installed (the message says how to install it).
    """
    try:
        return TensorBoard(Path(run_dir) / "tensorboard")
    except ImportError:
        raise ImportError("--tensorboard needs tensorboardX: pip install 'evoplastic[tensorboard]' "
                          "(or pip install tensorboardX)") from None
