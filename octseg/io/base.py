"""The pullback object every reader returns, and the reader registry.

A reader turns one path (file or folder) into a :class:`Pullback`. Frames are decoded lazily:
``pullback.read(start, stop)`` decodes only those frames, so a 1 GB file never needs 1 GB of
memory at once. Intensities are float32 grey values in [0, 1].

New formats are new :class:`Reader` subclasses registered with :func:`register_reader`; nothing
else changes (the nnU-Net reader/writer pattern).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from octseg.core.errors import InputError, MissingSpacingError
from octseg.io import limits

FrameLoader = Callable[[int, int], np.ndarray]


@dataclass
class Pullback:
    """One IVOCT pullback.

    ``space`` is ``"polar"`` (rows = A-lines evenly over 360 degrees, columns = depth from the
    catheter centre, as in :mod:`octseg.io.labels`) or ``"cartesian"``.
    ``metadata`` holds only non-identifying values (no patient names, IDs, dates of birth).
    """

    source: str
    format: str
    space: str
    n_frames: int
    height: int
    width: int
    pixel_spacing_mm: float
    frame_spacing_mm: float
    loader: FrameLoader = field(repr=False)
    catheter_center: tuple[float, float] | None = None  # (cy, cx) pixels, Cartesian only
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.space not in ("polar", "cartesian"):
            raise InputError(self.source, f"unknown image space {self.space!r}")
        for key in ("pixel_spacing_mm", "frame_spacing_mm"):
            val = getattr(self, key)
            if val is None or not np.isfinite(val) or val <= 0:
                raise MissingSpacingError(
                    self.source, f"{key} must be a positive number, got {val!r}"
                )
        limits.check_frames(self.source, self.n_frames, self.height, self.width)
        if self.space == "cartesian" and self.catheter_center is None:
            from octseg.core.catheter import center_of  # detected from the rings, else the middle

            self.catheter_center = center_of(self)
        elif self.space == "cartesian":
            self.catheter_center = limits.check_center(
                self.source, self.catheter_center, self.height, self.width
            )

    @property
    def n_alines(self) -> int | None:
        return self.height if self.space == "polar" else None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_frames, self.height, self.width)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Decode frames ``start:stop`` as float32 ``(n, H, W)`` in [0, 1]."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        if not 0 <= start <= stop:
            raise IndexError(f"{self.source}: frame range {start}:{stop} outside 0:{self.n_frames}")
        out = self.loader(start, stop)
        if out.shape != (stop - start, self.height, self.width):
            raise InputError(
                self.source,
                f"decoded frames {start}:{stop} have shape {out.shape}, "
                f"expected {(stop - start, self.height, self.width)}",
            )
        if not np.all(np.isfinite(out)):
            raise InputError(self.source, f"frames {start}:{stop} contain NaN or infinite values")
        return out.astype(np.float32, copy=False)

    def iter_chunks(self, chunk: int = 32) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, frames)`` chunks covering the pullback in order."""
        for start in range(0, self.n_frames, chunk):
            yield start, self.read(start, start + chunk)

    def describe(self) -> dict[str, Any]:
        """What ``octseg inspect --json`` prints (no patient identifiers)."""
        return {
            "source": self.source,
            "format": self.format,
            "space": self.space,
            "frames": self.n_frames,
            "height": self.height,
            "width": self.width,
            "pixel_spacing_mm": self.pixel_spacing_mm,
            "frame_spacing_mm": self.frame_spacing_mm,
            "catheter_center": list(self.catheter_center) if self.catheter_center else None,
            "a_lines": self.n_alines,
            **self.metadata,
        }


class Reader:
    """One image format. Subclasses set ``name`` and implement ``can_read`` and ``read``."""

    name: ClassVar[str] = ""

    @classmethod
    def can_read(cls, path: Path) -> bool:
        raise NotImplementedError

    @classmethod
    def read(cls, path: Path, **options: Any) -> Pullback:
        raise NotImplementedError


_READERS: dict[str, type[Reader]] = {}


def register_reader(cls: type[Reader]) -> type[Reader]:
    """Class decorator adding a reader to the registry (later registrations are tried first)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    _READERS[cls.name] = cls
    return cls


def readers() -> dict[str, type[Reader]]:
    return dict(_READERS)
