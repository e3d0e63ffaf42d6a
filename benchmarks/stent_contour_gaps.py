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
import csv
from pathlib import Path

import numpy as np
import torch

from octseg.core.contour import stent_contour

BANDS = ((0, 90), (90, 120), (120, 150), (150, 180), (180, 270), (270, 361))
APPOSED_MM = 0.05


def frame_ratios(folder: Path) -> list[tuple[float, float]]:
    """(widest strut gap in degrees, stent area / lumen area) of the apposed stented frames."""
    frames = {r["frame"]: r for r in csv.DictReader(open(folder / "frames.csv"))}
    struts: dict[str, list[dict]] = {}
    for r in csv.DictReader(open(folder / "struts.csv")):
        struts.setdefault(r["frame"], []).append(r)
    out = []
    for f, rows in struts.items():
        if len(rows) < 3 or any(abs(float(r["distance_mm"])) >= APPOSED_MM for r in rows):
            continue
        ang = np.sort([float(r["angle_deg"]) for r in rows])
        gap = float(np.max(np.diff(np.r_[ang, ang[0] + 360])))
        row = frames[f]
        centre = [[float(row["lumen_centroid_y_mm"]), float(row["lumen_centroid_x_mm"])]]
        pts = [[[float(r["y_mm"]), float(r["x_mm"])] for r in rows]]
        area = stent_contour(
            torch.tensor(pts, dtype=torch.float64),
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
