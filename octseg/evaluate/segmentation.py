"""Overlap of automated with manual label maps: per-class Dice, IoU and 95% Hausdorff (mm).

Metrics come from MONAI (``DiceMetric``, ``MeanIoU``, ``HausdorffDistanceMetric`` with
``percentile=95`` and the pixel spacing). They are computed per frame and per class, only on
frames labelled on both sides (matched by pullback frame number):

- frames where the class is present in **either** mask are scored (Dice/IoU 0 when one mask is
  empty); their number is reported as ``n_frames``;
- frames where the class is absent in **both** masks are counted as ``n_absent_both`` and not
  averaged in (Dice is undefined there, neither 1 nor NaN);
- the Hausdorff distance needs both masks non-empty: ``n_hd95`` frames; frames with one mask
  empty are counted as ``n_one_empty``.

Polar label maps are scan-converted to Cartesian (nearest neighbour, at the polar depth spacing,
:func:`octseg.polar.polar_to_cartesian`) first, so that areas and distances are physical.
A pooled Dice (sums of overlaps over all scored frames) is given beside the per-frame mean.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from octseg.classes import CLASS_NAMES
from octseg.errors import InputError
from octseg.labels import LabelFile

DEFAULT_CLASSES = (1, 2, 3, 4)


def to_cartesian(lf: LabelFile, frames: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Label frames (selected rows) as Cartesian maps and their pixel spacing (mm)."""
    lab = lf.labels if frames is None else lf.labels[frames]
    if lf.space == "cartesian":
        return lab, lf.pixel_spacing_mm
    import torch

    from octseg.polar import polar_to_cartesian

    n_samples = lab.shape[2]
    size = 2 * n_samples
    out = np.empty((lab.shape[0], size, size), dtype=np.uint8)
    for i in range(0, lab.shape[0], 16):
        t = torch.from_numpy(lab[i : i + 16].astype(np.int64))
        cart = polar_to_cartesian(
            t,
            out_size=(size, size),
            polar_spacing_mm=lf.pixel_spacing_mm,
            cart_spacing_mm=lf.pixel_spacing_mm,
            mode="nearest",
        )
        out[i : i + 16] = cart.numpy().astype(np.uint8)
    return out, lf.pixel_spacing_mm


def _per_frame(
    auto: np.ndarray, manual: np.ndarray, cls: int, spacing: float
) -> list[dict[str, Any]]:
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, MeanIoU

    a = torch.from_numpy(auto == cls).unsqueeze(1).float()  # (F, 1, H, W)
    m = torch.from_numpy(manual == cls).unsqueeze(1).float()
    pa = a.flatten(1).sum(1) > 0
    pm = m.flatten(1).sum(1) > 0
    rows = []
    either = (pa | pm).nonzero().flatten().tolist()
    if not either:
        return [{"scored": False} for _ in range(a.shape[0])]
    sel = torch.tensor(either)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)(
            a[sel], m[sel]
        ).flatten()
        iou = MeanIoU(include_background=True, reduction="none", ignore_empty=False)(
            a[sel], m[sel]
        ).flatten()
        both = (pa & pm)[sel]
        hd = torch.full((len(either),), float("nan"))
        if both.any():
            idx = both.nonzero().flatten()
            hd[idx] = (
                HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(
                    a[sel][idx], m[sel][idx], spacing=spacing
                )
                .flatten()
                .float()
            )
    k = 0
    for f in range(a.shape[0]):
        if k < len(either) and either[k] == f:
            rows.append(
                {
                    "scored": True,
                    "dice": float(dice[k]),
                    "iou": float(iou[k]),
                    "hd95_mm": float(hd[k]) if bool(both[k]) else None,
                    "auto_pixels": int(a[f].sum()),
                    "manual_pixels": int(m[f].sum()),
                    "intersection": int((a[f] * m[f]).sum()),
                }
            )
            k += 1
        else:
            rows.append({"scored": False})
    return rows


def compare_labels(
    pid: str,
    auto: LabelFile,
    manual: LabelFile,
    classes: tuple[int, ...] = DEFAULT_CLASSES,
    auto_path: str | None = None,
) -> list[dict[str, Any]]:
    """Per-frame, per-class rows for one pullback (frames labelled on both sides)."""
    fa = {int(f): i for i, f in enumerate(auto.frames)}
    fm = {int(f): i for i, f in enumerate(manual.frames)}
    common = sorted(set(fa) & set(fm))
    if not common:
        return []
    ia = np.array([fa[f] for f in common])
    im = np.array([fm[f] for f in common])
    ca, sa = to_cartesian(auto, ia)
    cm, sm = to_cartesian(manual, im)
    if ca.shape[1:] != cm.shape[1:] or abs(sa - sm) > 1e-6 * max(sa, sm):
        raise InputError(
            auto_path,
            f"pullback {pid!r}: automated and manual label maps differ in size or spacing "
            f"({ca.shape[1:]} at {sa:g} mm vs {cm.shape[1:]} at {sm:g} mm)",
        )
    rows = []
    for cls in classes:
        per = _per_frame(ca, cm, cls, sa)
        for f, r in zip(common, per):
            rows.append({"pullback_id": pid, "frame": f, "class": CLASS_NAMES[cls], **r})
    return rows


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


def summarize_overlap(rows: list[dict[str, Any]], classes: tuple[int, ...]) -> dict[str, Any]:
    """Per-class summary over all pullbacks' per-frame rows."""
    out: dict[str, Any] = {}
    for cls in classes:
        name = CLASS_NAMES[cls]
        rs = [r for r in rows if r["class"] == name]
        scored = [r for r in rs if r["scored"]]
        hd = [r["hd95_mm"] for r in scored if r["hd95_mm"] is not None]
        inter = sum(r["intersection"] for r in scored)
        tot = sum(r["auto_pixels"] + r["manual_pixels"] for r in scored)
        union = tot - inter
        out[name] = {
            "n_frames_compared": len(rs),
            "n_frames": len(scored),
            "n_absent_both": len(rs) - len(scored),
            "n_hd95": len(hd),
            "n_one_empty": len(scored) - len(hd),
            "dice": _summary([r["dice"] for r in scored]),
            "iou": _summary([r["iou"] for r in scored]),
            "hd95_mm": _summary(hd),
            "dice_pooled": (2 * inter / tot) if tot else None,
            "iou_pooled": (inter / union) if union else None,
        }
    return out
