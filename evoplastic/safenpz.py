"""Bounded reading of ``.npz`` files (genomes, checkpoints, task files).

``np.load`` trusts a file: a small member that inflates to gigabytes, or an ``.npy`` header that
claims 2^33 floats, takes that memory before anything can object. :func:`read` checks, before
reading any data, that each member's decompressed size and each header's claimed shape stay under
a limit (and agree with each other), and that no member holds pickled objects. Errors are one-line
:class:`UserError` messages naming the file and the limit.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from evoplastic import limits
from evoplastic.errors import UserError


def read(path: str | Path, what: str, max_bytes: int = limits.MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path`` (name without ``.npy`` -> array).

    Args:
        what: what the file should be ("genome file", ...), for messages.
        max_bytes: limit on each array's decompressed size.

    Raises:
        UserError: corrupt, not an ``.npz``, pickled objects, or an array over ``max_bytes``.
        OSError: the file is missing, unreadable or a directory (the message names the path).
    """
    path = Path(path)
    limits.check_file_size(path, max_bytes, what)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > limits.MAX_NPZ_MEMBERS:
                raise UserError(f"{path}: {len(infos)} arrays in one {what} exceed the limit of "
                                f"{limits.MAX_NPZ_MEMBERS}")
            return {info.filename.removesuffix(".npy"): _member(zf, info, path, what, max_bytes)
                    for info in infos}
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{path}: unreadable, truncated or corrupt {what} ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())})") from None


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, what: str, max_bytes: int) -> np.ndarray:
    """One ``.npy`` member, its sizes checked before its data is read."""
    name = info.filename
    if info.file_size > max_bytes:
        raise UserError(f"{path}: array {name!r} inflates to {limits.gib(info.file_size)}, over the "
                        f"limit of {limits.gib(max_bytes)} for a {what}")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
        if dtype.hasobject:
            raise UserError(f"{path}: array {name!r} holds pickled objects; a {what} holds plain arrays only")
        claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if claimed > max_bytes:
            raise UserError(f"{path}: array {name!r} claims shape {shape} ({limits.gib(claimed)}), over "
                            f"the limit of {limits.gib(max_bytes)} for a {what}")
        if claimed > info.file_size:
            raise UserError(f"{path}: corrupt {what}: array {name!r} claims {claimed} bytes in a member of "
                            f"{info.file_size}")
        data = f.read(claimed)
        if len(data) != claimed:
            raise UserError(f"{path}: truncated {what}: array {name!r} has {len(data)} of {claimed} bytes")
    arr = np.frombuffer(data, dtype=dtype) if claimed else np.empty(0, dtype)
    return arr.reshape(shape, order="F" if fortran else "C").copy()
