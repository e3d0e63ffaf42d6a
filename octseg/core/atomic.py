"""Atomic writes: every output goes to a temporary name beside its target, then os.replace.

An interrupted process (even kill -9) therefore leaves either the old file or the new one,
never a half-written one. Temporary names start with ``.tmp-`` so that they are easy to spot
and to clean up.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` for writing, atomically. ``mode`` is "w" or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_json(path: str | Path, obj: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False, default=_json_default) + "\n")


def fsync_path(path: str | Path) -> None:
    """Flush a closed file's data to disk (before it is moved onto its target)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _npz_member(name: str, level: int | None = None) -> Any:
    import zipfile

    info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    if level is not None:
        if hasattr(info, "compress_level"):  # Python >= 3.13
            info.compress_level = level
        else:  # Python <= 3.12: what ZipFile.open(info, "w") reads
            info._compresslevel = level
    return info


def save_npz(path: str | Path, *, compress_level: int | None = None, **arrays: Any) -> None:
    """Compressed ``.npz`` written atomically to ``path`` (no suffix appended).

    Zip entries carry a fixed timestamp, so the bytes depend only on the data (reproducible
    outputs from a seeded run). ``compress_level``: zlib level 1-9 (default: zlib's 6).
    """
    import zipfile

    import numpy as np

    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for key, val in arrays.items():
                member = _npz_member(key, compress_level)
                with zf.open(member, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(val), allow_pickle=False)
        fsync_path(tmp)


def save_npz_streamed(
    path: str | Path,
    small: dict[str, Any],
    big_name: str,
    big_shape: tuple[int, ...],
    chunks: Iterable[Any],
    dtype: Any = "uint8",
) -> None:
    """Like :func:`save_npz`, with one big array ``big_name`` of ``big_shape`` written from
    ``chunks`` (consecutive slices along axis 0) so that it is never in memory at once.

    ``small`` arrays come first (zip64 only where their size needs it), then the big one
    (always zip64: its size is not known to the zip writer up front). ``np.load`` reads the
    result like any npz. Raises ``RuntimeError`` (and leaves no file) if the chunks do not add up
    to ``big_shape[0]`` rows.
    """
    import zipfile

    import numpy as np

    dtype = np.dtype(dtype)
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": tuple(int(x) for x in big_shape),
    }
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for key, val in small.items():
                arr = np.asanyarray(val)
                with zf.open(_npz_member(key), "w", force_zip64=arr.nbytes > 1 << 30) as fh:
                    np.lib.format.write_array(fh, arr, allow_pickle=False)
            n = 0
            with zf.open(_npz_member(big_name), "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                for chunk in chunks:
                    arr = np.ascontiguousarray(chunk, dtype=dtype)
                    n += arr.shape[0]
                    fh.write(arr.tobytes())
            if n != big_shape[0]:
                raise RuntimeError(f"{path}: streamed {n} rows, expected {big_shape[0]}")
        fsync_path(tmp)


def torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically. Keep ``obj`` to tensors and plain values (weights_only loads)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
        fsync_path(tmp)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
