"""Known failure modes of a model, for its model card: the worst frames of its validation
(benchmarks/validate_model.py's work folder) with the reference and the product's outline.

    python benchmarks/model_card_figure.py WORK --console DATA/hybrid_test_console \
        --out docs/images/model_card_failures.png

Panels: the real test frame with the lowest lumen Dice (clean), the same under the worst
corruption variant, and the hybrid test frame whose calcium differs most from the truth (pixels
of calcium in one and not the other). Reference green, product red.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.robustness_figure import panel  # noqa: E402

GREEN, RED = (60, 255, 60), (255, 50, 50)


def _pair(auto: Path, manual: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, product labels, reference labels) on the frames both label."""
    from octseg.io.labels import load_labels

    a, m = load_labels(auto), load_labels(manual)
    rows = {int(f): i for i, f in enumerate(a.frames)}
    both = [(j, int(f)) for j, f in enumerate(m.frames) if int(f) in rows]
    frames = np.array([f for _, f in both])
    return frames, a.labels[[rows[f] for _, f in both]], m.labels[[j for j, _ in both]]


def _image(inputs: Path, frame: int) -> np.ndarray:
    """The image of pullback frame ``frame`` of a PNG folder: its file in octseg's order."""
    from PIL import Image

    from octseg.io.stack import frame_files

    return np.asarray(Image.open(frame_files(inputs)[frame]).convert("RGB"))


def worst_lumen(work: Path, pid: str) -> tuple[str, np.ndarray]:
    from octseg.core.classes import LUMEN
    from octseg.evaluate.segmentation import dice_frames

    suite = work / "real" / "suite"
    frames, auto, manual = _pair(
        work / "real" / "infer" / pid / "labels.npz", suite / "manual" / pid / "labels.npz"
    )
    dice = dice_frames(auto, manual, LUMEN)  # the evaluation's Dice (MONAI)
    i = int(np.argmin(dice))
    pred, ref = auto == LUMEN, manual == LUMEN
    title = f"real test, {pid}, image {frames[i]}: lumen Dice {dice[i]:.2f}"
    img = _image(suite / "inputs" / pid, int(frames[i]))
    return title, panel(img, [(ref[i], GREEN), (pred[i], RED)])


def worst_calcium(work: Path, console: Path) -> tuple[str, np.ndarray]:
    from octseg.core.classes import CALCIUM

    best = (-1, "", 0, None, None)
    for manual in sorted((console / "manual").iterdir()):
        auto = work / "hybrid" / "infer" / manual.name / "labels.npz"
        frames, labels, truth = _pair(auto, manual / "labels.npz")
        pred, ref = labels == CALCIUM, truth == CALCIUM
        wrong = (pred ^ ref).sum(axis=(1, 2))
        i = int(np.argmax(wrong))
        if wrong[i] > best[0]:
            best = (int(wrong[i]), manual.name, int(frames[i]), pred[i], ref[i])
    _, pid, frame, pred, ref = best
    title = f"hybrid test, {pid}, image {frame}: calcium truth green, product red"
    return title, panel(_image(console / "inputs" / pid, frame), [(ref, GREEN), (pred, RED)])


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path, help="benchmarks/validate_model.py --work folder")
    p.add_argument("--console", type=Path, required=True, help="hybrid test console exports")
    p.add_argument("--corrupted", default="blood-3", help="suite variant for the second panel")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    panels = [
        worst_lumen(a.work, "none"),
        worst_lumen(a.work, a.corrupted),
        worst_calcium(a.work, a.console),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 5))
    for ax, (title, img) in zip(axes, panels, strict=True):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("reference outline green, product (octseg infer) red", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=80)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
