"""Overlap of automated with manual label maps: per-class Dice, IoU and 95% Hausdorff (mm).

Metrics come from MONAI (``DiceMetric``, ``MeanIoU``, ``HausdorffDistanceMetric`` with
``percentile=95`` and the pixel spacing). They are computed per frame and per class, only on
frames labelled on both sides (matched by pullback frame number):

- frames where the class is present in **either** mask are scored (Dice/IoU 0 when one mask is
  empty); their number is reported as ``n_frames``;
- frames where the class is absent in **both** masks are counted as ``n_absent_both`` and not
  averaged in (Dice is undefined there, neither 1 nor NaN);
- the Hausdorff distance needs both masks non-empty: ``n_hd95`` frames; frames with one mask
  empty are counted as ``n_one_empty``, split into ``n_auto_only`` (the class only in the
  automated mask: spurious) and ``n_manual_only`` (only in the manual mask: missed).

Polar label maps are scan-converted to Cartesian (nearest neighbour,
:func:`octseg.core.polar.polar_to_cartesian`) first, so that areas and distances are physical. The
Cartesian grid covers the *labelled radius* only (the deepest sample of a compared class in either
map, plus 2 samples) at the polar depth spacing, coarsened where needed so that the grid has at
most :data:`MAX_GRID` x :data:`MAX_GRID` pixels; the grid spacing - the resolution of Dice, IoU
and HD95 - is reported per row (``grid_spacing_mm``) and per class (``hd95_resolution_mm``). For
the default synthetic preset (968 samples of 0.0052 mm, lumen and calcium within about 2-3 mm)
that is 0.0052 mm up to a labelled radius of 1.33 mm and about 0.012-0.02 mm beyond.
Frames are processed in chunks of :data:`CHUNK_FRAMES`; masks stay boolean until the MONAI call,
so memory does not grow with the pullback length.
A pooled Dice (sums of overlaps over all scored frames) is given beside the per-frame mean.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from octseg.core.classes import CLASS_NAMES, PLAQUE_CLASSES
from octseg.core.errors import InputError
from octseg.io.labels import LabelFile

#: classes scored by default; the plaque classes (5, 6) are left out of the tables and the
#: summary when neither side labels them anywhere (:func:`drop_unlabelled_optional`)
DEFAULT_CLASSES = (1, 2, 3, 4, *PLAQUE_CLASSES)
#: largest Cartesian grid side for scan-converted polar maps
MAX_GRID = 512
#: frames scan-converted and scored at a time
CHUNK_FRAMES = 8


def polar_grid(
    maps: list[tuple[np.ndarray, np.ndarray]], classes: tuple[int, ...], spacing: float
) -> tuple[int, float]:
    """``(side, spacing_mm)`` of a Cartesian grid holding every labelled pixel of ``classes``
    in the polar ``maps`` (``(labels, frame rows)`` pairs), at most :data:`MAX_GRID` wide."""
    deepest = -1
    cls = np.asarray(classes, dtype=np.uint8)
    for lab, rows in maps:
        for i in range(0, len(rows), CHUNK_FRAMES):
            cols = np.isin(lab[rows[i : i + CHUNK_FRAMES]], cls).any(axis=(0, 1))
            if cols.any():
                deepest = max(deepest, int(np.flatnonzero(cols)[-1]))
    radius_mm = (deepest + 1 + 2) * spacing  # 2 samples margin
    cart = max(spacing, 2 * radius_mm / (MAX_GRID - 2))
    side = min(MAX_GRID, int(math.ceil(2 * radius_mm / cart)) + 2)
    return side, cart


def to_cartesian(
    lf: LabelFile,
    frames: np.ndarray | None = None,
    *,
    out_size: int | None = None,
    cart_spacing_mm: float | None = None,
) -> tuple[np.ndarray, float]:
    """Label frames (selected rows) as Cartesian maps and their pixel spacing (mm).

    Polar maps are scan-converted onto an ``out_size`` square grid of ``cart_spacing_mm``
    (default: ``2 * n_samples`` at the polar depth spacing).
    """
    lab = lf.labels if frames is None else lf.labels[frames]
    if lf.space == "cartesian":
        return lab, lf.pixel_spacing_mm
    import torch

    from octseg.core.polar import polar_to_cartesian

    size = out_size or 2 * lab.shape[2]
    cart = cart_spacing_mm or lf.pixel_spacing_mm
    out = np.empty((lab.shape[0], size, size), dtype=np.uint8)
    for i in range(0, lab.shape[0], CHUNK_FRAMES):
        t = torch.from_numpy(lab[i : i + CHUNK_FRAMES])
        out[i : i + CHUNK_FRAMES] = polar_to_cartesian(
            t,
            out_size=(size, size),
            polar_spacing_mm=lf.pixel_spacing_mm,
            cart_spacing_mm=cart,
            mode="nearest",
        ).numpy()
    return out, cart


def _dice(ta: Any, tm: Any) -> Any:
    """MONAI Dice per frame of binary masks ``(F, 1, H, W)`` (1 where both are empty)."""
    from monai.metrics import DiceMetric

    return DiceMetric(include_background=True, reduction="none", ignore_empty=False)(
        ta, tm
    ).flatten()


def dice_frames(auto: np.ndarray, manual: np.ndarray, cls: int) -> np.ndarray:
    """Dice of class ``cls`` per frame of two label stacks ``(F, H, W)`` (MONAI ``DiceMetric``
    computes in float32; 1 where the class is absent in both), in chunks of
    :data:`CHUNK_FRAMES`."""
    import torch

    out = np.empty(auto.shape[0], dtype=np.float64)
    for i in range(0, auto.shape[0], CHUNK_FRAMES):
        a, m = (
            torch.from_numpy(x[i : i + CHUNK_FRAMES] == cls).unsqueeze(1).float()
            for x in (auto, manual)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[i : i + CHUNK_FRAMES] = _dice(a, m).numpy()
    return out


def _per_frame(
    auto: np.ndarray, manual: np.ndarray, cls: int, spacing: float
) -> list[dict[str, Any]]:
    """Rows for one chunk of Cartesian frames ``(F, H, W)`` and one class."""
    import torch
    from monai.metrics import HausdorffDistanceMetric, MeanIoU

    a = auto == cls  # bool (F, H, W)
    m = manual == cls
    na = a.reshape(a.shape[0], -1).sum(1)
    nm = m.reshape(m.shape[0], -1).sum(1)
    pa, pm = na > 0, nm > 0
    either = np.flatnonzero(pa | pm)
    if not either.size:
        return [{"scored": False} for _ in range(a.shape[0])]
    both = (pa & pm)[either]

    def t(x: np.ndarray) -> torch.Tensor:  # float only here, for MONAI
        return torch.from_numpy(x).unsqueeze(1).float()

    ta, tm = t(a[either]), t(m[either])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dice = _dice(ta, tm)
        iou = MeanIoU(include_background=True, reduction="none", ignore_empty=False)(
            ta, tm
        ).flatten()
        hd = torch.full((either.size,), float("nan"))
        if both.any():
            idx = torch.from_numpy(np.flatnonzero(both))
            hd[idx] = (
                HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(
                    ta[idx], tm[idx], spacing=spacing
                )
                .flatten()
                .float()
            )
    del ta, tm
    rows: list[dict[str, Any]] = [{"scored": False} for _ in range(a.shape[0])]
    for k, f in enumerate(either.tolist()):
        rows[f] = {
            "scored": True,
            "dice": float(dice[k]),
            "iou": float(iou[k]),
            "hd95_mm": float(hd[k]) if bool(both[k]) else None,
            "auto_pixels": int(na[f]),
            "manual_pixels": int(nm[f]),
            "intersection": int(np.count_nonzero(a[f] & m[f])),
            "grid_spacing_mm": spacing,
        }
    return rows


def compare_labels(
    pid: str,
    auto: LabelFile,
    manual: LabelFile,
    classes: tuple[int, ...] = DEFAULT_CLASSES,
    auto_path: str | None = None,
) -> list[dict[str, Any]]:
    """Per-frame, per-class rows for one pullback (frames labelled on both sides)."""
    common, ia, im = _common_frames(auto, manual)
    if not common:
        return []
    grid = _shared_grid(auto, manual, ia, im, classes)
    per_class: dict[int, list[dict[str, Any]]] = {cls: [] for cls in classes}
    for i in range(0, len(common), CHUNK_FRAMES):
        ca, sa = to_cartesian(auto, ia[i : i + CHUNK_FRAMES], **grid)
        cm, sm = to_cartesian(manual, im[i : i + CHUNK_FRAMES], **grid)
        _check_same_grid(ca.shape[1:], sa, cm.shape[1:], sm, pid, auto_path)
        for cls in classes:
            per_class[cls].extend(_per_frame(ca, cm, cls, sa))
    return [
        {"pullback_id": pid, "frame": f, "class": CLASS_NAMES[cls], **r}
        for cls in classes
        for f, r in zip(common, per_class[cls])
    ]


def _common_frames(auto: LabelFile, manual: LabelFile) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Frames labelled on both sides (sorted) and their indices in each label file."""
    fa = {int(f): i for i, f in enumerate(auto.frames)}
    fm = {int(f): i for i, f in enumerate(manual.frames)}
    common = sorted(set(fa) & set(fm))
    return common, np.array([fa[f] for f in common]), np.array([fm[f] for f in common])


def _shared_grid(
    auto: LabelFile, manual: LabelFile, ia: np.ndarray, im: np.ndarray, classes: tuple[int, ...]
) -> dict[str, Any]:
    """The Cartesian grid of :func:`polar_grid` for two polar label maps of one shape and
    spacing (``to_cartesian`` arguments); empty otherwise (each side on its own grid)."""
    sa, sm = auto.pixel_spacing_mm, manual.pixel_spacing_mm
    if not auto.space == manual.space == "polar":
        return {}
    if auto.labels.shape[1:] == manual.labels.shape[1:] and abs(sa - sm) <= 1e-6 * max(sa, sm):
        side, cart = polar_grid([(auto.labels, ia), (manual.labels, im)], classes, sa)
        return {"out_size": side, "cart_spacing_mm": cart}
    return {}


def _check_same_grid(
    shape_a: tuple[int, ...],
    sa: float,
    shape_m: tuple[int, ...],
    sm: float,
    pid: str,
    auto_path: str | None,
) -> None:
    if shape_a != shape_m or abs(sa - sm) > 1e-6 * max(sa, sm):
        raise InputError(
            auto_path,
            f"pullback {pid!r}: automated and manual label maps differ in size or spacing "
            f"({shape_a} at {sa:g} mm vs {shape_m} at {sm:g} mm)",
        )


def _summary(vals: list[float]) -> dict[str, Any]:
    if not vals:
        return {"mean": None, "sd": None, "median": None, "iqr": [None, None]}
    v = np.asarray(vals, dtype=float)
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if v.size > 1 else None,
        "median": float(np.median(v)),
        "iqr": [float(np.percentile(v, 25)), float(np.percentile(v, 75))],
    }


def drop_unlabelled_optional(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without the plaque classes' rows where no frame on either side has that class
    (a lumen/calcium/stent evaluation then reads as it did before the plaque classes)."""
    optional = {CLASS_NAMES[c] for c in PLAQUE_CLASSES}
    present = {r["class"] for r in rows if r["scored"]}
    return [r for r in rows if r["class"] not in optional or r["class"] in present]


def summarize_overlap(rows: list[dict[str, Any]], classes: tuple[int, ...]) -> dict[str, Any]:
    """Per-class summary over all pullbacks' per-frame rows (classes without rows left out);
    the Dice CIs are over pullbacks (:func:`octseg.evaluate.stats.cluster_ratio_ci`)."""
    out: dict[str, Any] = {}
    for cls in classes:
        name = CLASS_NAMES[cls]
        rs = [r for r in rows if r["class"] == name]
        if rs:
            out[name] = _class_overlap(rs) | _dice_cis(rs)
    return out


def _dice_cis(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """95% CIs of the mean and the pooled Dice of one class, over pullbacks (cluster-robust, t
    on pullbacks - 1 degrees of freedom: :func:`octseg.evaluate.stats.cluster_ratio_ci`)."""
    from octseg.evaluate.stats import cluster_ratio_ci

    scored = [r for r in rs if r["scored"]]
    ids = [r["pullback_id"] for r in scored]
    return {
        "n_pullbacks": len(set(ids)),
        "dice_ci95": cluster_ratio_ci([r["dice"] for r in scored], [1.0] * len(scored), ids),
        "dice_pooled_ci95": cluster_ratio_ci(
            [2.0 * r["intersection"] for r in scored],
            [r["auto_pixels"] + r["manual_pixels"] for r in scored],
            ids,
        ),
    }


def _class_overlap(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """One class's summary of its per-frame rows ``rs``."""
    scored = [r for r in rs if r["scored"]]
    hd = [r["hd95_mm"] for r in scored if r["hd95_mm"] is not None]
    return {
        "n_frames_compared": len(rs),
        "n_frames": len(scored),
        "n_absent_both": len(rs) - len(scored),
        "n_hd95": len(hd),
        "n_one_empty": len(scored) - len(hd),
        "n_auto_only": sum(1 for r in scored if not r["manual_pixels"]),
        "n_manual_only": sum(1 for r in scored if not r["auto_pixels"]),
        "dice": _summary([r["dice"] for r in scored]),
        "iou": _summary([r["iou"] for r in scored]),
        "hd95_mm": _summary(hd),
        "hd95_resolution_mm": max(
            (r["grid_spacing_mm"] for r in scored if "grid_spacing_mm" in r), default=None
        ),
        **_pooled_overlap(scored),
    }


def _pooled_overlap(scored: list[dict[str, Any]]) -> dict[str, float | None]:
    """Dice and IoU of the pixels of all scored frames together (``None`` without pixels)."""
    inter = sum(r["intersection"] for r in scored)
    tot = sum(r["auto_pixels"] + r["manual_pixels"] for r in scored)
    union = tot - inter
    return {
        "dice_pooled": (2 * inter / tot) if tot else None,
        "iou_pooled": (inter / union) if union else None,
    }
