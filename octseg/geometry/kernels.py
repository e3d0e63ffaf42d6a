"""Small uint8 kernels that keep the CPU hot path fast (and are plain torch on any device).

On CPU, torch's comparison ops that write ``bool`` from ``uint8`` and reductions of ``bool`` to
wider integers are not vectorised, and every fresh full-size temporary costs page faults. These
helpers stay in ``uint8`` (in-place ``eq_`` into a reused buffer, sums accumulated in ``uint8``
over groups of at most 255 elements, first-index via ``max``), which is several times faster on
CPU and gives exactly the same integers.
"""

from __future__ import annotations

import math

import torch


def _group(n: int, limit: int = 255) -> int:
    """Largest divisor of ``n`` that is <= ``limit`` (a uint8 sum of that many 0/1 values
    cannot overflow)."""
    for g in range(min(n, limit), 0, -1):
        if n % g == 0:
            return g
    return 1


def count_along(ones: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum of a 0/1 ``uint8`` tensor along ``dim`` as int32 (exact)."""
    dim = dim % ones.ndim
    n = ones.shape[dim]
    g = _group(n)
    if g < 16:  # no useful grouping: plain (slower) widening sum
        return ones.sum(dim, dtype=torch.int32)
    shape = ones.shape[:dim] + (n // g, g) + ones.shape[dim + 1 :]
    part = ones.reshape(shape).sum(dim + 1, dtype=torch.uint8)
    return part.sum(dim, dtype=torch.int32)


def eq_u8(x: torch.Tensor, value: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(x == value)`` as a 0/1 ``uint8`` tensor, written into ``out`` when given."""
    out = torch.empty_like(x) if out is None else out
    return out.copy_(x).eq_(value)


def first_one(ones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a 0/1 ``uint8`` tensor: whether the last axis holds a 1, and the index of the first
    1 (0 where there is none)."""
    mx, idx = ones.max(-1)  # indices of the first maximal value
    return mx.bool(), idx


def round_up(x: float, q: int = 64) -> int:
    """``x`` (at least 1) rounded up to a multiple of ``q``: sizes that keep cached ray tables
    reusable across chunks."""
    return int(math.ceil(max(x, 1.0) / q) * q)


ACCELERATOR_FACTOR = 16


def for_device(base: int, device: torch.device | str) -> int:
    """A piece size tuned for the CPU (``base``: cache-sized temporaries) scaled for ``device``.
    An accelerator pays a few hundred kernel launches and synchronisations per piece whatever
    its size, so its pieces are ``ACCELERATOR_FACTOR`` times larger."""
    return base if torch.device(device).type == "cpu" else base * ACCELERATOR_FACTOR


def pieces(b: int, per_frame: int, budget: int) -> list[slice]:
    """Slices of ``b`` frames holding at most ``budget`` ray samples each (at least one frame)."""
    step = max(1, budget // max(per_frame, 1))
    return [slice(i, min(b, i + step)) for i in range(0, b, step)]


def farthest_corner(center: tuple[float, float], h: int, w: int) -> float:
    """Distance (pixels) from ``center`` (row, col) to the farthest corner of an ``h x w`` frame."""
    return math.hypot(max(center[0], h - center[0]), max(center[1], w - center[1]))
