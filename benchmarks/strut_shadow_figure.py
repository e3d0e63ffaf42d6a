"""Figure of the strut-shadow contour rule (docs/metrics.md): predicted labels of console frames
with an apposed strut whose shadow the model started to label lumen, and the lumen contour the
geometry draws from them under the old rule (only a ray whose border touches a strut is
interpolated) and the current one (a strut within ``strut_shadow_mm`` before the exit).

    python benchmarks/strut_shadow_figure.py AUTO INPUTS PB:FRAME:X_MM:Y_MM ... --out fig.png

AUTO: an ``infer.py`` output folder; INPUTS: the console PNG folders it read (``<id>/NNNN.png``);
each panel is centred on the strut at (X_MM, Y_MM) from the catheter (``struts.csv``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from octseg.geometry import GeometrySettings  # noqa: E402
from octseg.geometry.lumen import catheter_contour  # noqa: E402
from octseg.io.labels import load_labels  # noqa: E402

HALF = 45  # pixels each side of the strut


def contour_px(lab: np.ndarray, ps: float, center, settings: GeometrySettings) -> np.ndarray:
    """The geometry's lumen contour of one Cartesian frame as (row, col) pixel points."""
    t = torch.from_numpy(np.ascontiguousarray(lab))[None]
    radii, theta, _ = catheter_contour(t, "cartesian", ps, tuple(center), settings)
    r = radii[0].numpy() / ps
    th = theta.numpy()
    return np.stack([center[0] + r * np.sin(th), center[1] + r * np.cos(th)], 1)


def panel(ax, auto: Path, inputs: Path, spec: str) -> None:
    pid, frame, x_mm, y_mm = spec.split(":")
    f = int(frame)
    lf = load_labels(auto / pid / "labels.npz")
    lab, ps, c = lf.labels[f], float(lf.pixel_spacing_mm), lf.catheter_center
    row, col = c[0] + float(y_mm) / ps, c[1] + float(x_mm) / ps
    img = np.asarray(Image.open(inputs / pid / f"{f:04d}.png").convert("L"))
    r0, c0 = int(row) - HALF, int(col) - HALF
    ax.imshow(img[r0 : r0 + 2 * HALF, c0 : c0 + 2 * HALF], cmap="gray")
    crop = lab[r0 : r0 + 2 * HALF, c0 : c0 + 2 * HALF]
    ax.contour(crop == 3, [0.5], colors="r", linewidths=1.0)
    ax.contourf(crop == 1, [0.5, 1.5], colors="c", alpha=0.18)
    old = GeometrySettings(strut_shadow_mm=0.5 * 0.5 * ps)  # one ray sample: "touches"
    for settings, colour, name in ((old, "y", "old rule"), (GeometrySettings(), "lime", "now")):
        pts = contour_px(lab, ps, c, settings)
        ax.plot(pts[:, 1] - c0, pts[:, 0] - r0, colour, lw=1.4, label=name)
    ax.plot([col - c0], [row - r0], "r+", ms=10)
    ax.set_xlim(0, 2 * HALF)
    ax.set_ylim(2 * HALF, 0)
    ax.set_title(f"{pid} frame {f}", fontsize=9)
    ax.axis("off")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("auto", type=Path)
    p.add_argument("inputs", type=Path)
    p.add_argument("panels", nargs="+", help="PB:FRAME:X_MM:Y_MM")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    fig, axes = plt.subplots(1, len(a.panels), figsize=(3.2 * len(a.panels), 3.6))
    for ax, spec in zip(np.atleast_1d(axes), a.panels):
        panel(ax, a.auto, a.inputs, spec)
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(
        "predicted lumen (cyan), strut (red), geometry's lumen contour: old rule (yellow), now (green)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
