"""Validation metrics on the net grid: per-class Dice and strut-detection F1.

* **Dice per class** (MONAI ``DiceMetric``, ``ignore_empty=True``): per frame, averaged over the
  frames where the class is present in the label (Dice is undefined on the others; the count is
  reported as ``n_<class>``). A pooled Dice over all pixels of all frames is reported too
  (``dice_pooled_<class>``), which also penalises false positives on frames without the class.
* **Strut F1**: struts are the connected components (8-connectivity, wrapping across A-line 0)
  of the strut channel; each is reduced to its Cartesian centroid (mm from the catheter centre).
  Predicted and labelled struts of a frame are matched one-to-one (Hungarian assignment on
  distance); a pair closer than ``tol_mm`` is a true positive. F1 = 2 TP / (2 TP + FP + FN),
  summed over all frames.

All sums live in one float64 tensor (:meth:`SegMetrics.state`) so DDP reduces them with a single
``all_reduce``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import DiceMetric
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from octseg.core.classes import CLASS_NAMES, STRUT

_EIGHT = np.ones((3, 3), dtype=bool)


def component_centroids_polar(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Cartesian centroids (y, x) in mm of the components of a polar mask (A, R).

    Components touching across the A-line seam (row A-1 next to row 0) are one component.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros((0, 2))
    lab, n = ndimage.label(mask, structure=_EIGHT)
    a, r = mask.shape
    # union-find merge across the seam
    parent = list(range(n + 1))

    def find(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    top, bot = lab[0], lab[a - 1]
    for j in np.flatnonzero(top):
        for dj in (-1, 0, 1):
            jj = j + dj
            if 0 <= jj < r and bot[jj]:
                ra, rb = find(int(top[j])), find(int(bot[jj]))
                if ra != rb:
                    parent[rb] = ra
    roots = np.array([find(i) for i in range(n + 1)])
    comp = roots[lab]
    ii, jj = np.nonzero(mask)
    theta = 2 * math.pi * ii / a
    rad = jj * float(spacing_mm)
    y, x = rad * np.sin(theta), rad * np.cos(theta)
    ids = comp[ii, jj]
    uniq, inv = np.unique(ids, return_inverse=True)
    cnt = np.bincount(inv)
    return np.stack([np.bincount(inv, weights=y) / cnt, np.bincount(inv, weights=x) / cnt], axis=1)


def match_points(pred: np.ndarray, truth: np.ndarray, tol_mm: float) -> tuple[int, int, int]:
    """(TP, FP, FN) of a one-to-one matching of point sets within ``tol_mm``."""
    if len(pred) == 0 or len(truth) == 0:
        return 0, len(pred), len(truth)
    d = np.linalg.norm(pred[:, None, :] - truth[None, :, :], axis=2)
    cost = np.where(d <= tol_mm, d, 1e6)
    rows, cols = linear_sum_assignment(cost)
    tp = int(np.sum(d[rows, cols] <= tol_mm))
    return tp, len(pred) - tp, len(truth) - tp


class SegMetrics:
    """Accumulates Dice and strut F1 over validation batches of channel-index maps."""

    def __init__(
        self,
        classes: Sequence[int],
        spacing_mm: float,
        strut_tol_mm: float = 0.1,
        device: torch.device | str = "cpu",
    ):
        self.classes = [int(c) for c in classes]
        self.n = len(self.classes)
        self.spacing_mm = float(spacing_mm)
        self.tol = float(strut_tol_mm)
        self.strut_channel = self.classes.index(STRUT) if STRUT in self.classes else None
        self.device = torch.device(device)
        self._dice = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
        self.reset()

    def reset(self) -> None:
        # [dice_sum(n), dice_count(n), inter(n), pred_sum(n), true_sum(n), tp, fp, fn]
        self.state = torch.zeros(5 * self.n + 3, dtype=torch.float64, device=self.device)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, truth: torch.Tensor) -> None:
        """``pred`` and ``truth``: (B, 1, A, R) or (B, A, R) integer channel maps."""
        if pred.ndim == 3:
            pred = pred.unsqueeze(1)
        if truth.ndim == 3:
            truth = truth.unsqueeze(1)
        pred = pred.long()
        truth = truth.long()
        n = self.n
        p1 = torch.nn.functional.one_hot(pred[:, 0], n).permute(0, 3, 1, 2).float()
        t1 = torch.nn.functional.one_hot(truth[:, 0], n).permute(0, 3, 1, 2).float()
        d = self._dice(p1, t1).to(self.device, torch.float64)  # (B, n), nan where class absent
        self._dice.reset()
        valid = ~torch.isnan(d)
        s = self.state
        s[0:n] += torch.where(valid, d, torch.zeros_like(d)).sum(0)
        s[n : 2 * n] += valid.sum(0)
        s[2 * n : 3 * n] += (p1 * t1).sum((0, 2, 3)).to(self.device, torch.float64)
        s[3 * n : 4 * n] += p1.sum((0, 2, 3)).to(self.device, torch.float64)
        s[4 * n : 5 * n] += t1.sum((0, 2, 3)).to(self.device, torch.float64)
        if self.strut_channel is not None:
            c = self.strut_channel
            pm = (pred[:, 0] == c).cpu().numpy()
            tm = (truth[:, 0] == c).cpu().numpy()
            for b in range(pm.shape[0]):
                tp, fp, fn = match_points(
                    component_centroids_polar(pm[b], self.spacing_mm),
                    component_centroids_polar(tm[b], self.spacing_mm),
                    self.tol,
                )
                s[5 * n] += tp
                s[5 * n + 1] += fp
                s[5 * n + 2] += fn

    def compute(self) -> dict[str, float]:
        s = self.state.cpu().numpy()
        n = self.n
        out: dict[str, float] = {}
        fg = []
        for i, c in enumerate(self.classes):
            name = CLASS_NAMES[c]
            cnt = s[n + i]
            out[f"dice_{name}"] = float(s[i] / cnt) if cnt > 0 else float("nan")
            out[f"n_{name}"] = float(cnt)
            denom = s[3 * n + i] + s[4 * n + i]
            out[f"dice_pooled_{name}"] = (
                float(2 * s[2 * n + i] / denom) if denom > 0 else float("nan")
            )
            if i > 0 and cnt > 0:
                fg.append(out[f"dice_{name}"])
        out["dice_mean"] = float(np.mean(fg)) if fg else float("nan")
        if self.strut_channel is not None:
            tp, fp, fn = s[5 * n], s[5 * n + 1], s[5 * n + 2]
            out["strut_tp"], out["strut_fp"], out["strut_fn"] = float(tp), float(fp), float(fn)
            out["strut_f1"] = (
                float(2 * tp / (2 * tp + fp + fn)) if (tp + fp + fn) > 0 else float("nan")
            )
        return out
