"""Figure of hybrid examples for docs/real_data.md (section 2): real held-out frames with
inserted calcium of several kinds and the distractors that are not calcium, each shown as the
console would (Cartesian) and with the exact labels outlined.

    python benchmarks/hybrid_figure.py DATA/real_lumen/val-140-186 docs/images/hybrid_examples.png

Each example is one real frame through :func:`octseg.datasets.hybrid.cohort.make_hybrid` (the
generator the dataset builder uses), with the insert chosen by hand so every kind appears.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from octseg.datasets.hybrid import cohort, render
from octseg.datasets.hybrid.distractors import MediaSpec, VasaChannel
from octseg.datasets.hybrid.draw import CalciumLesion, LipidLesion, SideBranch

OUTLINE = render.OUTLINE_COLOURS
# three vasa vasorum: (direction deg, depth mm, radius mm, darkness), within the ranges drawn
VASA = [(60, 0.35, 0.15, 0.7), (120, 0.6, 0.09, 0.6), (330, 0.3, 0.12, 0.8)]

# (title, frame of the block, calcium lesions, lipid lesions, side branches, grey[, vasa])
EXAMPLES = [
    (
        "two lesions: rounded + irregular",
        8,
        [
            CalciumLesion(0, 1, 20, 100, 0.08, 0.55, contrast=0.25, end_power=2.0),
            CalciumLesion(0, 1, 150, 90, 0.15, 0.6, contrast=0.45, irregularity=0.45, shape_seed=4),
        ],
        [],
        [],
        False,
    ),
    (
        "calcified nodule",
        30,
        [CalciumLesion(0, 1, 20, 70, 0.0, 0.5, kind="nodule", bulge_mm=0.4, rim=0.8, end_power=2)],
        [],
        [],
        False,
    ),
    (
        "deep calcium under thick intima",
        30,
        [CalciumLesion(0, 1, 110, 130, 0.75, 0.45, contrast=0.3, edge_px=1.5)],
        [],
        [],
        False,
    ),
    (
        "lipid under a thin cap (not calcium)",
        14,
        [],
        [LipidLesion(0, 1, 180, 150, 50, 160, 0.6)],
        [],
        False,
    ),
    (
        "side branch (not calcium, not lumen)",
        40,
        [],
        [],
        [SideBranch(0, 1, 30, 0.9, offset=0.5)],
        False,
    ),
    (
        "grey frames too (console exports: sepia or grey)",
        8,
        [CalciumLesion(0, 1, 30, 140, 0.1, 0.5, contrast=0.2, heterogeneity=0.5, texture_scale=2)],
        [],
        [],
        True,
    ),
    (
        "thin calcium (0.25 mm)",
        8,
        [CalciumLesion(0, 1, 80, 150, 0.1, 0.25, contrast=0.3)],
        [],
        [],
        False,
    ),
    (
        "same, a media band behind it (tissue, not calcium)",
        8,
        [CalciumLesion(0, 1, 80, 150, 0.1, 0.25, contrast=0.3, media=MediaSpec())],
        [],
        [],
        False,
    ),
    (
        "vasa vasorum (tissue, not calcium)",
        40,
        [],
        [],
        [],
        False,
        [VasaChannel(0, 1, c, d, r, k) for c, d, r, k in VASA],
    ),
    (
        "same beside calcium, grey",
        40,
        [CalciumLesion(0, 1, 250, 80, 0.1, 0.4, contrast=0.3)],
        [],
        [],
        True,
        [VasaChannel(0, 1, c, d, r, k) for c, d, r, k in VASA],
    ),
]


def example(images, labels, ps, spec, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw
    from scipy import ndimage

    title, f, lesions, lipids, branches, grey, *vasa = spec
    img, lab, _, _ = cohort.make_hybrid(
        images[f : f + 1],
        labels[f : f + 1],
        ps,
        lesions,
        None,
        np.random.default_rng(0),
        frame_spacing_mm=0.2,
        lipids=lipids,
        branches=branches,
        vasa=vasa[0] if vasa else None,
    )
    frame = render.render_cartesian(img[0], ps, size, sepia=not grey)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    over = frame.copy()
    cart = render.label_outline(lab[0], ps, size)
    for k, col in OUTLINE.items():
        m = cart == k
        over[m & ~ndimage.binary_erosion(m)] = col
    pair = np.concatenate([frame, np.zeros((size, 4, 3), np.uint8), over], axis=1)
    im = Image.fromarray(pair)
    ImageDraw.Draw(im).text((6, 4), title, fill=(255, 255, 255))
    return np.asarray(im)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("real", help="a real pseudo-pullback folder (octseg.datasets.danilov.build)")
    p.add_argument("png")
    p.add_argument("--size", type=int, default=300)
    a = p.parse_args(argv)
    from PIL import Image

    from octseg.io import read_pullback
    from octseg.io.labels import load_labels

    pb = read_pullback(Path(a.real) / "image.npz")
    images = pb.read().astype(np.float32)
    labels = load_labels(Path(a.real) / "labels.npz").labels
    tiles = [example(images, labels, pb.pixel_spacing_mm, s, a.size) for s in EXAMPLES]
    gap = np.zeros((tiles[0].shape[0], 10, 3), np.uint8)
    rows = [np.concatenate([tiles[i], gap, tiles[i + 1]], axis=1) for i in range(0, len(tiles), 2)]
    hgap = np.zeros((10, rows[0].shape[1], 3), np.uint8)
    out = np.concatenate([x for r in rows for x in (r, hgap)][:-1], axis=0)
    Image.fromarray(out).quantize(256).save(a.png, optimize=True)  # adaptive palette: smaller
    print(a.png, out.shape)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
