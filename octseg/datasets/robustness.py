"""Robustness suite: a real held-out block under appearance corruptions, through the product.

Each corruption (:data:`CORRUPTIONS`) is applied at severities 1-3 to the raw Cartesian sepia
frames of a Danilov pullback block (frames as the console exported them, burned-in overlays
included) and written as one pullback folder of PNG frames with a ``spacing.json``; the expert's
lumen masks get the same geometric change and become that pullback's manual label map, measured
by :func:`octseg.geometry.measure_labels` (``frames.csv``). ``infer.py`` then segments and
measures every corrupted pullback and ``evaluate.py`` compares them with the expert: lumen Dice
per frame and lumen area (``frames.csv`` of both sides). :func:`summarize` turns the evaluation
tables into one row per corruption and severity. ``benchmarks/robustness.py`` runs it all.

``colour_map`` exports the frames in grey, "hot" and "cividis", which the readers recognise and
read through their own curves since session 62 (:func:`octseg.io.color.fit_display_map`);
``unknown_map`` in three maps they do not know, black for weak signal as a console's are
("gnuplot2" and "CMRmap", whose luminance rises along the map, and "gist_earth", whose luminance
turns back), read through the sepia curve and warned about.

Corruptions of the intensity act on the grey value (the reader's :func:`sepia_to_gray`) and are
re-coloured with the sepia map, with the frame's own burned-in overlay pixels kept as they were.
The spacing is the dataset's assumption (0.01 mm per pixel of the 750x750 frame); resized frames
carry their scaled spacing in ``spacing.json``. No catheter centre is written: the product finds
or assumes it as it would for a console export.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from octseg.io.color import SEPIA_LUT, overlay_mask, sepia_to_gray

PX_MM = 0.01  # the Danilov frames' assumed spacing (octseg.datasets.danilov.build.ASSUMED_PIXEL_SPACING_MM)
FRAME_MM = 0.2


@dataclass
class Frame:
    """One corrupted frame: RGB (H, W, 3) uint8, lumen mask (H, W) bool, its spacing (mm/px)
    and the true catheter centre (cy, cx) in its pixels."""

    rgb: np.ndarray
    lumen: np.ndarray
    spacing: float
    center: tuple[float, float]


def _grey_op(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., Frame]:
    """A corruption of the grey value ``fn(grey, frame) -> grey``, re-coloured in sepia with the
    burned-in overlay pixels of the source kept."""

    def op(f: Frame, level: float, rng: np.random.Generator) -> Frame:
        grey = sepia_to_gray(f.rgb)
        out = np.clip(fn(grey, f, level, rng), 0, 1)
        rgb = SEPIA_LUT[np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)]
        keep = overlay_mask(f.rgb)
        rgb[keep] = f.rgb[keep]
        return Frame(rgb, f.lumen, f.spacing, f.center)

    return op


def _radius(shape: tuple[int, ...], center: tuple[float, float]) -> np.ndarray:
    yy, xx = np.indices(shape[:2], dtype=np.float32)
    return np.hypot(yy - center[0], xx - center[1])


def _dim_wall(grey, f, level, rng, rim_px: float = 4.0):
    d = ndimage.distance_transform_edt(~f.lumen)
    return grey * np.where(f.lumen, 1.0, level + (1 - level) * np.exp(-d / rim_px))


def _blood(grey, f, level, rng):
    cover, amp = level
    field = ndimage.gaussian_filter(rng.standard_normal(f.lumen.shape), 12)
    inside = f.lumen & (_radius(grey.shape, f.center) > 60)  # beyond catheter and sheath
    if not inside.any():
        return grey
    thr = np.quantile(field[inside], 1 - cover)
    blob = np.clip((field - thr) / (0.5 * field.std()), 0, 1) * inside
    return np.maximum(grey, blob * rng.gamma(2.0, 0.5, grey.shape) * amp)


def redraw(rgb: np.ndarray, name: str) -> np.ndarray:
    """A sepia console frame ``(H, W, 3)`` re-drawn in the colour map ``name``
    (:func:`octseg.datasets.appearance.palette_lut`), its burned-in overlay pixels kept."""
    from octseg.datasets.appearance import palette_lut

    idx = np.clip(np.rint(sepia_to_gray(rgb) * 255), 0, 255).astype(np.uint8)
    out = palette_lut(name)[idx]
    keep = overlay_mask(rgb)
    out[keep] = rgb[keep]
    return out


def _colour_map(f: Frame, level: str, rng) -> Frame:
    return Frame(redraw(f.rgb, level), f.lumen, f.spacing, f.center)


def _resize(f: Frame, size: int, rng) -> Frame:
    h = f.rgb.shape[0]
    rgb = cv2.resize(f.rgb, (size, size), interpolation=cv2.INTER_AREA)
    lum = cv2.resize(f.lumen.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    s = size / h
    c = ((f.center[0] + 0.5) * s - 0.5, (f.center[1] + 0.5) * s - 0.5)
    return Frame(rgb, lum > 0, f.spacing / s, c)


def _crop(f: Frame, size: int, rng) -> Frame:
    h = f.rgb.shape[0]
    a = (h - size) // 2
    c = (f.center[0] - a, f.center[1] - a)
    return Frame(
        f.rgb[a : a + size, a : a + size], f.lumen[a : a + size, a : a + size], f.spacing, c
    )


def _shift(f: Frame, px: int, rng) -> Frame:
    """Translate the frame by ``px`` pixels along a fixed diagonal (black fill)."""
    d = int(round(px / np.sqrt(2)))
    m = np.float32([[1, 0, d], [0, 1, -d]])
    h, w = f.lumen.shape
    rgb = cv2.warpAffine(f.rgb, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    lum = cv2.warpAffine(f.lumen.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    return Frame(rgb, lum > 0, f.spacing, (f.center[0] - d, f.center[1] + d))


_OVERLAY_COLOURS = ((0, 255, 255), (255, 255, 0), (255, 255, 255), (0, 255, 0))


def overlay_layer(shape: tuple[int, int], n_items: int, seed: int) -> np.ndarray:
    """An RGB overlay layer (0 = transparent) of ``n_items`` marks in console colours, the same
    for every frame of a pullback (burned-in overlays are static)."""
    from octseg.datasets.appearance import draw_overlay

    rng = np.random.default_rng(seed)
    layer = np.zeros((*shape, 3), np.uint8)
    for k in range(n_items):
        m = draw_overlay(np.zeros(shape, np.uint8), rng, 1)
        cv2.dilate(m, np.ones((2, 2), np.uint8), dst=m)
        layer[m > 0] = _OVERLAY_COLOURS[k % len(_OVERLAY_COLOURS)]
    return layer


def _overlay(f: Frame, n_items: int, rng, seed: int = 0) -> Frame:
    layer = overlay_layer(f.lumen.shape, n_items, seed + n_items)
    rgb = f.rgb.copy()
    on = layer.any(axis=-1)
    rgb[on] = layer[on]
    return Frame(rgb, f.lumen, f.spacing, f.center)


def _g(fn):
    return _grey_op(fn)


def _hard(f: Frame, level: tuple, rng) -> Frame:
    """The issue's hard frame: a dim wall, residual blood and burned-in marks together."""
    wall, blood, marks = level
    f = _grey_op(_dim_wall)(f, wall, rng)
    f = _grey_op(_blood)(f, blood, rng)
    return _overlay(f, marks, rng)


#: name -> (function(frame, level, rng), levels for severities 1, 2, 3)
CORRUPTIONS: dict[str, tuple[Callable[..., Frame], tuple]] = {
    "gain": (_g(lambda g, f, v, r: g * v), (0.7, 0.5, 0.35)),
    "gamma": (_g(lambda g, f, v, r: g**v), (1.4, 1.8, 2.4)),
    "attenuation": (
        _g(lambda g, f, v, r: g * np.exp(-v * _radius(g.shape, f.center) / (g.shape[0] / 2))),
        (0.7, 1.4, 2.1),
    ),
    "dynamic_range": (
        _g(lambda g, f, v, r: v[0] + (v[1] - v[0]) * g),
        ((0.08, 0.85), (0.15, 0.75), (0.25, 0.65)),
    ),
    "dim_wall": (_g(_dim_wall), (0.6, 0.4, 0.25)),
    "blood": (_g(_blood), ((0.15, 0.3), (0.3, 0.45), (0.5, 0.6))),
    "colour_map": (_colour_map, ("grey", "hot", "cividis")),
    "resize": (_resize, (1024, 600, 500)),
    "crop": (_crop, (640, 560, 500)),
    "overlay": (_overlay, (4, 8, 14)),
    "off_centre": (_shift, (10, 25, 45)),
    "hard": (
        _hard,
        ((0.6, (0.1, 0.3), 4), (0.4, (0.15, 0.4), 8), (0.25, (0.3, 0.5), 14)),
    ),
    # maps the readers do not know (not in octseg.io.color.DISPLAY_MAPS): read through the sepia
    # curve, as "hot" and "cividis" were before session 62 (last, so the others keep their seeds)
    "unknown_map": (_colour_map, ("gnuplot2", "CMRmap", "gist_earth")),
}


def corrupt(f: Frame, name: str, severity: int, rng: np.random.Generator) -> Frame:
    """``f`` under corruption ``name`` at ``severity`` (1-3; 0: unchanged)."""
    if name == "none" or severity == 0:
        return f
    fn, levels = CORRUPTIONS[name]
    return fn(f, levels[severity - 1], rng)


def variant_id(name: str, severity: int) -> str:
    return "none" if name == "none" else f"{name}-{severity}"


def write_variant(
    frames: Sequence[Frame], pid: str, inputs: Path, manual: Path, frame_spacing_mm=FRAME_MM
) -> None:
    """Write corrupted frames as ``inputs/pid/NNN.png`` + ``spacing.json`` and the expert's
    labels as ``manual/pid/labels.npz`` with their product measurements (``frames.csv``)."""
    from PIL import Image

    from octseg.core import atomic
    from octseg.core.classes import LUMEN
    from octseg.geometry import measure_labels
    from octseg.io.labels import LabelFile, save_labels

    d = inputs / pid
    d.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f.rgb).save(d / f"{i:04d}.png", compress_level=1)
    atomic.write_json(
        d / "spacing.json",
        {"pixel_spacing_mm": frames[0].spacing, "frame_spacing_mm": frame_spacing_mm},
    )
    lf = LabelFile(
        labels=np.stack([f.lumen.astype(np.uint8) * LUMEN for f in frames]),
        space="cartesian",
        pixel_spacing_mm=frames[0].spacing,
        frame_spacing_mm=frame_spacing_mm,
        catheter_center=frames[0].center,
    )
    (manual / pid).mkdir(parents=True, exist_ok=True)
    save_labels(manual / pid / "labels.npz", lf)
    measure_labels(lf).write(manual / pid)


def build_suite(
    src: Path,
    start: int,
    stop: int,
    out: Path,
    corruptions: Sequence[str],
    severities: Sequence[int] = (1, 2, 3),
    step: int = 1,
    seed: int = 0,
) -> list[str]:
    """Write ``out/inputs`` and ``out/manual`` for frames ``start:stop:step`` of a Danilov
    pullback under every corruption and severity, plus the uncorrupted block ``none`` (every
    frame of ``start:stop``)."""
    import torch

    from octseg.datasets.danilov.reader import list_danilov, read_lumen_mask, read_rgb

    torch.set_num_threads(1)  # the geometry is memory-bound; more threads only wait on a busy host
    paths, masks = list_danilov(src)
    idx = range(start, stop)
    base = []
    for i in idx:
        rgb = read_rgb(paths[i])
        h, w = rgb.shape[:2]
        base.append(Frame(rgb, read_lumen_mask(masks[i]), PX_MM, ((h - 1) / 2, (w - 1) / 2)))
    # "none" is always there, once, at severity 0 (a --corruptions list naming it adds nothing)
    variants = [("none", 0)] + [(c, s) for c in corruptions if c != "none" for s in severities]
    canonical = [("none", 0)] + [(c, s) for c in CORRUPTIONS for s in (1, 2, 3)]
    ids = []
    for name, sev in variants:
        # seeded by the variant's place in the full list: any subset draws the same frames
        rng = np.random.default_rng([seed, sev, canonical.index((name, sev))])
        pid = variant_id(name, sev)
        ids.append(pid)
        if (out / "manual" / pid / "frames.csv").exists():
            continue  # written by an earlier run
        frames = base if name == "none" else base[::step]  # uncorrupted: every frame
        write_variant(
            [corrupt(f, name, sev, rng) for f in frames], pid, out / "inputs", out / "manual"
        )
    return ids


def lumen_dice(auto_labels: Path, manual_labels: Path) -> dict[int, float]:
    """Lumen Dice per frame of two Cartesian label files on the same grid (the product's
    ``labels.npz`` and the expert's); frames on both sides only.

    The evaluation's Dice (:func:`octseg.evaluate.segmentation.dice_frames`, MONAI) without its
    IoU and HD95 (which cost about a second per 750x750 frame on a CPU), for suites of
    thousands of frames (tests/test_robustness.py compares it with ``evaluate.py``'s)."""
    from octseg.core.classes import LUMEN

    return class_dice(auto_labels, manual_labels, LUMEN, absent=1.0)


def class_dice(
    auto_labels: Path, manual_labels: Path, cls: int, absent: float = float("nan")
) -> dict[int, float]:
    """Dice of class ``cls`` per frame, as :func:`lumen_dice`; ``absent`` (NaN by default) on
    frames where neither side holds the class (a class absent from many frames, e.g. calcium)."""
    from octseg.evaluate.segmentation import dice_frames

    a, m, ia, im, frames = _matched_frames(auto_labels, manual_labels)
    auto, manual = a.labels[ia], m.labels[im]
    dice = dice_frames(auto, manual, cls)
    held = ((auto == cls) | (manual == cls)).any(axis=(1, 2))
    return {f: float(d) if h else absent for f, d, h in zip(frames, dice, held, strict=True)}


def _matched_frames(auto_labels: Path, manual_labels: Path):
    """Both label files, the row indices of their common frames in each and those frames."""
    from octseg.io.labels import load_labels

    a, m = load_labels(auto_labels), load_labels(manual_labels)
    rows = {int(f): i for i, f in enumerate(a.frames)}
    both = [(j, f) for j, f in enumerate(m.frames.tolist()) if f in rows]
    return a, m, [rows[f] for _, f in both], [j for j, _ in both], [f for _, f in both]


def lumen_border_offset(auto_labels: Path, manual_labels: Path) -> dict[int, float]:
    """Per frame, the median over catheter rays of the product's lumen contour radius minus the
    expert's, in pixels (negative: the product's border lies inside the expert's), both from
    :func:`octseg.geometry.lumen_contour.lumen_contours`, the contour ``frames.csv`` measures;
    frames with lumen on both sides only. Both contours are traced about the *expert's* catheter
    centre, so a centre the product placed elsewhere does not read as a border shift. A
    systematic shift of the border shows here before it shows in the area."""
    from octseg.geometry.lumen_contour import lumen_contours

    a, m, ia, im, frames = _matched_frames(auto_labels, manual_labels)
    ps = m.pixel_spacing_mm

    def radii(lf, idx):
        c = lumen_contours(lf.labels[idx], lf.space, ps, m.catheter_center)
        return c.radii_mm.numpy() / ps, c.has_lumen.numpy()

    (ra, ha), (rm, hm) = radii(a, ia), radii(m, im)
    med = np.median(ra - rm, axis=1)
    return {f: float(d) for f, d, ok in zip(frames, med, ha & hm, strict=True) if ok}


def summarize(evaluation: Path, infer: Path, manual: Path) -> list[dict]:
    """One row per pullback (corruption and severity): lumen area from an ``evaluate.py``
    output folder (``frames_matched.csv``: the product's ``frames.csv`` against the expert
    labels measured by the same geometry) and lumen Dice of the product's ``labels.npz``
    (:func:`lumen_dice`)."""
    import pandas as pd

    fr = pd.read_csv(evaluation / "frames_matched.csv", dtype={"pullback_id": str})
    fr = fr[fr["match"] == "matched"]
    rows = []
    for pid, g in fr.groupby("pullback_id", sort=False):
        auto = g["auto_lumen_area_mm2"].fillna(0.0).to_numpy(float)
        ref = g["manual_lumen_area_mm2"].to_numpy(float)
        err = (auto - ref) / ref.mean() * 100
        per = lumen_dice(infer / pid / "labels.npz", manual / pid / "labels.npz")
        dice = np.array(list(per.values()))
        name, _, sev = pid.rpartition("-") if pid != "none" else ("none", "", "0")
        rows.append(
            {
                "corruption": name,
                "severity": int(sev),
                "n_frames": len(g),
                "dice_mean": float(dice.mean()) if dice.size else float("nan"),
                "dice_min": float(dice.min()) if dice.size else float("nan"),
                "area_bias_pct": float(err.mean()),
                "area_loa_low_pct": float(err.mean() - 1.96 * err.std(ddof=1)),
                "area_loa_high_pct": float(err.mean() + 1.96 * err.std(ddof=1)),
                "area_mae_pct": float(np.abs(err).mean()),
                "mean_area_mm2": float(ref.mean()),
            }
        )
    return sorted(rows, key=lambda r: (r["corruption"] != "none", r["corruption"], r["severity"]))
