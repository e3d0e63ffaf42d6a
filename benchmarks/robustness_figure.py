"""Figure for docs/real_data.md: one corrupted real frame of the robustness suite, the expert's
lumen and the lumen that the product (``labels.npz`` of infer.py, area from its ``frames.csv``)
found before and after a change.

    python benchmarks/robustness_figure.py WORK_BEFORE WORK_AFTER --pullback hard-2 --frame 9 \
        --out docs/images/robustness_hard_frame.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def outline(mask: np.ndarray, width: int = 2) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, iterations=width)


def panel(rgb: np.ndarray, masks: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    out = rgb.copy()
    for m, col in masks:
        out[outline(m)] = col
    return out


def area(work: Path, pid: str, frame: int) -> float:
    from octseg.geometry.tables import read_csv

    rows = read_csv(work / "infer" / pid / "frames.csv")
    return float(next(r for r in rows if int(r["frame"]) == frame)["lumen_area_mm2"] or 0.0)


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from octseg.core.classes import LUMEN
    from octseg.geometry.tables import read_csv
    from octseg.io.labels import load_labels

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path, help="--work folder of the run before")
    p.add_argument("after", type=Path, help="--work folder of the run after")
    p.add_argument("--pullback", default="hard-2")
    p.add_argument("--frame", type=int, default=9)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    suite = a.after / "suite"
    files = sorted((suite / "inputs" / a.pullback).glob("*.png"))
    rgb = np.asarray(Image.open(files[a.frame]).convert("RGB"))
    expert = load_labels(suite / "manual" / a.pullback / "labels.npz").labels[a.frame] == LUMEN
    truth = read_csv(suite / "manual" / a.pullback / "frames.csv")[a.frame]["lumen_area_mm2"]
    green, red, cyan = (60, 255, 60), (255, 50, 50), (80, 200, 255)
    panels = [("input (corrupted held-out frame)", panel(rgb, []))]
    for name, work, col in (("before", a.before, red), ("after", a.after, cyan)):
        lf = load_labels(work / "infer" / a.pullback / "labels.npz")
        i = int(np.flatnonzero(lf.frames == a.frame)[0])
        pred = lf.labels[i] == LUMEN
        inter = (pred & expert).sum()
        dice = 2 * inter / max(pred.sum() + expert.sum(), 1)
        err = (area(work, a.pullback, a.frame) - truth) / truth * 100
        title = f"{name}: Dice {dice:.3f}, lumen area {err:+.0f}%"
        panels.append((title, panel(rgb, [(expert, green), (pred, col)])))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle(
        f"{a.pullback} frame {a.frame}: expert lumen green, product lumen red (before) / blue "
        f"(after); expert area {truth:.2f} mm² (assumed 0.01 mm/px)",
        fontsize=9,
    )
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
