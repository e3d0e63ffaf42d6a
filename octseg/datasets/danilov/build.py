"""The real Danilov pullback as a labelled polar dataset (the layout of docs/dataset.md).

``../shared/data/ivoct-danilov/pullback-001`` holds 186 Cartesian 750x750 sepia RGB frames with
burned-in display overlays (cyan/yellow measurement lines, diamonds, a dashed circle) and expert
masks (channel 0 = lumen including the catheter, interpolated across the guidewire shadow).
:func:`build_real_dataset` turns it into training data:

1. **Grey intensity**: :func:`octseg.io.color.sepia_to_gray` (inverse of the sepia map).
2. **Overlay marks**: the display overlay is static over the pullback, so a pixel is an overlay
   pixel when its colour is off the sepia curve in at least half of the frames (temporal median of
   the colour deviation), united with the per-frame :func:`octseg.io.color.overlay_mask` and
   dilated by one pixel. Those pixels are in-painted by copying grey values from random nearby
   non-overlay pixels (within the distance to the nearest clean pixel plus two), which keeps the
   speckle texture, so the network never sees a straight bright line to learn.
3. **Polar**: :func:`octseg.core.polar.cartesian_to_polar` about the image centre (the catheter; the
   README says about pixel 375,375), bilinear for images and nearest for labels, onto
   ``n_alines`` A-lines x ``n_samples`` depth samples at the Cartesian pixel spacing.
4. **Labels**: lumen mask (channel 0 > 127) -> class 1, everything else 0. No guidewire,
   calcium or stent labels exist.
   With ``plaque=True`` (``--plaque``) channels 1-2 are kept too: fibrous cap -> class 5,
   lipid core -> class 6 (:func:`read_plaque_labels`).
5. **Spacing**: none is recorded. :data:`ASSUMED_PIXEL_SPACING_MM` (0.01 mm/pixel, the typical
   vendor export of about 10 um/pixel) and :data:`ASSUMED_FRAME_SPACING_MM` (0.2 mm, OPTIS at
   36 mm/s and 180 frames/s) are *assumptions*, written to ``spacing.json`` and
   ``dataset.json``; results on this set are reported in pixel units.
6. **Split**: neighbouring frames are nearly identical, so the held-out frames are one
   contiguous block (default: the last 25%), separated from the training block by a gap of
   ``gap_frames`` frames; each block is its own pseudo-pullback folder and ``split.json`` names
   which is which.

Run ``python -m octseg.datasets.danilov.build build SRC OUT`` and
``python -m octseg.datasets.danilov.build evaluate CKPT OUT`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from octseg.core import atomic
from octseg.core.classes import LUMEN
from octseg.core.errors import InputError
from octseg.core.polar import cartesian_to_polar
from octseg.datasets.danilov.reader import (
    list_danilov,
    read_lumen_mask,
    read_plaque_labels,
    read_rgb,
)
from octseg.io.labels import LabelFile, save_labels

ASSUMED_PIXEL_SPACING_MM = 0.01
"""Assumed Cartesian pixel spacing of the Danilov frames (not recorded in the data)."""
ASSUMED_FRAME_SPACING_MM = 0.2
"""Assumed frame spacing of the Danilov pullback (not recorded in the data)."""

N_ALINES = 504  # Abbott OPTIS A-lines per frame
N_SAMPLES = 375  # radius 0..3.74 mm at 0.01 mm: the whole 750x750 field


@dataclass(frozen=True)
class Block:
    """A contiguous run of source frames ``[start, stop)`` written as one pseudo-pullback."""

    id: str
    start: int
    stop: int
    split: str  # "train" | "val" | "test"


def _color():
    from octseg.io import color

    return color


def colour_deviation(rgb: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance of each pixel from the sepia map entry of the same luminance."""
    color = _color()
    lut = color.SEPIA_LUT.astype(np.float32)
    idx = np.clip(np.rint(color.sepia_to_gray(rgb) * 255), 0, 255).astype(np.intp)
    return np.sqrt(((rgb[..., :3].astype(np.float32) - lut[idx]) ** 2).sum(axis=-1))


def static_overlay_mask(
    frame_paths: Sequence[Path], threshold: float = 10.0, step: int = 4
) -> np.ndarray:
    """Pixels off the sepia curve in at least half of the frames (every ``step``-th frame).

    Burned-in display overlays do not move during a pullback; tissue colour does. The temporal
    median of the colour deviation separates them, including yellow marks whose colour alone is
    close to a bright sepia entry.
    """
    devs = [colour_deviation(read_rgb(p)) for p in list(frame_paths)[::step]]
    mask = np.median(np.stack(devs), axis=0) > threshold
    # hollow marks (diamonds, the centre dot) have sepia-like centres: fill them
    return ndimage.binary_fill_holes(ndimage.binary_dilation(mask, iterations=1))


def inpaint(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill ``mask`` pixels of ``gray`` (H, W) with values copied from random nearby clean pixels.

    Each masked pixel draws offsets within ``d + 2`` pixels (``d`` its distance to the nearest
    clean pixel) until one lands on a clean pixel; after 16 tries it takes the nearest clean one.
    Copying real samples keeps the local speckle statistics (a smooth fill would leave a
    learnable line).
    """
    out = gray.copy()
    if not mask.any():
        return out
    if mask.all():
        raise ValueError("inpaint: every pixel is masked")
    h, w = gray.shape
    dist, (ny, nx) = ndimage.distance_transform_edt(mask, return_indices=True)
    ys, xs = np.nonzero(mask)
    radius = np.ceil(dist[ys, xs]).astype(np.int64) + 2
    todo = np.ones(ys.size, dtype=bool)
    for _ in range(16):
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            break
        r = radius[idx]
        dy = np.rint(rng.uniform(-1, 1, idx.size) * r).astype(np.int64)
        dx = np.rint(rng.uniform(-1, 1, idx.size) * r).astype(np.int64)
        cy = np.clip(ys[idx] + dy, 0, h - 1)
        cx = np.clip(xs[idx] + dx, 0, w - 1)
        ok = ~mask[cy, cx]
        out[ys[idx[ok]], xs[idx[ok]]] = gray[cy[ok], cx[ok]]
        todo[idx[ok]] = False
    idx = np.nonzero(todo)[0]
    out[ys[idx], xs[idx]] = gray[ny[ys[idx], xs[idx]], nx[ys[idx], xs[idx]]]
    return out


def clean_frame(
    rgb: np.ndarray, static_mask: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sepia RGB -> grey in [0, 1] with the overlay in-painted; returns (grey, overlay mask)."""
    color = _color()
    mask = color.overlay_mask(rgb)
    if static_mask is not None:
        mask |= static_mask
    mask = ndimage.binary_dilation(mask, iterations=1)
    return inpaint(color.sepia_to_gray(rgb), mask, rng), mask


def to_polar(
    gray: np.ndarray,
    lumen: np.ndarray,
    *,
    pixel_spacing_mm: float = ASSUMED_PIXEL_SPACING_MM,
    n_alines: int = N_ALINES,
    n_samples: int = N_SAMPLES,
    center: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian grey ``(F, H, W)`` and lumen masks (bool; or uint8 class maps, kept as they
    are) -> polar uint8 frames and labels ``(F, A, R)``."""
    kw = dict(
        n_alines=n_alines,
        n_samples=n_samples,
        cart_spacing_mm=pixel_spacing_mm,
        polar_spacing_mm=pixel_spacing_mm,
        center=center,
    )
    img = cartesian_to_polar(torch.from_numpy(np.ascontiguousarray(gray, np.float32)), **kw)
    classes = lumen if lumen.dtype == np.uint8 else lumen.astype(np.uint8) * LUMEN
    lab = cartesian_to_polar(torch.from_numpy(classes), mode="nearest", **kw)
    img8 = np.clip(np.rint(img.numpy() * 255), 0, 255).astype(np.uint8)
    return img8, lab.numpy().astype(np.uint8)


def default_blocks(
    n_frames: int, val_fraction: float = 0.25, gap_frames: int = 4, where: str = "end"
) -> list[Block]:
    """Training block and one contiguous held-out block (``where``: "end" | "start" | "middle")."""
    n_val = max(1, int(round(n_frames * val_fraction)))
    if where == "end":
        val = (n_frames - n_val, n_frames)
        train = [(0, val[0] - gap_frames)]
    elif where == "start":
        val = (0, n_val)
        train = [(n_val + gap_frames, n_frames)]
    elif where == "middle":
        s = (n_frames - n_val) // 2
        val = (s, s + n_val)
        train = [(0, s - gap_frames), (s + n_val + gap_frames, n_frames)]
    else:
        raise ValueError(f"where must be 'end', 'start' or 'middle', got {where!r}")
    blocks = [Block(f"train-{a:03d}-{b:03d}", a, b, "train") for a, b in train if b > a]
    blocks.append(Block(f"val-{val[0]:03d}-{val[1]:03d}", val[0], val[1], "val"))
    return blocks


def parse_block(text: str, split: str) -> Block:
    """``"START:STOP"`` (0-based, stop exclusive) -> a :class:`Block`."""
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"block must be START:STOP, got {text!r}") from None
    if not 0 <= a < b:
        raise ValueError(f"block {text!r} must satisfy 0 <= START < STOP")
    return Block(f"{split}-{a:03d}-{b:03d}", a, b, split)


def build_real_dataset(
    src: str | Path,
    out: str | Path,
    *,
    blocks: Sequence[Block] | None = None,
    pixel_spacing_mm: float = ASSUMED_PIXEL_SPACING_MM,
    frame_spacing_mm: float = ASSUMED_FRAME_SPACING_MM,
    n_alines: int = N_ALINES,
    n_samples: int = N_SAMPLES,
    center: tuple[float, float] | None = None,
    seed: int = 0,
    progress: bool = True,
    static_mask: np.ndarray | None = None,
    plaque: bool = False,
) -> dict:
    """Write the real pullback as pseudo-pullbacks in the dataset layout; returns ``split.json``.

    ``plaque``: also keep mask channels 1-2 as fibrous cap / lipid core (classes 5 / 6,
    :func:`read_plaque_labels`); by default the labels are lumen-only."""
    from tqdm import tqdm

    frames, masks = list_danilov(src)
    n = len(frames)
    blocks = list(blocks) if blocks is not None else default_blocks(n)
    for b in blocks:
        if b.stop > n:
            raise InputError(src, f"block {b.id} ends at frame {b.stop} but there are {n} frames")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    static = static_overlay_mask(frames) if static_mask is None else static_mask
    grid = dict(
        pixel_spacing_mm=pixel_spacing_mm, n_alines=n_alines, n_samples=n_samples, center=center
    )
    for b in tqdm(blocks, desc="real blocks", disable=not progress):
        imgs, labs = [], []
        for i in range(b.start, b.stop):
            img, lab = polar_frame(frames[i], masks[i], static, rng, plaque=plaque, **grid)
            imgs.append(img)
            labs.append(lab)
        write_block(
            out / b.id,
            b,
            np.stack(imgs),
            np.stack(labs),
            pixel_spacing_mm=pixel_spacing_mm,
            frame_spacing_mm=frame_spacing_mm,
        )
    split = {s: [b.id for b in blocks if b.split == s] for s in ("train", "val", "test")}
    split["blocks"] = {b.id: [b.start, b.stop] for b in blocks}
    atomic.write_json(out / "split.json", split)
    atomic.write_json(
        out / "dataset.json", _dataset_json(pixel_spacing_mm, frame_spacing_mm, plaque)
    )
    return split


def polar_frame(
    frame: Path,
    mask: Path,
    static: np.ndarray | None,
    rng: np.random.Generator,
    *,
    plaque: bool = False,
    **grid: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """One source frame and its mask as a cleaned polar uint8 image and label frame
    (``grid``: the keywords of :func:`to_polar`)."""
    gray, _ = clean_frame(read_rgb(frame), static, rng)
    lumen = read_plaque_labels(mask) if plaque else read_lumen_mask(mask)
    if lumen.shape != gray.shape:
        raise InputError(mask, f"mask shape {lumen.shape} != frame {gray.shape}")
    img, lab = to_polar(gray[None], lumen[None], **grid)
    return img[0], lab[0]


def write_block(
    d: Path,
    b: Block,
    imgs: np.ndarray,
    labs: np.ndarray,
    *,
    pixel_spacing_mm: float,
    frame_spacing_mm: float,
) -> None:
    """One pseudo-pullback folder: ``image.npz``, ``labels.npz``, ``spacing.json``,
    ``source.json``."""
    d.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(
        d / "image.npz",
        frames=imgs,
        space=np.array("polar"),
        pixel_spacing_mm=np.float64(pixel_spacing_mm),
        frame_spacing_mm=np.float64(frame_spacing_mm),
    )
    save_labels(
        d / "labels.npz",
        LabelFile(
            labels=labs,
            space="polar",
            pixel_spacing_mm=pixel_spacing_mm,
            frame_spacing_mm=frame_spacing_mm,
        ),
    )
    atomic.write_json(
        d / "spacing.json",
        {"pixel_spacing_mm": pixel_spacing_mm, "frame_spacing_mm": frame_spacing_mm},
    )
    atomic.write_json(
        d / "source.json",
        {"source_frames": [b.start, b.stop], "split": b.split, "spacing_assumed": True},
    )


def _dataset_json(pixel_spacing_mm: float, frame_spacing_mm: float, plaque: bool) -> dict:
    return {
        "name": "danilov-real-plaque" if plaque else "danilov-real-lumen",
        "description": (
            "Real IVOCT pullback (Danilov et al. 2025), polar about the image centre, sepia "
            "reduced to grey, overlays in-painted; "
            + ("lumen, fibrous cap (5), lipid (6)" if plaque else "lumen labels only")
            + ". Spacing ASSUMED: "
            f"{pixel_spacing_mm} mm/pixel, {frame_spacing_mm} mm/frame (not recorded)."
        ),
    }


def evaluate_lumen(
    checkpoint: str | Path,
    root: str | Path,
    ids: Sequence[str],
    *,
    device: str = "cpu",
    cart_size: int = 750,
) -> dict:
    """Lumen Dice and lumen-area agreement (pixel units) of a checkpoint on the pseudo-pullbacks
    ``ids`` of a dataset written by :func:`build_real_dataset`: the held-out evaluation
    :func:`octseg.datasets.holdout.evaluate_lumen` on the folders ``root/<id>``."""
    from octseg.datasets.holdout import evaluate_lumen as holdout_lumen

    folders = {pid: Path(root) / pid for pid in ids}
    return holdout_lumen(checkpoint, folders, device=device, cart_size=cart_size)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Sub-commands (also usable from the ``octseg`` CLI dispatcher)."""
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the real pullback as a polar dataset")
    b.add_argument("src", help="Danilov pullback folder (frames/, masks/)")
    b.add_argument("out", help="output dataset folder")
    b.add_argument("--val-fraction", type=float, default=0.25)
    b.add_argument("--gap", type=int, default=4, help="frames dropped between train and val")
    b.add_argument("--where", choices=("end", "start", "middle"), default="end")
    b.add_argument("--train-block", action="append", default=[], metavar="START:STOP")
    b.add_argument("--val-block", action="append", default=[], metavar="START:STOP")
    b.add_argument("--test-block", action="append", default=[], metavar="START:STOP")
    b.add_argument("--pixel-spacing-mm", type=float, default=ASSUMED_PIXEL_SPACING_MM)
    b.add_argument("--frame-spacing-mm", type=float, default=ASSUMED_FRAME_SPACING_MM)
    b.add_argument("--n-alines", type=int, default=N_ALINES)
    b.add_argument("--n-samples", type=int, default=N_SAMPLES)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--plaque", action="store_true", help="keep fibrous cap (5) and lipid (6)")
    e = sub.add_parser("evaluate", help="lumen Dice / area agreement of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("root", help="dataset written by 'build'")
    e.add_argument("--ids", nargs="*", help="pseudo-pullbacks (default: split.json 'val')")
    e.add_argument("--out", help="write the result JSON here")
    e.add_argument("--device", default="cpu")


def run(a: argparse.Namespace) -> int:
    if a.cmd == "evaluate":
        ids = a.ids or json.loads((Path(a.root) / "split.json").read_text())["val"]
        res = evaluate_lumen(a.checkpoint, a.root, ids, device=a.device)
        if a.out:
            atomic.write_json(a.out, res)
        print(json.dumps(res, indent=2))
        return 0
    explicit = (
        [parse_block(t, "train") for t in a.train_block]
        + [parse_block(t, "val") for t in a.val_block]
        + [parse_block(t, "test") for t in a.test_block]
    )
    n = len(list_danilov(a.src)[0])
    blocks = explicit or default_blocks(n, a.val_fraction, a.gap, a.where)
    split = build_real_dataset(
        a.src,
        a.out,
        blocks=blocks,
        pixel_spacing_mm=a.pixel_spacing_mm,
        frame_spacing_mm=a.frame_spacing_mm,
        n_alines=a.n_alines,
        n_samples=a.n_samples,
        seed=a.seed,
        plaque=a.plaque,
    )
    print(json.dumps(split, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m octseg.datasets.danilov.build", description=__doc__.splitlines()[0]
    )
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
