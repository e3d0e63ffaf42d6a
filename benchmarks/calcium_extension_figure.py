"""Figure for docs/calcium_candidates.md (eighteenth session): held-out hybrid frames unrolled
about the catheter (angle across, depth down), with the true calcium and the calcium of two
first ``infer.py`` run outlined and what the second adds filled (e.g. without and with
``postprocess.calcium_extend_prob``).

    python benchmarks/calcium_extension_figure.py POOL AUTO_A AUTO_B docs/images/x.png \
        --frames d4-v1:29 d1-v2:26 --labels "recipe" "recipe + extension 0.15"

POOL is a ``benchmarks/hybrid_pool.py pool`` folder (``inputs/PID`` console PNGs,
``manual/PID/labels.npz``); AUTO_A / AUTO_B are ``infer.py`` outputs on ``POOL/inputs``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from octseg.core.classes import CALCIUM
from octseg.core.polar import cartesian_to_polar
from octseg.io.labels import load_labels

N_ALINES, DEPTH_MM, STEP_MM = 720, 3.6, 0.012
COLOURS = {"truth": (255, 60, 60), "a": (255, 200, 0), "b": (0, 255, 80)}


def unrolled(cart: np.ndarray, spacing: float, centre, nearest: bool) -> np.ndarray:
    """A Cartesian frame (or label map) unrolled about the catheter: (depth, angle)."""
    x = torch.from_numpy(cart.astype(np.int64 if nearest else np.float32))[None]
    pol = cartesian_to_polar(
        x,
        n_alines=N_ALINES,
        n_samples=int(DEPTH_MM / STEP_MM),
        cart_spacing_mm=spacing,
        polar_spacing_mm=STEP_MM,
        center=centre,
        mode="nearest" if nearest else "bilinear",
    )[0]
    return pol.numpy().T


def outlined(grey: np.ndarray, masks: dict[str, np.ndarray], added=None) -> np.ndarray:
    """``grey`` with each mask outlined in its colour and ``added`` filled (half opacity)."""
    rgb = np.repeat((np.clip(grey, 0, 1) * 255).astype(np.uint8)[..., None], 3, -1)
    if added is not None:
        rgb[added] = (rgb[added] * 0.5 + np.array(COLOURS["b"]) * 0.5).astype(np.uint8)
    for key, m in masks.items():
        rgb[m & ~ndimage.binary_erosion(m)] = COLOURS[key]
    return rgb


def at_frame(lf, frame: int) -> np.ndarray:
    """The label map of pullback frame ``frame`` (files may label only some frames)."""
    hit = np.flatnonzero(lf.frames == frame)
    if hit.size == 0:
        raise SystemExit(f"frame {frame} is not labelled in {lf.frames.tolist()[:5]}...")
    return lf.labels[int(hit[0])]


def panel(pool: Path, autos: list[Path], pid: str, frame: int) -> list[np.ndarray]:
    truth = load_labels(pool / "manual" / pid / "labels.npz")
    sp, centre = truth.pixel_spacing_mm, truth.center
    img = np.asarray(Image.open(pool / "inputs" / pid / f"{frame:04d}.png").convert("L")) / 255.0
    grey = unrolled(img, sp, centre, nearest=False)
    ca = {"truth": unrolled(at_frame(truth, frame) == CALCIUM, sp, centre, nearest=True) > 0}
    for key, auto in zip(("a", "b"), autos, strict=True):
        lab = at_frame(load_labels(auto / pid / "labels.npz"), frame) == CALCIUM
        ca[key] = unrolled(lab, sp, centre, nearest=True) > 0
    return [
        outlined(grey, {"truth": ca["truth"]}),
        outlined(grey, {"a": ca["a"]}, ca["b"] & ~ca["a"]),
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pool", type=Path)
    p.add_argument("auto_a", type=Path)
    p.add_argument("auto_b", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--frames", nargs="+", required=True, help="PID:FRAME")
    p.add_argument("--labels", nargs=2, default=["run A", "run B"])
    a = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shots = [(s.split(":")[0], int(s.split(":")[1])) for s in a.frames]
    fig, axes = plt.subplots(len(shots), 2, figsize=(12, 1.9 * len(shots)), squeeze=False)
    for row, (pid, frame) in zip(axes, shots, strict=True):
        for ax, im, title in zip(
            row,
            panel(a.pool, [a.auto_a, a.auto_b], pid, frame),
            ["true calcium (red)", f"{a.labels[0]} (yellow); added by {a.labels[1]} (green)"],
            strict=True,
        ):
            ax.imshow(im, aspect="auto", extent=(0, 360, DEPTH_MM, 0))
            ax.set_title(f"{pid} frame {frame}: {title}", fontsize=8)
            ax.set_xlabel("angle about the catheter (°)", fontsize=7)
            ax.set_ylabel("depth (mm)", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
