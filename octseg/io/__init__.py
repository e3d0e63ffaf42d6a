"""Reading and writing IVOCT data.

``read_pullback(path)`` picks a reader from the registry in :mod:`octseg.io.base` (IVOCT DICOM,
octseg image npz, PNG/TIFF frame folders and multi-page TIFF) and returns a lazy
:class:`~octseg.io.base.Pullback`. Spacing comes from explicit arguments, else a ``spacing.json``
sidecar, else the file; it is never assumed (see docs/io.md).
"""

from __future__ import annotations

from pathlib import Path

from octseg.core.errors import InputError, OctsegError
from octseg.io import dicom as _dicom  # noqa: F401  (registers the DICOM reader)
from octseg.io import npzimage as _npzimage  # noqa: F401  (registers the npz reader)
from octseg.io import stack as _stack  # noqa: F401  (registers the image-stack readers)
from octseg.io.base import Pullback, Reader, readers, register_reader

__all__ = ["Pullback", "Reader", "read_pullback", "readers", "register_reader", "pick_reader"]


def pick_reader(path: str | Path, format: str | None = None) -> type[Reader]:
    """The reader for ``path``: by name when ``format`` is given, else the first that claims it."""
    path = Path(path)
    regs = readers()
    if format is not None:
        if format not in regs:
            raise InputError(path, f"unknown format {format!r}; known: {', '.join(sorted(regs))}")
        return regs[format]
    if not path.exists():
        raise InputError(path, "no such file or folder")
    for reader in reversed(list(regs.values())):  # later registrations are tried first
        try:
            if reader.can_read(path):
                return reader
        except OSError:
            continue
    raise InputError(
        path,
        "not a recognised image (expected IVOCT DICOM, an octseg image .npz, a multi-page TIFF, "
        "or a folder of PNG/TIFF frames)",
    )


def read_pullback(
    path: str | Path,
    *,
    pixel_spacing_mm: float | None = None,
    frame_spacing_mm: float | None = None,
    format: str | None = None,
    allow_unusual_spacing: bool = False,
) -> Pullback:
    """Open ``path`` lazily as a :class:`Pullback`.

    Explicit spacing arguments override what a ``spacing.json`` sidecar or the file says, and
    complete what neither says. Bad input raises :class:`~octseg.core.errors.InputError` (one line,
    naming the file); missing spacing raises :class:`~octseg.core.errors.MissingSpacingError`.
    Header-declared sizes, catheter centre and spacing are checked against
    :mod:`octseg.io.limits` before anything is decoded; ``allow_unusual_spacing`` accepts a
    file's spacing outside the plausible range (devices with unusual sampling).
    """
    path = Path(path)
    reader = pick_reader(path, format)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    try:
        return reader.read(
            path,
            pixel_spacing_mm=pixel_spacing_mm,
            frame_spacing_mm=frame_spacing_mm,
            allow_unusual_spacing=allow_unusual_spacing,
        )
    except OctsegError:
        raise
    except Exception as exc:  # a reader bug or a library error on odd input: one line
        raise InputError(
            path, f"cannot read as {reader.name}: {type(exc).__name__}: {exc}"
        ) from exc
