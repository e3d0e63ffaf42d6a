"""Validation metrics on the net grid: per-class Dice, pooled Dice and strut-detection F1.

* **Dice per class** (MONAI ``DiceMetric``, ``ignore_empty=True``): per frame, averaged over the
  frames where the class is present in the label (Dice is undefined on the others; the count is
  reported as ``n_<class>``).
* **Pooled Dice** (``dice_pooled_<class>``): one Dice over all pixels of all frames, i.e. the F1
  score of the summed MONAI confusion matrix (``get_confusion_matrix``,
  ``compute_confusion_matrix_metric``); it also penalises false positives on frames without
  the class.
* **Strut F1**: struts are the connected components (8-connectivity, wrapping across A-line 0;
  :func:`octseg.geometry.components.connected_components`) of the strut channel; each is reduced
  to the mean Cartesian position of its pixels (mm from the catheter centre). Predicted and
  labelled struts of a frame are matched one-to-one by
  :func:`octseg.evaluate.matching.match_struts` (Hungarian assignment on distance, the matcher
  of ``evaluate.py``); a pair closer than ``tol_mm`` is a true positive.
  F1 = 2 TP / (2 TP + FP + FN), summed over all frames.

All sums live in one float64 tensor (:attr:`SegMetrics.state`) so DDP reduces them with a
single ``all_reduce``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import DiceMetric, compute_confusion_matrix_metric, get_confusion_matrix

from octseg.core.classes import CLASS_NAMES, STRUT
from octseg.evaluate.matching import match_struts
from octseg.geometry.components import connected_components


def strut_centroids(mask: torch.Tensor, spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Struts of polar masks ``(B, A, R)``: ``(frame, yx)``, the frame of each component
    (ascending) and the mean Cartesian position (y, x) of its pixels in mm (float64).

    Components touching across the A-line seam (row A-1 next to row 0) are one component.
    """
    frame, row, col, comp, n = connected_components(mask.bool().cpu(), wrap_rows=True)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2))
    ii, jj, ids = row.numpy(), col.numpy(), comp.numpy()
    theta = 2 * math.pi * ii / mask.shape[1]
    rad = jj * float(spacing_mm)
    y, x = rad * np.sin(theta), rad * np.cos(theta)
    cnt = np.bincount(ids)
    yx = np.stack([np.bincount(ids, weights=y) / cnt, np.bincount(ids, weights=x) / cnt], axis=1)
    cframe = np.zeros(n, dtype=np.int64)
    cframe[ids] = frame.numpy()
    return cframe, yx


def _strut_rows(frame: np.ndarray, yx: np.ndarray) -> list[dict[str, float]]:
    return [{"frame": int(f), "x_mm": p[1], "y_mm": p[0]} for f, p in zip(frame, yx)]


def strut_counts(
    pred: torch.Tensor, truth: torch.Tensor, spacing_mm: float, tol_mm: float
) -> tuple[int, int, int]:
    """(TP, FP, FN) of the struts of polar strut masks ``(B, A, R)``, matched frame by frame."""
    _, counts = match_struts(
        _strut_rows(*strut_centroids(pred, spacing_mm)),
        _strut_rows(*strut_centroids(truth, spacing_mm)),
        tolerance_mm=tol_mm,
    )
    return counts["tp"], counts["fp"], counts["fn"]


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
        # [dice_sum(n), dice_count(n), confusion matrix (n x [tp, fp, tn, fn]), strut tp, fp, fn]
        self.state = torch.zeros(6 * self.n + 3, dtype=torch.float64, device=self.device)

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
        cm = get_confusion_matrix(p1, t1, include_background=True)  # (B, n, 4)
        s[2 * n : 6 * n] += cm.to(self.device, torch.float64).sum(0).reshape(-1)
        if self.strut_channel is not None:
            c = self.strut_channel
            counts = strut_counts(pred[:, 0] == c, truth[:, 0] == c, self.spacing_mm, self.tol)
            s[6 * n : 6 * n + 3] += torch.tensor(counts, dtype=torch.float64, device=self.device)

    def compute(self) -> dict[str, float]:
        """The metrics of the accumulated state (NaN where a metric is undefined)."""
        s = self.state.cpu()
        n = self.n
        pooled = compute_confusion_matrix_metric("f1 score", s[2 * n : 6 * n].reshape(n, 4))
        s = s.numpy()
        out: dict[str, float] = {}
        fg = []
        for i, c in enumerate(self.classes):
            name = CLASS_NAMES[c]
            cnt = s[n + i]
            out[f"dice_{name}"] = float(s[i] / cnt) if cnt > 0 else float("nan")
            out[f"n_{name}"] = float(cnt)
            out[f"dice_pooled_{name}"] = float(pooled[i])
            if i > 0 and cnt > 0:
                fg.append(out[f"dice_{name}"])
        out["dice_mean"] = float(np.mean(fg)) if fg else float("nan")
        if self.strut_channel is not None:
            tp, fp, fn = s[6 * n], s[6 * n + 1], s[6 * n + 2]
            out["strut_tp"], out["strut_fp"], out["strut_fn"] = float(tp), float(fp), float(fn)
            out["strut_f1"] = (
                float(2 * tp / (2 * tp + fp + fn)) if (tp + fp + fn) > 0 else float("nan")
            )
        return out


def add_score(metrics: dict[str, float]) -> dict[str, float]:
    """``score``: mean of the foreground per-class Dice values and strut F1 (where defined)."""
    vals = [
        v
        for k, v in metrics.items()
        if (
            k.startswith("dice_")
            and not k.startswith("dice_pooled")
            and k != "dice_mean"
            and k != "dice_background"
        )
        or k == "strut_f1"
    ]
    vals = [v for v in vals if not math.isnan(v)]
    metrics["score"] = float(np.mean(vals)) if vals else float("nan")
    return metrics
