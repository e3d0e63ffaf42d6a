"""Tiny constructed inputs for the evaluation tests (no dependence on the generator)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from octseg.io.labels import LabelFile, save_labels


def polar_labels(
    n_frames: int = 24,
    n_alines: int = 96,
    n_samples: int = 80,
    spacing: float = 0.025,
    frame_spacing: float = 0.2,
    lumen_mm: float = 1.2,
    seed: int = 0,
) -> LabelFile:
    """A polar pullback: lumen of slowly varying radius, calcium sector in frames 6-14 and
    struts (3-pixel blobs, one malapposed) in frames 4-18."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((n_frames, n_alines, n_samples), dtype=np.uint8)
    r = np.arange(n_samples) * spacing
    for f in range(n_frames):
        rad = lumen_mm + 0.15 * math.sin(f / 5.0)
        lab[f][:, r < rad] = 1
        if 6 <= f <= 14:
            arc = 60 + 8 * (f - 6)  # degrees
            a1 = int(round(arc / 360 * n_alines))
            lab[f, :a1][:, (r >= rad + 0.1) & (r < rad + 0.5)] = 2
        if 4 <= f <= 18:
            for k in range(8):
                a = int(k * n_alines / 8 + rng.integers(0, 3))
                extra = 0.3 if k == 3 else 0.0  # one malapposed strut per frame
                j = int(round((rad - extra) / spacing))
                lab[f, a : a + 2, j - 1 : j + 1] = 3
    return LabelFile(
        labels=lab, space="polar", pixel_spacing_mm=spacing, frame_spacing_mm=frame_spacing
    )


def make_cohort(root: Path, n: int = 2) -> Path:
    """``root/<id>/labels.npz`` and ``root/<id>/truth/`` tables measured by the geometry module."""
    from octseg.geometry import measure_labels

    for i in range(n):
        d = root / f"pb{i:02d}"
        d.mkdir(parents=True, exist_ok=True)
        lf = polar_labels(seed=i, lumen_mm=1.1 + 0.1 * i)
        save_labels(d / "labels.npz", lf)
        measure_labels(lf).write(d / "truth")
    return root


def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson's score interval written out (another code path than statsmodels')."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def cluster_share_interval(hits: list[int], clusters: str) -> tuple[float, float]:
    """The malapposed share's interval over pullbacks by hand: the CR1 variance of the share,
    the effective sample size (at most n) and Wilson's interval with t on K - 1 df."""
    from scipy import stats as sst

    x, names = np.asarray(hits, float), np.asarray(list(clusters))
    n, p, k = x.size, x.mean(), len(set(clusters))
    resid = np.array([x[names == c].sum() - p * (names == c).sum() for c in sorted(set(clusters))])
    var = k / (k - 1) * (resid**2).sum() / n**2
    return wilson(p, min(n, p * (1 - p) / var), sst.t.ppf(0.975, k - 1))
