"""The paper's published files for tests: from the user's cache, else installed from a local copy.

A test asks for a file by its short name (``paper-genome``, ``paper-maze9``, ``paper-maze15``).
If ``evoplastic reference fetch`` has installed it, that copy is used. Otherwise, if the project's
sibling folder ``../shared/reference`` holds byte-identical copies (under other names), they are
installed once per test session into a temporary cache with ``fetch(source=...)``, which checks the
same pinned SHA-256 sums. Otherwise the test is skipped with the command that would enable it. No
test touches the network.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest

from evoplastic import reference_files

# Local copies for the project's own CI (never required): the folder beside the repository.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"


@functools.cache
def _session_cache() -> Path | None:
    if not SHARED.is_dir():
        return None
    dest = Path(tempfile.mkdtemp(prefix="evoplastic-paperfiles-"))
    atexit.register(shutil.rmtree, dest, True)
    reference_files.fetch(dest, SHARED, report=lambda line: None)
    return dest


def paper_file(name: str) -> Path:
    """The path of published file ``name``; skips the calling test if it is nowhere to be had."""
    f = reference_files.FILES[name]
    cached = reference_files.cache_dir() / f.filename
    if cached.is_file() and reference_files.sha256_file(cached) == f.sha256:
        return cached
    local = _session_cache()
    if local is None:
        pytest.skip(f"{name} not installed: run `evoplastic reference fetch` (needs the network once)")
    return local / f.filename
