"""The on-disk layout of a labelled-pullback dataset (docs/dataset.md) and its checker.

DATASET/
  dataset.json        optional {"name": str, "description": str}
  <pullback_id>/
    image.npz | image.dcm | image.tif | image.tiff | image/   any readable image
    spacing.json      optional sidecar {"pixel_spacing_mm": f, "frame_spacing_mm": f}
    labels.npz        label schema v1 (octseg.io.labels); same space and (H, W) as the image;
                      ``frame_index`` lists the labelled frames (sparse labels)
    truth/            optional: frames.csv, struts.csv, summary.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from octseg.core.errors import InputError, OctsegError
from octseg.io.labels import LabelFile, load_labels
from octseg.io.stack import natural_key

IMAGE_NAMES = ("image.npz", "image.dcm", "image.tif", "image.tiff", "image")
LABELS_NAME = "labels.npz"
TRUTH_DIR = "truth"
DATASET_JSON = "dataset.json"
TRUTH_FILES = ("frames.csv", "struts.csv", "summary.json")
_SPACING_RTOL = 1e-3


@dataclass(frozen=True)
class PullbackEntry:
    id: str
    image_path: Path
    labels_path: Path | None  # None: unlabelled pullback (allowed for inference only)
    truth_dir: Path | None


def _images_in(folder: Path) -> list[Path]:
    return [folder / n for n in IMAGE_NAMES if (folder / n).exists()]


def _pullback_dirs(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
        key=lambda p: natural_key(p.name),
    )


def list_pullbacks(root: str | Path) -> list[PullbackEntry]:
    """Every pullback folder of ``root`` that holds an image, in natural order of the ids."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder does not exist")
    entries = []
    for folder in _pullback_dirs(root):
        images = _images_in(folder)
        if not images:
            continue
        labels = folder / LABELS_NAME
        truth = folder / TRUTH_DIR
        entries.append(
            PullbackEntry(
                id=folder.name,
                image_path=images[0],
                labels_path=labels if labels.is_file() else None,
                truth_dir=truth if truth.is_dir() else None,
            )
        )
    return entries


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _SPACING_RTOL * max(abs(a), abs(b))


def _problem(path: Path, exc: Exception) -> str:
    """One line for a file that could not be read: octseg errors as they are (they name the
    file), anything else (a decoder's own exception) with the file and the exception's type."""
    if isinstance(exc, OctsegError):
        return str(exc)
    return f"{path}: {type(exc).__name__}: {exc}"


def verify_pullback(folder: Path, *, check_pixels: bool = True) -> list[str]:
    """Every problem of one pullback folder (empty list: fine)."""
    images = _images_in(folder)
    if not images:
        return [f"{folder}: no image ({' | '.join(IMAGE_NAMES)})"]
    problems: list[str] = []
    if len(images) > 1:
        problems.append(f"{folder}: more than one image ({', '.join(p.name for p in images)})")
    pb = _read_image(images[0], check_pixels, problems)
    labels_path = folder / LABELS_NAME
    lf = _read_labels(labels_path, problems)
    if pb is not None and lf is not None:
        problems += _label_image_mismatches(str(labels_path), lf, pb)
    problems += _truth_problems(folder / TRUTH_DIR)
    return problems


def _read_image(image_path: Path, check_pixels: bool, problems: list[str]) -> Any:
    """The pullback of ``image_path`` (None if unreadable), every frame decoded with
    ``check_pixels``; problems are appended to ``problems``."""
    from octseg.io import read_pullback

    try:
        pb = read_pullback(image_path)
    except Exception as exc:  # one unreadable file must not stop the whole check
        problems.append(_problem(image_path, exc))
        return None
    if check_pixels:
        try:
            for _ in pb.iter_chunks(16):
                pass  # Pullback.read checks shape and NaN/inf per chunk
        except Exception as exc:
            problems.append(_problem(image_path, exc))
    return pb


def _read_labels(labels_path: Path, problems: list[str]) -> LabelFile | None:
    """The label file (None if missing or unreadable; the problem appended to ``problems``)."""
    if not labels_path.is_file():
        problems.append(f"{labels_path}: missing label file")
        return None
    try:
        return load_labels(labels_path)
    except Exception as exc:
        problems.append(_problem(labels_path, exc))
        return None


def _label_image_mismatches(where: str, lf: LabelFile, pb: Any) -> list[str]:
    """Where the label file disagrees with its image: space, frame size, frame index, spacing
    and (Cartesian) catheter centre."""
    problems = []
    if lf.space != pb.space:
        problems.append(f"{where}: labels are {lf.space} but the image is {pb.space}")
    if lf.labels.shape[1:] != (pb.height, pb.width):
        problems.append(
            f"{where}: label frames are {lf.labels.shape[1]}x{lf.labels.shape[2]} but image "
            f"frames are {pb.height}x{pb.width}"
        )
    beyond = lf.frames[(lf.frames < 0) | (lf.frames >= pb.n_frames)]
    if beyond.size:
        problems.append(
            f"{where}: frame_index {beyond[:5].tolist()}{'...' if beyond.size > 5 else ''} "
            f"outside the image's {pb.n_frames} frames"
        )
    for key in ("pixel_spacing_mm", "frame_spacing_mm"):
        a, b = getattr(lf, key), getattr(pb, key)
        if not _close(a, b):
            problems.append(f"{where}: {key} {a:g} differs from the image's {b:g}")
    if lf.space == "cartesian" and pb.catheter_center is not None:
        if not np.allclose(lf.center, pb.catheter_center, atol=0.5):
            problems.append(
                f"{where}: catheter_center {list(lf.center)} differs from the image's "
                f"{list(pb.catheter_center)}"
            )
    return problems


def _truth_problems(truth: Path) -> list[str]:
    """Missing files of an existing ``truth/`` folder."""
    if not truth.exists():
        return []
    if not truth.is_dir():
        return [f"{truth}: expected a folder"]
    return [
        f"{truth / name}: missing truth file"
        for name in TRUTH_FILES
        if not (truth / name).is_file()
    ]


def verify_dataset(
    root: str | Path, *, check_pixels: bool = True, progress: bool = False
) -> list[str]:
    """Every problem of the dataset at ``root`` (not just the first); empty list: all fine.

    Checks: the folder and ``dataset.json``; per pullback - a single readable image with known
    spacing, pixel values decodable and finite (``check_pixels``), a label file following schema
    v1 (class values in range), label space/size/spacing/catheter centre equal to the image's,
    ``frame_index`` within the image's frames, and the truth files where ``truth/`` exists.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: dataset folder does not exist"]
    problems: list[str] = []
    meta = root / DATASET_JSON
    if meta.exists():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                problems.append(f"{meta}: must be a JSON object")
            else:
                for key in ("name", "description"):
                    if key in data and not isinstance(data[key], str):
                        problems.append(f"{meta}: '{key}' must be a string")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{meta}: not readable JSON ({exc})")
    folders = _pullback_dirs(root)
    if not folders:
        problems.append(f"{root}: no pullback folders")
    for folder in tqdm(folders, desc="verify", unit="pullback", disable=not progress):
        problems.extend(verify_pullback(folder, check_pixels=check_pixels))
    return problems
