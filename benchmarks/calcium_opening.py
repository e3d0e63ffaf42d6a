"""Would a morphological opening of the calcium mask cut the maximum-thickness over-read?

Session 52's probe (``benchmarks/thickness_probe.py``) found that part of the automated maximum
calcium thickness error is *selection*: calcium called a little beyond the truth on some rays,
which the maximum picks. This applies a binary opening (a disk of ``--radius-px`` pixels, per
frame, ``scipy.ndimage.binary_opening``) to the calcium of every ``labels.npz`` under ``AUTO``
(calcium the opening removes becomes background), re-measures the result with the product's
geometry (``octseg.geometry.measure_labels``) and writes one pullback folder per input, so that
``evaluate.py`` compares it as it compares ``infer.py``'s outputs:

    python benchmarks/calcium_opening.py AUTO OUT --radius-px 3
    python evaluate.py auto=OUT manual=MANUAL out=EVAL settings.plots=false

Cartesian label maps only (``infer.py``'s console-export outputs); pullbacks already written
under ``OUT`` are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.geometry.measure import measure_labels
from octseg.io.labels import load_labels, save_labels


def opened(labels: np.ndarray, radius_px: int) -> np.ndarray:
    """``labels`` ``(F, H, W)`` with each frame's calcium opened by a disk of ``radius_px``."""
    yy, xx = np.mgrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    disk = yy**2 + xx**2 <= radius_px**2
    out = labels.copy()
    for f in range(out.shape[0]):
        ca = out[f] == CALCIUM
        if ca.any():
            out[f][ca & ~ndi.binary_opening(ca, structure=disk)] = BACKGROUND
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("auto", type=Path, help="infer.py output folder (pullback sub-folders)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--radius-px", type=int, default=3)
    args = ap.parse_args()
    for d in sorted(p for p in args.auto.iterdir() if (p / "labels.npz").is_file()):
        dst = args.out / d.name
        if (dst / "summary.json").is_file():
            continue
        lf = load_labels(d / "labels.npz")
        if lf.space != "cartesian":
            raise SystemExit(f"{d / 'labels.npz'}: polar label maps are not supported")
        lf.labels = opened(lf.labels, args.radius_px)
        dst.mkdir(parents=True, exist_ok=True)
        save_labels(dst / "labels.npz", lf, compress_level=1)
        measure_labels(lf).write(dst)  # summary.json last: the resume marker
        if (d / "done.json").is_file():
            shutil.copy(d / "done.json", dst / "done.json")
        print(d.name)


if __name__ == "__main__":
    main()
