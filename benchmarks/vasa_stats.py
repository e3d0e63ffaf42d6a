"""The vasa vasorum the expert labelled on a Danilov pullback (mask channel 3): size, depth
behind the lumen border, darkness against the tissue around them, and the frames they lie on;
the numbers the hybrid generator's vasa vasorum are drawn from (docs/real_data.md, section 2).

    python benchmarks/vasa_stats.py ../shared/data/ivoct-danilov/pullback-001 [--out R.json]

Per connected component of channel 3: equivalent diameter, mean distance of its pixels from
the lumen mask (the centre's depth, near enough for these small discs), median grey inside
(eroded by one pixel) over the median of a ring 2-6 pixels outside it (lumen excluded); the
5th, 25th, 50th, 75th and 95th percentiles over all components. Pixel spacing: the assumed
0.01 mm of ``octseg.datasets.danilov.build`` (not recorded in the data).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from octseg.core import atomic
from octseg.datasets.danilov.build import ASSUMED_PIXEL_SPACING_MM
from octseg.datasets.danilov.reader import list_danilov, read_mask, read_rgb

PERCENTILES = (5, 25, 50, 75, 95)


def components(grey: np.ndarray, lumen: np.ndarray, vasa: np.ndarray, ps: float) -> list[dict]:
    """One dict per vas vasorum of one frame."""
    depth = ndimage.distance_transform_edt(~lumen) * ps
    lab, n = ndimage.label(vasa)
    out = []
    for k in range(1, n + 1):
        c = lab == k
        inner = ndimage.binary_erosion(c) if c.sum() > 8 else c
        grown = ndimage.binary_dilation(c, iterations=6)
        ring = grown & ~ndimage.binary_dilation(c, iterations=2) & ~lumen
        out.append(
            {
                "diameter_mm": float(2 * np.sqrt(c.sum() / np.pi) * ps),
                "depth_mm": float(depth[c].mean()),
                "contrast": float(np.median(grey[inner]) / max(np.median(grey[ring]), 1e-3)),
            }
        )
    return out


def summarise(src: str, ps: float) -> dict:
    frames, masks = list_danilov(src)
    rows, on = [], []
    for i, (fp, mp) in enumerate(tqdm(list(zip(frames, masks)), desc="frames")):
        m = read_mask(mp)
        if m[3].any():
            on.append(i)
            grey = read_rgb(fp).astype(np.float32).mean(-1) / 255.0
            rows += components(grey, m[0], m[3], ps)
    pct = {
        key: dict(zip(map(str, PERCENTILES), np.percentile([r[key] for r in rows], PERCENTILES)))
        for key in ("diameter_mm", "depth_mm", "contrast")
    }
    return {"frames": len(frames), "frames_with_vasa": on, "components": len(rows), **pct}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="a Danilov pullback folder (frames/, masks/)")
    p.add_argument("--pixel-spacing", type=float, default=ASSUMED_PIXEL_SPACING_MM)
    p.add_argument("--out", help="write the summary JSON here")
    a = p.parse_args(argv)
    res = summarise(a.src, a.pixel_spacing)
    if a.out:
        atomic.write_json(a.out, res)
    print(f"{len(res['frames_with_vasa'])} of {res['frames']} frames, {res['components']} vasa")
    for key in ("diameter_mm", "depth_mm", "contrast"):
        print(key, {k: round(float(v), 3) for k, v in res[key].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
