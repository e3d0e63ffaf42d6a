"""Figure for docs/synth.md: synthetic lipid lesions (``octseg synth --lipid``), a thin-cap
(TCFA) frame and a thick-cap frame, the image beside it with the cap (class 5) and lipid core
(class 6) outlined, scan-converted to Cartesian, with the true plaque measurements in the titles.

    OMP_NUM_THREADS=1 python benchmarks/synth_lipid_figure.py --out docs/images/synth_lipid.png

Renders two frames of two default-preset pullbacks (seed 0, pullbacks 0 and 3; middle frames) directly from
:class:`octseg.datasets.synth.PullbackSynth`; nothing is written but the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 640  # Cartesian pixels per side
CROP_MM = 3.2  # half-width of the shown field of view


def to_cartesian(frame: np.ndarray, ps: float, mode: str) -> np.ndarray:
    """A polar frame (A, R) scan-converted to ``SIZE x SIZE`` over +-``CROP_MM``."""
    import torch

    from octseg.core.polar import polar_to_cartesian

    t = torch.from_numpy(frame[None].astype(np.float32 if mode == "bilinear" else np.uint8))
    c = (SIZE - 1) / 2.0
    out = polar_to_cartesian(
        t,
        out_size=(SIZE, SIZE),
        polar_spacing_mm=ps,
        cart_spacing_mm=CROP_MM / (SIZE / 2),
        center=(c, c),
        mode=mode,
    )
    return out[0].numpy()


def panels(index: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(grey, overlay RGB, title) of the middle frame of pullback ``index``'s lipid lesion."""
    from octseg.core.classes import FIBROUS_CAP, LIPID
    from octseg.datasets.synth import PullbackSynth, draw_pullback, grid_from
    from octseg.datasets.synth.truth import frame_truth

    grid = grid_from("default")
    s = PullbackSynth(draw_pullback(grid, 0, index, lipid=True))
    les = s.p.lipids[0]
    f = (les.start_frame + les.end_frame) // 2
    row = frame_truth(s.geometry(f), grid.frame_spacing_mm, grid.depth_mm, 0.2)[0]
    img, lab = s.frame(f)
    ps = grid.pixel_spacing_mm
    grey = np.clip(to_cartesian(img, ps, "bilinear"), 0, 255).astype(np.uint8)
    lab_c = to_cartesian(lab, ps, "nearest").astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for cls, col in ((FIBROUS_CAP, (80, 200, 255)), (LIPID, (255, 200, 0))):
        m = lab_c == cls
        rgb[m & ~ndimage.binary_erosion(m)] = col
    tcfa = "TCFA" if row["tcfa"] else "no TCFA"
    title = (
        f"synth-{index:03d} frame {f}: lipid arc {row['lipid_arc_deg']:.0f} deg, "
        f"min cap {row['cap_min_thickness_um']:.0f} um ({tcfa})"
    )
    return grey, rgb, title


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    fig, axes = plt.subplots(2, 2, figsize=(10, 10.4))
    for k, index in enumerate((0, 3)):
        grey, rgb, title = panels(index)
        axes[k, 0].imshow(grey, cmap="gray", vmin=0, vmax=255)
        axes[k, 1].imshow(rgb)
        axes[k, 0].set_title(title, fontsize=9, loc="left")
        axes[k, 1].set_title("cap (class 5, blue), lipid core (class 6, orange)", fontsize=9)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=80)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
