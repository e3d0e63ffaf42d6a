"""Plausibility limits on what a file declares, checked before anything is allocated.

A crafted header can declare a 25000x25000 frame in a 777-byte npz, a catheter centre a
kilometre outside the image or a pixel spacing of 1e30 mm. Every reader (and the label-file
loader) checks the declared values here first, and refuses with one line naming the file, the
value and the limit.

The limits (:class:`Limits`) have defaults for IVOCT and can be changed

* for a process through environment variables: ``OCTSEG_MAX_FRAME_SIDE`` (pixels),
  ``OCTSEG_MAX_PULLBACK_GB`` (declared frames x height x width x samples x bytes, GiB),
  ``OCTSEG_ALLOW_UNUSUAL_SPACING=1``;
* in Python with ``with limits.override(max_frame_side=8192): ...``.

Spacing read from a file must lie in the plausible range unless ``allow_unusual_spacing`` is set
(``read_pullback(..., allow_unusual_spacing=True)``, ``octseg measure --allow-unusual-spacing``,
or the environment variable); a spacing given explicitly (argument or ``spacing.json``) is the
user's statement and is not range-checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core.errors import InputError
from octseg.io.npz import npy_header

GIB = 2**30


@dataclass(frozen=True)
class Limits:
    #: largest frame height or width (pixels)
    max_frame_side: int = 4096
    #: smallest frame height or width (pixels)
    min_frame_side: int = 4
    #: largest ratio of the longer to the shorter frame side
    max_aspect: float = 32.0
    #: largest declared pullback: frames x height x width x samples x bytes per sample
    max_pullback_bytes: int = 16 * GIB
    #: plausible pixel spacing (mm): 1 um .. 0.2 mm
    pixel_spacing_mm: tuple[float, float] = (0.001, 0.2)
    #: plausible frame spacing (mm)
    frame_spacing_mm: tuple[float, float] = (0.01, 2.0)
    #: accept spacing outside the plausible ranges
    allow_unusual_spacing: bool = False
    #: largest network a checkpoint may declare (parameters)
    max_net_parameters: int = 200_000_000
    #: largest side of the network's polar grid (A-lines, samples)
    max_net_grid_side: int = 4096


_OVERRIDES: dict[str, Any] = {}


def current() -> Limits:
    """The limits in force: defaults, then environment variables, then :func:`override`."""
    env: dict[str, Any] = {}
    if os.environ.get("OCTSEG_MAX_FRAME_SIDE"):
        env["max_frame_side"] = int(os.environ["OCTSEG_MAX_FRAME_SIDE"])
    if os.environ.get("OCTSEG_MAX_PULLBACK_GB"):
        env["max_pullback_bytes"] = int(float(os.environ["OCTSEG_MAX_PULLBACK_GB"]) * GIB)
    if os.environ.get("OCTSEG_ALLOW_UNUSUAL_SPACING", "").lower() in ("1", "true", "yes"):
        env["allow_unusual_spacing"] = True
    return dataclasses.replace(Limits(), **{**env, **_OVERRIDES})


@contextlib.contextmanager
def override(**changes: Any) -> Iterator[Limits]:
    """Change limits inside a ``with`` block (e.g. ``override(max_frame_side=8192)``)."""
    Limits(**changes)  # unknown names fail here
    saved = dict(_OVERRIDES)
    _OVERRIDES.update(changes)
    try:
        yield current()
    finally:
        _OVERRIDES.clear()
        _OVERRIDES.update(saved)


def _gb(nbytes: float) -> str:
    return f"{nbytes / GIB:.3g} GiB"


def check_frames(
    path: str | Path | None,
    n: int,
    h: int,
    w: int,
    *,
    samples: int = 1,
    bytes_per_sample: int = 1,
    what: str = "frames",
) -> None:
    """Refuse a declared ``n`` frames of ``h x w`` that are empty, degenerate or too large."""
    lim = current()
    if n < 1:
        raise InputError(path, f"declares {n} {what}; at least 1 is needed")
    if min(h, w) < lim.min_frame_side:
        raise InputError(
            path,
            f"declares {h}x{w} {what}; each side must be at least {lim.min_frame_side} pixels",
        )
    if max(h, w) > lim.max_frame_side:
        raise InputError(
            path,
            f"declares {h}x{w} {what}, above the limit of {lim.max_frame_side} pixels a side "
            "(OCTSEG_MAX_FRAME_SIDE raises it)",
        )
    if max(h, w) / min(h, w) > lim.max_aspect:
        raise InputError(
            path,
            f"declares {h}x{w} {what}: aspect ratio {max(h, w) / min(h, w):.3g} above "
            f"{lim.max_aspect:g}; not an IVOCT frame",
        )
    total = n * h * w * max(samples, 1) * max(bytes_per_sample, 1)
    if total > lim.max_pullback_bytes:
        raise InputError(
            path,
            f"declares {n} {what} of {h}x{w}x{samples} at {bytes_per_sample} byte(s) = "
            f"{_gb(total)}, above the limit of {_gb(lim.max_pullback_bytes)} "
            "(OCTSEG_MAX_PULLBACK_GB raises it)",
        )


def check_center(path: str | Path | None, center: Any, h: int, w: int) -> tuple[float, float]:
    """The catheter centre ``(cy, cx)``, which must be finite and lie within the ``h x w`` frame."""
    cc = np.asarray(center, dtype=float).reshape(-1)
    if cc.shape != (2,) or not np.all(np.isfinite(cc)):
        raise InputError(path, f"catheter centre must be [cy, cx], got {center!r}")
    cy, cx = float(cc[0]), float(cc[1])
    if not (-0.5 <= cy <= h - 0.5 and -0.5 <= cx <= w - 0.5):
        raise InputError(
            path,
            f"catheter centre (cy, cx) = ({cy:.6g}, {cx:.6g}) lies outside the {h}x{w} frame; "
            f"the centre must lie within the frame (0..{h - 1}, 0..{w - 1})",
        )
    return cy, cx


def check_spacing(
    path: str | Path | None, key: str, value: float, *, source: str = "file", allow: bool = False
) -> float:
    """``value`` if it lies in the plausible range for ``key`` (``pixel_spacing_mm`` or
    ``frame_spacing_mm``), else an error giving the range and the override."""
    lim = current()
    lo, hi = getattr(lim, key)
    if not (math.isfinite(value) and value > 0):
        raise InputError(path, f"{key} must be a positive number, got {value!r} ({source})")
    if allow or lim.allow_unusual_spacing or lo <= value <= hi:
        return value
    raise InputError(
        path,
        f"{key} {value:.6g} mm ({source}) is outside the plausible range {lo:g}..{hi:g} mm; "
        "if it is right, give it explicitly (--pixel-spacing-mm / --frame-spacing-mm or "
        "spacing.json) or allow it (allow_unusual_spacing, OCTSEG_ALLOW_UNUSUAL_SPACING=1)",
    )


def npz_members(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array in an npz, from the npy headers alone (nothing
    decompressed beyond the header). Refuses a file that is not a zip, a member that is not an
    npy array and object (pickled) arrays, in octseg's own words."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise InputError(path, "not an npz file (not a zip archive)")
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                key = name[:-4] if name.endswith(".npy") else name
                with zf.open(name) as fh:
                    shape, _, dtype = npy_header(fh)
                    out[key] = (shape, dtype)
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"not a readable npz ({type(exc).__name__}: {exc})") from None
    for key, (_, dtype) in out.items():
        if dtype.hasobject:
            raise InputError(
                path,
                f"member {key!r} holds Python objects (pickled data); octseg reads only plain "
                "numeric arrays and never unpickles",
            )
    return out


def check_npz_total(path: str | Path, members: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """Refuse an npz whose arrays together declare more than the pullback limit."""
    lim = current()
    total = sum(math.prod(s) * d.itemsize for s, d in members.values())
    if total > lim.max_pullback_bytes:
        raise InputError(
            path,
            f"its arrays declare {_gb(total)} in all, above the limit of "
            f"{_gb(lim.max_pullback_bytes)} (OCTSEG_MAX_PULLBACK_GB raises it)",
        )
