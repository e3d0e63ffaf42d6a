"""SegMetrics against the hand-written reference it replaced (per-frame seam merge with
union-find, its own Hungarian matcher, a hand-written pooled Dice): the values must agree.

Tolerance: counts (strut TP/FP/FN, n_<class>) exactly; Dice values to 1e-12 absolute (the same
float64 sums in the same order, so in practice they are bit-identical).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from octseg.core.classes import CLASS_NAMES, STRUT
from octseg.train.metrics import SegMetrics, strut_centroids, strut_counts

TOL = 1e-12


def _ref_centroids(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """The former ``component_centroids_polar``: ndimage labels, seam merged by union-find."""
    if not mask.any():
        return np.zeros((0, 2))
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    a, r = mask.shape
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
    ii, jj = np.nonzero(mask)
    theta = 2 * math.pi * ii / a
    rad = jj * float(spacing_mm)
    y, x = rad * np.sin(theta), rad * np.cos(theta)
    _, inv = np.unique(roots[lab][ii, jj], return_inverse=True)
    cnt = np.bincount(inv)
    return np.stack([np.bincount(inv, weights=y) / cnt, np.bincount(inv, weights=x) / cnt], 1)


def _ref_match(pred: np.ndarray, truth: np.ndarray, tol_mm: float) -> tuple[int, int, int]:
    """The former ``match_points``."""
    if len(pred) == 0 or len(truth) == 0:
        return 0, len(pred), len(truth)
    d = np.linalg.norm(pred[:, None, :] - truth[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(np.where(d <= tol_mm, d, 1e6))
    tp = int(np.sum(d[rows, cols] <= tol_mm))
    return tp, len(pred) - tp, len(truth) - tp


def _ref_metrics(pred, truth, classes, spacing, tol) -> dict[str, float]:
    """The former SegMetrics.update + compute on one batch (B, A, R)."""
    n = len(classes)
    p1 = torch.nn.functional.one_hot(pred, n).permute(0, 3, 1, 2).float()
    t1 = torch.nn.functional.one_hot(truth, n).permute(0, 3, 1, 2).float()
    d = DiceMetric(include_background=True, reduction="none", ignore_empty=True)(p1, t1).double()
    valid = ~torch.isnan(d)
    dsum, dcnt = torch.where(valid, d, torch.zeros_like(d)).sum(0), valid.sum(0).double()
    inter = (p1 * t1).sum((0, 2, 3)).double()
    psum, tsum = p1.sum((0, 2, 3)).double(), t1.sum((0, 2, 3)).double()
    out: dict[str, float] = {}
    for i, c in enumerate(classes):
        name = CLASS_NAMES[c]
        out[f"dice_{name}"] = float(dsum[i] / dcnt[i]) if dcnt[i] > 0 else float("nan")
        den = psum[i] + tsum[i]
        out[f"dice_pooled_{name}"] = float(2 * inter[i] / den) if den > 0 else float("nan")
    ch = classes.index(STRUT)
    tot = np.zeros(3)
    for b in range(pred.shape[0]):
        pc = _ref_centroids((pred[b] == ch).numpy(), spacing)
        tc = _ref_centroids((truth[b] == ch).numpy(), spacing)
        tot += _ref_match(pc, tc, tol)
    out["strut_tp"], out["strut_fp"], out["strut_fn"] = map(float, tot)
    return out


def _random_maps(seed: int, b=4, a=40, r=24, n=5):
    g = torch.Generator().manual_seed(seed)
    truth = torch.zeros(b, a, r, dtype=torch.long)
    truth[:, :, :8] = 1
    truth[:, 5:15, 10:14] = 2
    truth[:, 30:36, 14:16] = 4
    strut = torch.rand(b, a, r, generator=g) < 0.04
    truth[strut] = 3
    truth[:, 0, 18] = truth[:, a - 1, 19] = 3  # a strut across the seam
    pred = truth.clone()
    flip = torch.rand(b, a, r, generator=g) < 0.08
    pred[flip] = torch.randint(0, n, (int(flip.sum()),), generator=g)
    pred[1, :, :] = torch.where(pred[1] == 2, 0, pred[1])  # a frame without calcium predicted
    return pred, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tol", [0.1, 0.25])
def test_segmetrics_equals_former_implementation(seed, tol):
    classes, spacing = [0, 1, 2, 3, 4], 0.08
    pred, truth = _random_maps(seed)
    m = SegMetrics(classes, spacing, tol)
    m.update(pred[:2, None], truth[:2, None])  # two batches, as in validation
    m.update(pred[2:], truth[2:])
    got = m.compute()
    ref = _ref_metrics(pred, truth, classes, spacing, tol)
    assert ref["strut_tp"] > 0 and ref["strut_fp"] > 0  # the matcher is exercised
    for key, val in ref.items():
        assert got[key] == pytest.approx(val, abs=TOL, nan_ok=True), key


def test_strut_centroids_equal_former_per_frame_centroids():
    pred, _ = _random_maps(3)
    mask = pred == 3
    frame, yx = strut_centroids(mask, 0.08)
    for b in range(mask.shape[0]):
        ref = _ref_centroids(mask[b].numpy(), 0.08)
        got = yx[frame == b]
        order = lambda p: np.lexsort((p[:, 1], p[:, 0]))  # noqa: E731
        np.testing.assert_allclose(got[order(got)], ref[order(ref)], rtol=0, atol=TOL)


def test_strut_counts_empty_sides():
    z = torch.zeros(2, 16, 8, dtype=torch.bool)
    t = z.clone()
    t[0, 3, 4] = t[1, 9, 2] = True
    assert strut_counts(z, t, 0.1, 0.1) == (0, 0, 2)
    assert strut_counts(t, z, 0.1, 0.1) == (0, 2, 0)
    assert strut_counts(t, t, 0.1, 0.1) == (2, 0, 0)
