"""Reading ``.npz`` archives from several threads at once.

numpy parses every ``.npy`` header with :func:`ast.literal_eval`. CPython up to 3.12 keeps the
AST constructor's recursion depth per interpreter, not per thread, so two threads parsing at the
same moment can fail with ``SystemError: AST constructor recursion depth mismatch`` (CPython
gh-106905; seen here with ``infer.py readers=3`` on npz pullbacks). Here the header parse is
serialised by one lock, and the decompression, the slow part, still runs in parallel.
"""

from __future__ import annotations

import math
import threading
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

_HEADER_LOCK = threading.Lock()


def npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the npy stream ``fh``, positioned at its data."""
    with _HEADER_LOCK:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(s) for s in shape), bool(fortran), dtype


def _read_array(fh: IO[bytes]) -> np.ndarray:
    shape, fortran, dtype = npy_header(fh)
    if dtype.hasobject:
        raise ValueError("object arrays (pickled data) are not read")
    out = np.empty(math.prod(shape), dtype=dtype)
    view = memoryview(out).cast("B")
    got = 0
    while got < view.nbytes:
        n = fh.readinto(view[got:])
        if not n:
            raise EOFError(f"array data ends after {got} of {view.nbytes} bytes")
        got += n
    return out.reshape(shape, order="F" if fortran else "C")


def load_npz(
    path: str | Path,
    keys: set[str] | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
    require: frozenset[str] | set[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """The arrays of an npz as a dict, like ``np.load(path, allow_pickle=False)``: only ``keys``
    when given, none of ``skip``. Raises ``KeyError`` when one of ``keys`` or ``require`` is
    absent, and the zip / zlib / ``ValueError`` / ``EOFError`` errors of a damaged file."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        names = {n[:-4] if n.endswith(".npy") else n: n for n in zf.namelist()}
        missing = ((keys or set()) | set(require)) - set(names)
        if missing:
            raise KeyError(sorted(missing)[0])
        for key, name in names.items():
            if (keys is not None and key not in keys) or key in skip:
                continue
            with zf.open(name) as fh:
                out[key] = _read_array(fh)
    return out
