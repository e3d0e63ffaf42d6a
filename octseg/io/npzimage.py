"""Reader for the "octseg image npz" (written by ``octseg synth``; see docs/io.md).

Keys: ``frames`` uint8 (0..255) or float32 (0..1) ``(F, H, W)``, ``space`` ("polar" |
"cartesian"), ``pixel_spacing_mm``, ``frame_spacing_mm``, optional ``catheter_center`` [cy, cx].

The header (shape, dtype) is read without decompressing the frames; the frames are decompressed
on the first ``read`` and kept (a compressed npz member cannot be decoded partially).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core import atomic
from octseg.core.errors import InputError
from octseg.io import limits
from octseg.io.base import Pullback, Reader, register_reader
from octseg.io.npz import load_npz
from octseg.io.spacing import spacing_for

FRAMES_MEMBER = "frames.npy"


#: the largest any other member (space, spacings, centre) may declare (elements)
MAX_SMALL_MEMBER = 64


def _checked_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``frames`` from the npy headers, every declared size checked against
    :mod:`octseg.io.limits` before anything is decompressed."""
    members = limits.npz_members(path)
    if "frames" not in members:
        raise InputError(path, "npz image lacks the 'frames' array")
    shape, dtype = members["frames"]
    if len(shape) != 3:
        raise InputError(path, f"'frames' must be (F, H, W), got shape {shape}")
    for key, (s, _) in members.items():
        if key != "frames" and math.prod(s) > MAX_SMALL_MEMBER:
            raise InputError(path, f"'{key}' declares shape {s}; expected a scalar or [cy, cx]")
    limits.check_frames(path, *shape, bytes_per_sample=dtype.itemsize)
    return shape, dtype


class _NpzLoader:
    """Frame loader: decompresses ``frames`` once on first use and keeps them (uint8 or float).

    ``loader(start, stop)`` gives float32 grey frames; ``loader.sampled(start, stop, mask)`` the
    same values at the pixels of a boolean ``(H, W)`` mask only (uint8 frames: only those pixels
    are converted)."""

    def __init__(self, path: Path):
        self.path = path
        self.frames: np.ndarray | None = None

    def _frames(self) -> np.ndarray:
        if self.frames is None:
            try:
                self.frames = load_npz(self.path, keys={"frames"})["frames"]
            except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
                raise InputError(self.path, f"cannot decode 'frames' ({exc})") from None
        return self.frames

    def __call__(self, start: int, stop: int) -> np.ndarray:
        chunk = self._frames()[start:stop]
        if chunk.dtype == np.uint8:
            return chunk.astype(np.float32) / 255.0
        chunk = chunk.astype(np.float32)
        finite = chunk[np.isfinite(chunk)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise InputError(self.path, f"float frames {start}:{stop} fall outside 0..1")
        return chunk

    def sampled(self, start: int, stop: int, mask: np.ndarray) -> np.ndarray:
        frames = self._frames()
        if frames.dtype != np.uint8:  # float frames: range and finiteness checked whole
            chunk = self.__call__(start, stop)
            if not np.all(np.isfinite(chunk)):
                raise InputError(self.path, f"frames {start}:{stop} contain NaN or infinite values")
            return chunk[:, mask]
        return frames[start:stop][:, mask].astype(np.float32) / 255.0


@register_reader
class NpzImageReader(Reader):
    name = "npz"

    @classmethod
    def can_read(cls, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".npz":
            return False
        try:
            with zipfile.ZipFile(path) as zf:
                return FRAMES_MEMBER in zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return True  # claim it so that the user gets "not a readable npz" for a .npz file

    @classmethod
    def read(cls, path: Path, **options: Any) -> Pullback:
        path = Path(path)
        shape, dtype = _checked_header(path)
        small = _small_members(path)
        if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
            raise InputError(path, f"'frames' must be uint8 or float32, got {dtype}")
        if "space" not in small:
            raise InputError(path, "npz image lacks 'space' ('polar' or 'cartesian')")
        space = str(small["space"])
        if space not in ("polar", "cartesian"):
            raise InputError(path, f"'space' must be 'polar' or 'cartesian', got {space!r}")
        px, fr, sources = spacing_for(
            path,
            options,
            file_pixel=_scalar(path, small, "pixel_spacing_mm"),
            file_frame=_scalar(path, small, "frame_spacing_mm"),
            pixel_source="file",
            frame_source="file",
        )
        return Pullback(
            source=str(path),
            format=cls.name,
            space=space,
            n_frames=int(shape[0]),
            height=int(shape[1]),
            width=int(shape[2]),
            pixel_spacing_mm=px,
            frame_spacing_mm=fr,
            loader=_NpzLoader(path),
            catheter_center=_center(path, small, space),
            metadata={"dtype": str(dtype), "spacing_source": sources},
        )


def _small_members(path: Path) -> dict[str, np.ndarray]:
    """Every member but the frames (which must be present)."""
    try:
        return load_npz(path, skip={"frames"}, require={"frames"})
    except KeyError:
        raise InputError(path, "npz image lacks the 'frames' array") from None
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"not a readable octseg image npz ({exc})") from None


def _scalar(path: Path, small: dict[str, np.ndarray], key: str) -> float | None:
    """Member ``key`` as a number; None where absent."""
    if key not in small:
        return None
    try:
        return float(np.asarray(small[key]).reshape(()))
    except (TypeError, ValueError):
        raise InputError(path, f"'{key}' must be a number") from None


def _center(path: Path, small: dict[str, np.ndarray], space: str) -> tuple[float, float] | None:
    """The stored catheter centre (cy, cx), checked; used for Cartesian images only."""
    if "catheter_center" not in small:
        return None
    cc = np.asarray(small["catheter_center"], dtype=float).reshape(-1)
    if cc.shape != (2,) or not np.all(np.isfinite(cc)):
        raise InputError(path, "'catheter_center' must be [cy, cx]")
    return (float(cc[0]), float(cc[1])) if space == "cartesian" else None


def write_npz_image(
    path: str | Path,
    frames: np.ndarray,
    *,
    space: str,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
    catheter_center: tuple[float, float] | None = None,
) -> None:
    """Write an octseg image npz atomically (the format ``octseg synth`` produces)."""
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (F, H, W), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        frames = frames.astype(np.float32)
    if space not in ("polar", "cartesian"):
        raise ValueError(f"space must be 'polar' or 'cartesian', got {space!r}")
    arrays: dict[str, Any] = {
        "frames": frames,
        "space": np.array(space),
        "pixel_spacing_mm": np.float64(pixel_spacing_mm),
        "frame_spacing_mm": np.float64(frame_spacing_mm),
    }
    if catheter_center is not None:
        arrays["catheter_center"] = np.asarray(catheter_center, dtype=np.float64)
    atomic.save_npz(path, **arrays)
