"""The reader of the real pullback in ``../shared/data/ivoct-danilov/pullback-NNN``.

Layout: ``frames/001_1_NNN.png`` (Cartesian 750x750 sepia RGB) and ``masks/001_1_NNN.tiff``
(750x750x4 uint8, 0/255, LZW TIFF; channel 0 lumen incl. catheter, 1 fibrous cap, 2 lipid core,
3 vasa vasorum). The masks are read channel by channel as stored - a 4-channel TIFF is *not*
treated as RGBA (no channel dropped, nothing premultiplied).

No spacing is recorded in this data set: both spacings must be given explicitly (or by a
``spacing.json`` inside ``frames/``); nothing is assumed.

Everything that reads these files lives here: :func:`read_danilov` (the pullback and its labels
for the product), and the per-file readers the dataset builder
(:mod:`octseg.datasets.danilov.build`) and the robustness suite use: :func:`list_danilov`,
:func:`read_rgb`, :func:`read_mask`, :func:`read_lumen_mask`, :func:`read_plaque_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from octseg.core.classes import LUMEN
from octseg.core.errors import InputError
from octseg.io.base import Pullback
from octseg.io.labels import LabelFile
from octseg.io.stack import ImageFolderReader, frame_files, natural_key, read_image_file

MASK_CHANNELS = ("lumen", "fibrous_cap", "lipid_core", "vasa_vasorum")


def mask_files(folder: Path) -> dict[str, Path]:
    """Mask file per frame stem (``001_1_007``)."""
    masks = folder / "masks"
    if not masks.is_dir():
        raise InputError(masks, "no masks/ folder in the Danilov pullback")
    files = [p for p in masks.iterdir() if p.suffix.lower() in (".tif", ".tiff")]
    return {p.stem: p for p in sorted(files, key=lambda p: natural_key(p.name))}


def read_mask(path: Path) -> np.ndarray:
    """One 4-channel mask as bool ``(4, H, W)`` (value > 127), channels as stored."""
    arr = read_image_file(path)
    if arr.ndim != 3 or arr.shape[-1] != len(MASK_CHANNELS):
        raise InputError(path, f"expected an (H, W, 4) mask, got shape {arr.shape}")
    return np.moveaxis(arr > 127, -1, 0)


def list_danilov(src: str | Path) -> tuple[list[Path], list[Path]]:
    """Sorted frame PNGs and mask TIFFs of a Danilov pullback folder (``frames/``, ``masks/``)."""
    src = Path(src)
    frames = sorted((src / "frames").glob("*.png"))
    if not frames:
        raise InputError(src, "no frames/*.png found (expected a Danilov pullback folder)")
    masks = []
    for f in frames:
        m = src / "masks" / (f.stem + ".tiff")
        if not m.exists():
            raise InputError(m, f"mask for frame {f.name} is missing")
        masks.append(m)
    return frames, masks


def read_rgb(path: Path) -> np.ndarray:
    """One frame as RGB uint8 ``(H, W, 3)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise InputError(path, f"cannot read image ({exc})") from None
    return arr


def read_lumen_mask(path: Path) -> np.ndarray:
    """Channel 0 (lumen incl. catheter) of a Danilov mask as bool ``(H, W)`` (a one-channel
    mask as it is); read as stored, like :func:`read_mask`."""
    arr = read_image_file(Path(path))
    return (arr if arr.ndim == 2 else arr[..., 0]) > 127


def read_plaque_labels(path: Path) -> np.ndarray:
    """Lumen, fibrous cap and lipid core of a Danilov mask as one uint8 class map ``(H, W)``.

    Channel meanings from :data:`MASK_CHANNELS` (0 lumen, 1 fibrous cap, 2 lipid core). The
    expert's polygons overlap; precedence lumen > lipid > cap, so the cap is the tissue between
    the lumen and the lipid core's inner border (docs/metrics.md, plaque).
    """
    from octseg.core.classes import FIBROUS_CAP, LIPID

    m = read_mask(path)
    lab = np.zeros(m.shape[1:], np.uint8)
    lab[m[1]] = FIBROUS_CAP
    lab[m[2]] = LIPID
    lab[m[0]] = LUMEN
    return lab


def read_danilov(
    folder: str | Path,
    *,
    pixel_spacing_mm: float | None = None,
    frame_spacing_mm: float | None = None,
    extra_channels: bool = False,
    frames: Sequence[int] | None = None,
    progress: bool = False,
) -> tuple[Pullback, LabelFile]:
    """The pullback and its labels: lumen channel -> class 1 (:data:`octseg.core.classes.LUMEN`).

    ``extra_channels=True`` keeps the other mask channels as uint8 0/1 arrays in
    ``LabelFile.extra`` (keys ``fibrous_cap``, ``lipid_core``, ``vasa_vasorum``), aligned with
    the label frames; by default they are ignored. ``frames`` restricts the label maps to those
    pullback frame numbers (0-based); the image stays the whole pullback.
    """
    folder = Path(folder)
    pb = ImageFolderReader.read(
        folder / "frames", pixel_spacing_mm=pixel_spacing_mm, frame_spacing_mm=frame_spacing_mm
    )
    frame_paths = frame_files(folder / "frames")
    masks = mask_files(folder)
    wanted = range(pb.n_frames) if frames is None else sorted(set(int(i) for i in frames))
    index, labels, extras = [], [], {name: [] for name in MASK_CHANNELS[1:]}
    for i in tqdm(wanted, desc="masks", unit="frame", disable=not progress):
        if not 0 <= i < pb.n_frames:
            raise InputError(folder, f"frame {i} outside the pullback's {pb.n_frames} frames")
        mpath = masks.get(frame_paths[i].stem)
        if mpath is None:
            continue  # unlabelled frame
        m = read_mask(mpath)
        if m.shape[1:] != (pb.height, pb.width):
            raise InputError(mpath, f"mask size {m.shape[1:]} differs from the frames' size")
        lab = np.zeros((pb.height, pb.width), np.uint8)
        lab[m[0]] = LUMEN
        labels.append(lab)
        index.append(i)
        if extra_channels:
            for c, name in enumerate(MASK_CHANNELS[1:], start=1):
                extras[name].append(m[c].astype(np.uint8))
    if not labels:
        raise InputError(folder / "masks", "no mask matches the requested frames")
    lf = LabelFile(
        labels=np.stack(labels),
        space="cartesian",
        pixel_spacing_mm=pb.pixel_spacing_mm,
        frame_spacing_mm=pb.frame_spacing_mm,
        catheter_center=pb.catheter_center,
        frame_index=np.asarray(index, dtype=np.int64),
        extra={k: np.stack(v) for k, v in extras.items()} if extra_channels else {},
    )
    return pb, lf
