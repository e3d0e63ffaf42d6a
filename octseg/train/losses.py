"""Training losses beyond MONAI's, selectable as ``loss._target_=octseg.train.losses.NAME``.

:class:`ALineDiceCELoss` adds to MONAI's ``DiceCELoss`` a term on what the calcium arc reads. The
geometry counts an A-line (a ray) as calcium when *any* sample on it is calcium, so a net that
continues a calcium band one A-line past a lesion end over-reads the arc by a whole A-line even
though the pixel losses barely notice the few extra pixels (docs/training.md, "Demo biases").
The extra term is a binary cross-entropy, per A-line, between the largest probability over depth
of the chosen channels and whether the label has that class anywhere on the A-line. Its gradient
goes to the one most confident pixel of each A-line: on the A-line past a lesion end, the pixel
that would make the arc read one A-line too wide.

Layout: network outputs are (B, C, A, R) - A-lines on dim 2, depth on dim 3 (see
:mod:`octseg.model.wrap`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

_EPS = 1e-6


def aline_presence(target: torch.Tensor, channel: int) -> torch.Tensor:
    """(B, A) 0/1: whether the label has ``channel`` anywhere along depth on each A-line.

    ``target``: class indices (B, 1, A, R) - floats after deep supervision's nearest-neighbour
    resizing are rounded - or one-hot (B, C, A, R)."""
    if target.shape[1] == 1:
        hit = torch.round(target[:, 0]) == channel
    else:
        hit = target[:, channel] > 0.5
    return hit.any(dim=-1).to(torch.float32)


def aline_presence_bce(
    probs: torch.Tensor, target: torch.Tensor, channels: Sequence[int]
) -> torch.Tensor:
    """Mean BCE between the per-A-line max over depth of ``probs[:, c]`` and the label's
    per-A-line presence of class channel ``c``, averaged over ``channels``."""
    terms = []
    for c in channels:
        pred = probs[:, c].amax(dim=-1).clamp(_EPS, 1.0 - _EPS)
        terms.append(F.binary_cross_entropy(pred, aline_presence(target, c)))
    return torch.stack(terms).mean()


class ALineDiceCELoss(DiceCELoss):
    """MONAI ``DiceCELoss`` plus ``lambda_aline`` x a per-A-line presence BCE on ``aline_channels``
    (output channels, i.e. positions in the model's class list; 2 is calcium in the default
    5-class schema). ``lambda_aline=0`` is exactly ``DiceCELoss``. Softmax over channels is
    applied to the logits for the presence term; every other argument goes to ``DiceCELoss``."""

    def __init__(
        self,
        *args: object,
        lambda_aline: float = 1.0,
        aline_channels: Sequence[int] = (2,),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if lambda_aline < 0:
            raise ValueError(f"lambda_aline must be >= 0, got {lambda_aline}")
        self.lambda_aline = float(lambda_aline)
        self.aline_channels = tuple(int(c) for c in aline_channels)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        base = super().forward(input, target)
        if self.lambda_aline == 0:
            return base
        n = input.shape[1]
        bad = [c for c in self.aline_channels if not 0 <= c < n]
        if bad:
            raise ValueError(f"aline_channels {bad} out of range for a {n}-channel output")
        probs = torch.softmax(input.float(), dim=1)
        return base + self.lambda_aline * aline_presence_bce(probs, target, self.aline_channels)
