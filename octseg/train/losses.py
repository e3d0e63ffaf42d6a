"""Training losses beyond MONAI's, selectable as ``loss._target_=octseg.train.losses.NAME``.

:class:`ALineDiceCELoss` adds to MONAI's ``DiceCELoss`` a term on what the calcium arc reads. The
geometry counts an A-line (a ray) as calcium when *any* sample on it is calcium, so a net that
continues a calcium band one A-line past a lesion end over-reads the arc by a whole A-line even
though the pixel losses barely notice the few extra pixels (docs/training.md, "Demo biases").
The extra term is a binary cross-entropy, per A-line, between the largest probability over depth
of the chosen channels and whether the label has that class anywhere on the A-line. Its gradient
goes to the one most confident pixel of each A-line: on the A-line past a lesion end, the pixel
that would make the arc read one A-line too wide.

A second, optional term (``lambda_lumen``) does the same for the lumen contour, which the geometry
reads on each A-line as the end of the run of lumen/strut samples that starts at the catheter: one
non-lumen sample inside the true run (the net calling the dark, shadowed gap behind a malapposed
strut background) ends the contour there and under-reads the strut's distance to the wall. The
term is the per-A-line BCE of "a hole in the true lumen run" (the largest non-lumen probability
over the run) against 0, i.e. ``-log`` of the smallest lumen/strut probability on the run.

A third, optional term (``lambda_thickness``) does it for the calcium thickness, which the
geometry reads on each A-line as the radial extent of calcium: per A-line whose label has
calcium, the absolute difference between the expected number of calcium samples (the sum of the
calcium probability over depth) and the label's number, in units of ``thickness_scale``
samples. Its gradient is sign(error) x p(1 - p) on every sample of the A-line: it goes to the
uncertain samples, the lesion's edges where the net is unsure, but also to faint calcium
probability anywhere on a long A-line, which the count adds up; a lesion read at the right
thickness in the wrong place costs nothing here. With deep supervision the counts (and
``thickness_scale``) are in each level's own samples. Measured once, on the hybrid calcium
recipe: it did not reduce the thickness error and called calcium on more lesion-free frames
(docs/calcium_candidates.md, forty-seventh session); off by default.

A fourth, optional term (``lambda_boundary``) is a boundary-aware loss from the literature rather
than one of the geometry's readings: MONAI's ``HausdorffDTLoss`` (Karimi & Salcudean 2019), on the
summed probability of ``aline_channels`` against the label's mask of them. Each pixel's squared
error is weighted by the squared distance (in samples) to the nearest boundary of the label and of
the prediction (thresholded at 0.5), so calcium read far past the true back edge (the media
behind a thin lesion) or missed far inside a thick one costs far more than a blurred edge. On a
frame without calcium in the label, called calcium is weighted only by its own distance map
(the label's is 0), so a small false blob costs little. The distance maps are computed per
frame by MONAI's ``distance_transform_edt``: scipy on the CPU (cuCIM/cupy on a GPU only when
both are installed; octseg does not require them). Measured once, on the hybrid
calcium recipe at weight 0.1: the term was learned but the thickness agreement did not move
(docs/calcium_candidates.md, fifty-first session); off by default.

Layout: network outputs are (B, C, A, R) - A-lines on dim 2, depth on dim 3 (see
:mod:`octseg.model.wrap`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, HausdorffDTLoss

_EPS = 1e-6


def aline_presence(target: torch.Tensor, channel: int) -> torch.Tensor:
    """(B, A) 0/1: whether the label has ``channel`` anywhere along depth on each A-line.

    ``target``: class indices (B, 1, A, R) - floats after deep supervision's nearest-neighbour
    resizing are rounded - or one-hot (B, C, A, R)."""
    return _class_mask(target, [channel]).any(dim=-1).to(torch.float32)


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


def _class_mask(target: torch.Tensor, channels: Sequence[int]) -> torch.Tensor:
    """(B, A, R) bool: label in any of ``channels`` (class indices or one-hot, as above)."""
    if target.shape[1] == 1:
        lab = torch.round(target[:, 0])
        return torch.stack([lab == c for c in channels]).any(0)
    return (target[:, list(channels)] > 0.5).any(1)


def lumen_run_hole_bce(
    probs: torch.Tensor, target: torch.Tensor, channels: Sequence[int], margin: int = 0
) -> torch.Tensor:
    """Mean over A-lines with a lumen run of ``-log`` of the smallest summed probability of
    ``channels`` on the label's run of ``channels`` samples from depth 0 (the catheter), less
    its last ``margin`` samples (the lumen border itself is left to the pixel losses)."""
    run = torch.cumprod(_class_mask(target, channels).to(torch.uint8), dim=-1).bool()
    if margin > 0:
        run = F.pad(run[..., margin:], (0, margin), value=False)
    has = run[..., 0]
    if not has.any():
        return probs.sum() * 0.0
    q = probs[:, list(channels)].sum(1).clamp(_EPS, 1.0)
    weakest = torch.where(run, q, torch.ones_like(q)).amin(dim=-1)
    return -torch.log(weakest[has]).mean()


def aline_extent_error(
    probs: torch.Tensor, target: torch.Tensor, channels: Sequence[int], scale: float
) -> torch.Tensor:
    """Mean over A-lines whose label has any of ``channels`` of
    ``|sum over depth of the summed probability of channels - the label's count| / scale``."""
    lab = _class_mask(target, channels)
    count = lab.sum(-1).to(probs.dtype)
    has = count > 0
    if not has.any():
        return probs.sum() * 0.0
    expected = probs[:, list(channels)].sum(1).sum(-1)
    return ((expected - count).abs()[has] / scale).mean()


def boundary_distance_loss(
    probs: torch.Tensor,
    target: torch.Tensor,
    channels: Sequence[int],
    hd_loss: HausdorffDTLoss | None = None,
) -> torch.Tensor:
    """MONAI's ``HausdorffDTLoss`` (default: alpha 2, per frame, mean) between the summed
    probability of ``channels`` and the label's mask of them, both (B, 1, A, R). A frame where
    neither has any of ``channels`` (at 0.5) costs nothing."""
    pred = probs[:, list(channels)].sum(1, keepdim=True)
    lab = _class_mask(target, channels)[:, None].to(pred.dtype)
    return (hd_loss or HausdorffDTLoss(include_background=True))(pred, lab)


class ALineDiceCELoss(DiceCELoss):
    """MONAI ``DiceCELoss`` plus ``lambda_aline`` x a per-A-line presence BCE on ``aline_channels``
    (output channels, i.e. positions in the model's class list; 2 is calcium in the default
    5-class schema), plus ``lambda_lumen`` x the lumen-run hole term on ``lumen_channels``
    (lumen and strut: 1 and 3) without the run's last ``lumen_margin`` samples, plus
    ``lambda_thickness`` x the per-A-line extent error of ``aline_channels`` in units of
    ``thickness_scale`` samples, plus ``lambda_boundary`` x MONAI's distance-transform
    Hausdorff loss on ``aline_channels`` (exponent ``boundary_alpha``). All weights 0 is exactly
    ``DiceCELoss``. Softmax over channels is applied to the logits for these terms; every other
    argument goes to ``DiceCELoss``."""

    def __init__(
        self,
        *args: object,
        lambda_aline: float = 1.0,
        aline_channels: Sequence[int] = (2,),
        lambda_lumen: float = 0.0,
        lumen_channels: Sequence[int] = (1, 3),
        lumen_margin: int = 2,
        lambda_thickness: float = 0.0,
        thickness_scale: float = 16.0,
        lambda_boundary: float = 0.0,
        boundary_alpha: float = 2.0,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        weights = (
            ("lambda_aline", lambda_aline),
            ("lambda_lumen", lambda_lumen),
            ("lambda_thickness", lambda_thickness),
            ("lambda_boundary", lambda_boundary),
        )
        for name, value in weights:
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not thickness_scale > 0:
            raise ValueError(f"thickness_scale must be > 0, got {thickness_scale}")
        if not boundary_alpha > 0:
            raise ValueError(f"boundary_alpha must be > 0, got {boundary_alpha}")
        self.lambda_boundary = float(lambda_boundary)
        self.boundary_loss = HausdorffDTLoss(alpha=float(boundary_alpha), include_background=True)
        self.lambda_thickness = float(lambda_thickness)
        self.thickness_scale = float(thickness_scale)
        self.lambda_aline = float(lambda_aline)
        self.aline_channels = tuple(int(c) for c in aline_channels)
        self.lambda_lumen = float(lambda_lumen)
        self.lumen_channels = tuple(int(c) for c in lumen_channels)
        if lumen_margin < 0:
            raise ValueError(f"lumen_margin must be >= 0, got {lumen_margin}")
        self.lumen_margin = int(lumen_margin)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        loss = super().forward(input, target)
        weights = (
            self.lambda_aline,
            self.lambda_lumen,
            self.lambda_thickness,
            self.lambda_boundary,
        )
        if not any(weights):
            return loss
        n = input.shape[1]
        bad = [c for c in self.aline_channels + self.lumen_channels if not 0 <= c < n]
        if bad:
            raise ValueError(f"channels {bad} out of range for a {n}-channel output")
        probs = torch.softmax(input.float(), dim=1)
        if self.lambda_aline:
            loss = loss + self.lambda_aline * aline_presence_bce(probs, target, self.aline_channels)
        if self.lambda_lumen:
            hole = lumen_run_hole_bce(probs, target, self.lumen_channels, self.lumen_margin)
            loss = loss + self.lambda_lumen * hole
        if self.lambda_thickness:
            err = aline_extent_error(probs, target, self.aline_channels, self.thickness_scale)
            loss = loss + self.lambda_thickness * err
        if self.lambda_boundary:
            hd = boundary_distance_loss(probs, target, self.aline_channels, self.boundary_loss)
            loss = loss + self.lambda_boundary * hd
        return loss
