"""Make any 2-D segmentation network periodic along the A-line axis.

Polar frames are periodic in the A-line axis (A-line 0 follows A-line A-1). A plain U-Net zero-pads
there and draws a seam. :class:`CircularPadNet` pads the input circularly by ``pad_alines`` rows on
each side (the rows wrap around), runs the network, and crops the padding off again. It also pads
both axes up to a multiple of the network's total stride (``multiple``) - A-lines circularly,
depth with zeros at the far end - so any frame size works.

Equivariance (what the tests check, and why): let ``s`` be the network's total stride and ``RF``
the radius of its receptive field in input pixels. If ``pad_alines >= RF`` every kept output row
sees only wrapped image content, never the zero padding at the ends of the padded strip; then
rolling the input by ``k`` A-lines rolls the output by exactly ``k`` whenever ``k`` is a multiple
of ``s`` (strided layers sample the same phase). The match is up to float rounding, provided the
layers are pointwise in eval mode (BatchNorm with running statistics, no dropout). Instance/group
normalisation computes statistics over the padded strip, which changes with the roll, so for those
networks - and for ``pad_alines < RF``, the usual case for deep U-Nets - equivariance holds only
approximately; still, no seam appears at A-line 0 because the network always sees continuous
image content there.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class CircularPadNet(nn.Module):
    """Circular A-line padding around ``net``; input and output are (B, C, A, R)."""

    def __init__(self, net: nn.Module, pad_alines: int = 16, multiple: int = 16):
        super().__init__()
        if pad_alines < 0 or multiple < 1:
            raise ValueError("pad_alines must be >= 0 and multiple >= 1")
        self.net = net
        self.pad_alines = int(pad_alines)
        self.multiple = int(multiple)

    def _padding(self, a: int, r: int) -> tuple[int, int, int]:
        m = self.multiple
        total_a = a + 2 * self.pad_alines
        extra_a = (-total_a) % m  # added to the bottom so the padded height divides by m
        extra_r = (-r) % m
        return self.pad_alines, self.pad_alines + extra_a, extra_r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (B, C, A, R), got shape {tuple(x.shape)}")
        a, r = x.shape[-2:]
        top, bottom, right = self._padding(a, r)
        if top > a or bottom > a:
            # wrap more than once: tile the frame first
            reps = (max(top, bottom) + a - 1) // a
            tiled = torch.cat([x] * (2 * reps + 1), dim=2)
            xp = tiled[:, :, reps * a - top : reps * a + a + bottom]
        else:
            xp = torch.cat([x[:, :, a - top :] if top else x[:, :, :0], x, x[:, :, :bottom]], dim=2)
        if right:
            xp = F.pad(xp, (0, right))
        y = self.net(xp)
        # works for (B, C, A, R) and for stacked deep-supervision outputs (B, N, C, A, R)
        return y[..., top : top + a, :r]


def main_output(y: Any) -> torch.Tensor:
    """The main head of networks that return several outputs (deep supervision, tuples)."""
    if isinstance(y, (list, tuple)):
        y = y[0]
    if isinstance(y, torch.Tensor) and y.ndim == 5:  # DynUNet deep supervision in train mode
        y = y[:, 0]
    return y
