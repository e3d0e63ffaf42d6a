"""How well the readers tell display maps apart (docs/io.md, "Other colour maps").

Three real frames of a Danilov pullback (first, middle, last; the vendor's sepia export) are
re-drawn in each map (burned-in overlays kept, as the robustness suite does), optionally saved as
JPEG, and scored against the sepia map and every known map (``octseg.io.color.map_fit_score``).
Prints one row per map and encoding: the best two scores, what ``display_metadata`` decides, and
how far the reader's grey lies from the frames' own (mean over pixels off the overlays, levels).

    python benchmarks/display_map_fit.py [--src ../shared/data/ivoct-danilov/pullback-001]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from octseg.datasets.danilov.reader import list_danilov, read_rgb  # noqa: E402
from octseg.datasets.robustness import redraw  # noqa: E402
from octseg.io.color import (  # noqa: E402
    DISPLAY_MAPS,
    FIT_PIXELS,
    _at_most,
    colormap_lut,
    display_lut,
    display_metadata,
    map_fit_score,
    overlay_mask,
    rgb_frames_to_gray,
    sepia_to_gray,
)

UNKNOWN = ("gnuplot2", "CMRmap", "gist_earth", "Wistia", "YlOrBr_r", "Blues_r", "autumn", "hot_r")


def redrawn(rgb: np.ndarray, name: str, quality: int | None) -> np.ndarray:
    """A sepia frame in another map (``"vendor"``: as exported), overlays kept, maybe JPEG."""
    out = rgb.copy() if name == "vendor" else redraw(rgb, name)
    if quality is None:
        return out
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def row(frames: list[np.ndarray], name: str, quality: int | None) -> str:
    drawn = [redrawn(f, name, quality) for f in frames]
    lit = np.concatenate([_at_most(d[d.max(axis=-1) >= 8], FIT_PIXELS) for d in drawn])
    scores = {m: map_fit_score(lit, colormap_lut(m)) for m in ("sepia", *DISPLAY_MAPS)}
    best = sorted(scores, key=scores.__getitem__)[:2]
    ratio = scores[best[0]] / scores[best[1]]
    meta = display_metadata(drawn)
    lut = display_lut(meta)
    errs = [
        np.abs(rgb_frames_to_gray(d, lut=lut) - sepia_to_gray(f))[~overlay_mask(f)].mean() * 255
        for f, d in zip(frames, drawn, strict=True)
    ]
    best_txt = ", ".join(f"{m} {scores[m]:.1f}" for m in best)
    decided = meta.get("display_map", f"({meta.get('display')})")
    enc = "PNG" if quality is None else f"JPEG {quality}"
    return f"| {name} | {enc} | {best_txt} | {ratio:.2f} | {decided} | {np.mean(errs):.1f} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default="../shared/data/ivoct-danilov/pullback-001")
    args = p.parse_args()
    paths, _ = list_danilov(args.src)
    frames = [read_rgb(paths[i]) for i in (0, len(paths) // 2, len(paths) - 1)]
    print("| map | encoding | best two scores | ratio | read through | grey error (levels) |")
    print("|---|---|---|---|---|---|")
    for name in ("vendor", *DISPLAY_MAPS, *UNKNOWN):
        for quality in (None, 75):
            print(row(frames, name, quality), flush=True)


if __name__ == "__main__":
    main()
