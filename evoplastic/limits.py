"""Upper bounds on every input that can expand: config sizes, files and what their headers claim.

Each bound is checked before memory is taken, and a breach is a one-line :class:`UserError` that
names the limit. The figures are far above anything the paper's experiments use (hidden 64,
population 360, 15x15 mazes, 2,048-task suites) and far below what would swap a workstation.
"""

from __future__ import annotations

import os
from pathlib import Path

from evoplastic.errors import UserError

MAX_HIDDEN = 4096  # hidden units of a model
MAX_POPSIZE = 100_000  # genomes per generation
MAX_POPULATION_BYTES = 4 << 30  # popsize x genes x 8 bytes: the strategy's float64 population
MAX_BATCH_BYTES = 4 << 30  # workers.batch x a lifetime's memories x 4 bytes, per worker
MAX_TASKS = 1_000_000  # tasks in one set (schedule, validation count, task files)
MAX_TASK_BYTES = 1 << 30  # tasks x size x size bytes of walls
MAX_NPZ_BYTES = 1 << 30  # decompressed size of one array in an .npz (genome, checkpoint, task file)
MAX_NPZ_MEMBERS = 256  # arrays in one .npz
MAX_PICKLE_BYTES = 1 << 30  # a reference pickle file, and any array it asks to allocate
MAX_YAML_BYTES = 1 << 20  # a config, sweep or protocol file
MAX_YAML_NODES = 100_000  # values in a YAML document once its aliases are expanded
MAX_GENERATIONS = 100_000_000


def gib(n: int) -> str:
    """``n`` bytes as a short human figure."""
    return f"{n / (1 << 30):.3g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.3g} MiB"


def check_file_size(path: str | Path, limit: int, what: str) -> int:
    """The size of the regular file ``path``; UserError if it exceeds ``limit`` bytes.

    Raises FileNotFoundError / IsADirectoryError (OSErrors naming the path) when ``path`` is
    missing or a directory, so callers and the CLI report them like any other file error.
    """
    path = Path(path)
    st = os.stat(path)
    if not path.is_file():
        raise IsADirectoryError(21, "is a directory, expected a file", str(path))
    if st.st_size > limit:
        raise UserError(f"{path}: {what} of {gib(st.st_size)} exceeds the limit of {gib(limit)}")
    return st.st_size
