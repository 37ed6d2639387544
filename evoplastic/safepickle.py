"""Restricted unpickling of the reference code's files (method §6).

The paper's task and checkpoint files are plain pickles. A plain ``pickle.load`` would run whatever
a crafted file asks for, so this unpickler resolves only the globals needed to rebuild numpy arrays,
dtypes, numpy scalars and ``collections.OrderedDict``; lists, tuples, dicts and Python scalars need
no globals. Anything else is refused with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic.errors import UserError
from evoplastic.limits import MAX_PICKLE_BYTES, check_file_size, gib


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """The file asks for a global outside the allowed set."""


class CorruptPickleError(UserError, pickle.UnpicklingError):
    """The file is truncated or is not a pickle at all."""


def _numpy_private(*names: str) -> Any:
    """numpy 2 moved ``numpy.core`` to ``numpy._core``; find the object in either."""
    for mod in ("numpy._core", "numpy.core"):
        try:
            obj = __import__(mod, fromlist=["x"])
            for name in names:
                obj = getattr(obj, name)
            return obj
        except (ImportError, AttributeError):
            continue
    return None


_RECONSTRUCT = np.array(0).__reduce__()[0]  # numpy's array-rebuilding function
_SCALAR = np.float32(0).__reduce__()[0]  # numpy's scalar-rebuilding function


def _bounded_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` (an empty array of ``shape``), refused above MAX_PICKLE_BYTES:
    a few bytes of pickle could otherwise claim any amount of memory."""
    try:
        claimed = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        claimed = 0  # not a shape: numpy's own error follows
    if claimed > MAX_PICKLE_BYTES:
        raise UnsafePickleError(f"an array of shape {shape} ({gib(claimed)}) exceeds the limit of "
                                f"{gib(MAX_PICKLE_BYTES)}")
    return _RECONSTRUCT(subtype, shape, dtype)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _bounded_reconstruct
    _ALLOWED[(_mod, "scalar")] = _SCALAR
_FROMBUFFER = _numpy_private("numeric", "_frombuffer")
if _FROMBUFFER is not None:  # protocol-5 array pickles
    for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
        _ALLOWED[(_mod, "_frombuffer")] = _FROMBUFFER


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Protocols 0-2 rebuild array bytes with ``_codecs.encode(text, "latin1")``: allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode other than str -> latin1 bytes")
    return text.encode("latin1")


_ALLOWED[("_codecs", "encode")] = _latin1_encode
# numpy >= 1.25 pickles dtypes of protocol >= 4 through their DType classes.
for _name in dir(np.dtypes) if hasattr(np, "dtypes") else ():
    if _name.endswith("DType"):
        _ALLOWED[("numpy.dtypes", _name)] = getattr(np.dtypes, _name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refusing to unpickle '{module}.{name}': only numpy arrays, dtypes, "
                "lists, tuples, dicts and OrderedDict are allowed in reference files"
            ) from None


def load_all(path: str | Path, max_objects: int = 64) -> list[Any]:
    """Read every consecutive pickle in ``path`` with the restricted unpickler.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: a pickle asks for a forbidden global.
        CorruptPickleError: the file is truncated, empty or not a pickle.
    """
    path = Path(path)
    check_file_size(path, MAX_PICKLE_BYTES, "pickle file")
    data = path.read_bytes()
    if not data:
        raise CorruptPickleError(f"{path}: empty file, not a pickle")
    buf = io.BytesIO(data)
    objects: list[Any] = []
    while buf.tell() < len(data) and len(objects) < max_objects:
        try:
            objects.append(_RestrictedUnpickler(buf, str(path)).load())
        except UnsafePickleError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise UnsafePickleError(f"{path}: {exc}") from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
                AttributeError, MemoryError, OverflowError, UnicodeDecodeError) as exc:
            raise CorruptPickleError(
                f"{path}: truncated or corrupt pickle at byte {buf.tell()} of {len(data)} "
                f"(object {len(objects) + 1}): {type(exc).__name__}: {exc}"
            ) from None
    return objects


def load_one(path: str | Path) -> Any:
    """The first pickled object of ``path`` (see :func:`load_all` for errors)."""
    return load_all(path, max_objects=1)[0]
