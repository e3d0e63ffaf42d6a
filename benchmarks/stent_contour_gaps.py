"""Stent area against lumen area for apposed stents, by the widest arc without struts.

For every frame of a hybrid pool (``hybrid_pool.py pool``) whose true struts all lie within
0.05 mm of the lumen contour (an apposed stent, whose area should be the lumen's), the stent
area of the product's contour (:func:`octseg.core.contour.stent_contour`) through the true
strut points is divided by the true lumen area; the ratio's median and 5-95% range are printed
per band of the frame's widest angular gap between neighbouring struts (docs/metrics.md,
Stent). Usage: ``python benchmarks/stent_contour_gaps.py POOL``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from octseg.core.contour import stent_contour

BANDS = ((0, 90), (90, 120), (120, 150), (150, 180), (180, 270), (270, 361))
APPOSED_MM = 0.05


def frame_ratios(folder: Path) -> list[tuple[float, float]]:
    """(widest strut gap in degrees, stent area / lumen area) of the apposed stented frames."""
    frames = pd.read_csv(folder / "frames.csv").set_index("frame")
    out = []
    for f, rows in pd.read_csv(folder / "struts.csv").groupby("frame", sort=False):
        if len(rows) < 3 or (rows["distance_mm"].abs() >= APPOSED_MM).any():
            continue
        ang = np.sort(rows["angle_deg"].to_numpy())
        gap = float(np.max(np.diff(np.r_[ang, ang[0] + 360])))
        row = frames.loc[f]
        centre = [[row["lumen_centroid_y_mm"], row["lumen_centroid_x_mm"]]]
        area = stent_contour(
            torch.tensor(rows[["y_mm", "x_mm"]].to_numpy()[None], dtype=torch.float64),
            torch.ones(1, len(rows), dtype=torch.bool),
            torch.tensor(centre, dtype=torch.float64),
        )[2]
        out.append((gap, float(area[0]) / float(row["lumen_area_mm2"])))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pool", type=Path, help="a pool of hybrid_pool.py (its manual/ tables)")
    a = p.parse_args(argv)
    r = np.array([x for d in sorted((a.pool / "manual").iterdir()) for x in frame_ratios(d)])
    print("| widest strut gap ° | apposed frames | stent / lumen area, median (5-95%) |")
    print("|---|---|---|")
    for lo, hi in BANDS:
        v = r[(r[:, 0] >= lo) & (r[:, 0] < hi), 1] if len(r) else np.zeros(0)
        if len(v):
            q5, q50, q95 = np.percentile(v, [5, 50, 95])
            print(f"| {lo}-{min(hi, 360)} | {len(v)} | {q50:.3f} ({q5:.3f}-{q95:.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
