"""Figures of the strut contour rules (docs/metrics.md): predicted labels of console frames around
a strut, and the lumen contour the geometry draws from them under an older rule and the current
one. ``--old touch`` (default): only a ray whose border touches a strut is interpolated, against
a strut within ``strut_shadow_mm`` before the exit (apposed struts whose shadow the model started
to label lumen). ``--old margin1``: the 1-degree margin about strut rays, against
``strut_margin_deg`` (malapposed struts beside which the model bends the border in).

    python benchmarks/strut_shadow_figure.py AUTO INPUTS PB:FRAME:X_MM:Y_MM ... --out fig.png \
        [--old margin1] [--truth MANUAL]

AUTO: an ``infer.py`` output folder; INPUTS: the console PNG folders it read (``<id>/NNNN.png``);
MANUAL: label maps of the truth (``<id>/labels.npz``), whose contour is drawn dashed; each panel
is centred on the strut at (X_MM, Y_MM) from the catheter (``struts.csv``).
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
OLD_RULES = {  # an older rule's settings, given the pixel spacing
    "touch": lambda ps: GeometrySettings(strut_shadow_mm=0.5 * 0.5 * ps),  # one ray sample
    "margin1": lambda ps: GeometrySettings(strut_margin_deg=1.0),
}
OLD_NAMES = {"touch": "old rule", "margin1": "1° strut margin"}


def contour_px(lab: np.ndarray, ps: float, center, settings: GeometrySettings) -> np.ndarray:
    """The geometry's lumen contour of one Cartesian frame as (row, col) pixel points."""
    t = torch.from_numpy(np.ascontiguousarray(lab))[None]
    radii, theta, _ = catheter_contour(t, "cartesian", ps, tuple(center), settings)
    r = radii[0].numpy() / ps
    th = theta.numpy()
    return np.stack([center[0] + r * np.sin(th), center[1] + r * np.cos(th)], 1)


def panel(ax, auto: Path, inputs: Path, spec: str, old: str, truth: Path | None) -> None:
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
    rules = [
        (OLD_RULES[old](ps), lab, "y", "-", OLD_NAMES[old]),
        (GeometrySettings(), lab, "lime", "-", "now"),
    ]
    if truth is not None:
        truth_lab = load_labels(truth / pid / "labels.npz").labels[f]
        rules.append((GeometrySettings(), truth_lab, "w", "--", "truth"))
    for settings, labels, colour, style, name in rules:
        pts = contour_px(labels, ps, c, settings)
        ax.plot(pts[:, 1] - c0, pts[:, 0] - r0, colour, ls=style, lw=1.4, label=name)
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
    p.add_argument("--old", choices=sorted(OLD_RULES), default="touch", help="the older rule drawn")
    p.add_argument("--truth", type=Path, help="truth label maps (<id>/labels.npz), drawn dashed")
    a = p.parse_args(argv)
    fig, axes = plt.subplots(1, len(a.panels), figsize=(3.2 * len(a.panels), 3.6))
    for ax, spec in zip(np.atleast_1d(axes), a.panels):
        panel(ax, a.auto, a.inputs, spec, a.old, a.truth)
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8)
    truth = ", truth (white, dashed)" if a.truth else ""
    fig.suptitle(
        "predicted lumen (cyan), strut (red), geometry's lumen contour: "
        f"{OLD_NAMES[a.old]} (yellow), now (green){truth}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
