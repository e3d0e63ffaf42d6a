"""Held-out evaluation of a checkpoint on labelled pullbacks: real (Danilov) and hybrid ones.

Both evaluations segment each pullback folder (``image.npz``, ``labels.npz``; the dataset
layout of docs/dataset.md) as ``infer.py`` does (:func:`segment`: the checkpoint's recommended
inference settings, anatomical post-processing) and compare the prediction with the reference
labels on the labelled frames, with the product's pieces:

- **Dice** per frame in Cartesian (:func:`octseg.evaluate.segmentation.to_cartesian`, nearest,
  the polar field spanning a ``cart_size`` grid) by MONAI
  (:func:`octseg.evaluate.segmentation.dice_frames`);
- **areas, arcs, thicknesses, struts** measured on both label maps by
  :func:`octseg.geometry.measure_labels`;
- **struts** paired by :func:`octseg.evaluate.matching.match_struts`;
- **agreement** (Bland-Altman, ICC, MAE) by :func:`octseg.evaluate.stats.continuous_agreement`,
  detection by :func:`octseg.evaluate.stats.detection`.

:func:`evaluate_lumen` is the real pullback's evaluation (lumen only, pixel units, as its
spacing is not recorded); :func:`evaluate_truth` the hybrid one (every class, against the
true values in ``truth/``). Which folders to evaluate is the data set's business
(``octseg realdata evaluate``, ``octseg hybrid evaluate``): they pass the folders in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core.classes import CLASS_NAMES, LUMEN
from octseg.core.errors import InputError
from octseg.evaluate import matching, stats
from octseg.evaluate.segmentation import dice_frames, to_cartesian
from octseg.io.labels import LabelFile


def segment(
    checkpoint: str | Path, folders: Mapping[str, Path], device: str = "cpu"
) -> tuple[dict[str, tuple[LabelFile, LabelFile]], list[int]]:
    """``{id: (predicted, reference)}`` polar label files of the pullback folders, segmented by
    the product (:func:`octseg.infer.run_inference` into a temporary folder: the checkpoint's
    recommended inference settings and the anatomical post-processing, as ``infer.py`` applies
    them), the prediction restricted to the reference's labelled frames; and the model's class
    ids. A pullback the run could not segment raises :class:`~octseg.core.errors.InputError`
    naming its folder."""
    import tempfile

    from octseg.infer import InferSettings, run_inference
    from octseg.infer.inputs import discover
    from octseg.io.labels import load_labels

    tasks = discover([_image_of(Path(f)) for f in folders.values()])
    if len(tasks) != len(folders):
        raise InputError(
            None, f"a pullback folder is given twice: {sorted(map(str, folders.values()))}"
        )
    with tempfile.TemporaryDirectory(prefix="octseg-holdout-") as tmp:
        settings = InferSettings(
            checkpoint=str(checkpoint),
            input=[str(t.path) for t in tasks],
            output=tmp,
            device=device,
            report=False,
            overlay_frames=[],
            dicom_seg=False,
            progress=False,
        )
        manifest = run_inference(settings)["manifest"]
        records = manifest["pullbacks"]
        out = {}
        for pid, task in zip(folders, tasks, strict=True):
            rec = records.get(task.id, {})
            if rec.get("status") != "done":
                raise InputError(task.path, f"not segmented: {rec.get('error', 'no record')}")
            ref = load_labels(Path(folders[pid]) / "labels.npz")
            pred = load_labels(Path(tmp) / task.id / "labels.npz")
            pred.labels = pred.labels[ref.frames]
            pred.frame_index = ref.frame_index
            out[pid] = (pred, ref)
    return out, list(manifest["model"]["classes"])


def _image_of(folder: Path) -> Path:
    """The image of a held-out pullback folder (one pullback: ``image.*`` beside ``labels.npz``)."""
    from octseg.infer.inputs import discover

    found = discover(folder)
    if len(found) != 1:
        raise InputError(folder, f"holds {len(found)} pullbacks, not one (image.* and labels.npz)")
    return found[0].path


def cartesian(lf: LabelFile, size: int) -> np.ndarray:
    """Polar label frames as Cartesian ``(F, size, size)`` maps, the polar field spanning the
    grid (nearest neighbour)."""
    cart_mm = lf.pixel_spacing_mm * lf.labels.shape[-1] * 2 / size
    return to_cartesian(lf, out_size=size, cart_spacing_mm=cart_mm)[0]


def measure(lf: LabelFile) -> Any:
    """The product's measurements (:func:`octseg.geometry.measure_labels`) of a label file."""
    from octseg.geometry import measure_labels

    return measure_labels(lf)


# ----------------------------------------------------------------------------- real: lumen
def evaluate_lumen(
    checkpoint: str | Path,
    folders: Mapping[str, Path],
    *,
    device: str = "cpu",
    cart_size: int = 750,
) -> dict[str, Any]:
    """Lumen Dice and lumen-area agreement (pixel units) of a checkpoint on pseudo-pullbacks
    (``folders``: id -> folder).

    Dice per labelled frame in Cartesian (``cart_size`` pixels across the polar field, i.e. the
    original 750x750 frame grid); the lumen area of prediction and reference measured by the
    product's geometry, in Cartesian pixels^2 of that grid (0 where a prediction has no lumen: a
    measurement of 0, not an error), with Bland-Altman bias / limits of agreement and ICC(A,1).
    """
    dice: list[float] = []
    a_auto: list[float] = []
    a_ref: list[float] = []
    per = {}
    for pid, (pred, ref) in segment(checkpoint, folders, device)[0].items():
        dd = dice_frames(cartesian(pred, cart_size), cartesian(ref, cart_size), LUMEN).tolist()
        dice += dd
        cart_mm = pred.pixel_spacing_mm * pred.labels.shape[-1] * 2 / cart_size
        a_auto += lumen_areas_px2(pred, cart_mm)
        a_ref += lumen_areas_px2(ref, cart_mm)
        per[pid] = {
            "n": len(dd),
            "dice_mean": float(np.mean(dd)),
            "dice_min": float(np.min(dd)),
            "dice_per_frame": [round(x, 4) for x in dd],
        }
    return {
        "checkpoint": str(checkpoint),
        "ids": list(folders),
        "n_frames": len(dice),
        "lumen_dice_mean": float(np.mean(dice)),
        "lumen_dice_median": float(np.median(dice)),
        "lumen_dice_min": float(np.min(dice)),
        "per_pullback": per,
        "lumen_area_px2": stats.continuous_agreement(a_auto, a_ref),
        "units": "Cartesian pixels of the 750x750 source frames (spacing not recorded)",
    }


def lumen_areas_px2(lf: LabelFile, cart_mm: float) -> list[float]:
    """Lumen area per frame measured by :func:`measure` in Cartesian pixels^2 of ``cart_mm``
    mm; 0 where a frame has no lumen."""
    areas = [r.get("lumen_area_mm2") for r in measure(lf).frames]
    return [float(a) / cart_mm**2 if a is not None and np.isfinite(a) else 0.0 for a in areas]


# ----------------------------------------------------------------------------- hybrid: truth
def evaluate_truth(
    checkpoint: str | Path,
    folders: Mapping[str, Path],
    *,
    device: str = "cpu",
    tolerance_mm: float = 0.1,
    cart_size: int = 750,
) -> dict[str, Any]:
    """A checkpoint on held-out pullbacks with true values (``<folder>/truth/frames.csv`` and
    ``struts.csv``, as the hybrid and synthetic cohorts write them).

    Per-class Dice (per frame, in Cartesian, on frames where the class is in the truth or the
    prediction; the count is reported), strut detection F1 (``tolerance_mm``), and agreement
    with the true values of the calcium arc / maximum thickness on frames with true calcium
    (missed calcium counts as 0), of the lumen area on every frame and of the malapposition
    distance of matched struts, all measured on the predicted labels.
    """
    pairs, classes = segment(checkpoint, folders, device)
    classes = [c for c in classes if c != 0]
    acc = _TruthPairs(classes)
    for pid, (pred, ref) in pairs.items():
        pc, tc = cartesian(pred, cart_size), cartesian(ref, cart_size)
        for c in classes:
            acc.dice[c] += _scored_dice(pc, tc, c)
        acc.add_pullback(measure(pred), Path(folders[pid]) / "truth", tolerance_mm)
    return {
        "checkpoint": str(checkpoint),
        "pullbacks": list(folders),
        "dice": {
            CLASS_NAMES[c]: {"mean": float(np.mean(v)) if v else None, "n_frames": len(v)}
            for c, v in acc.dice.items()
        },
        "struts": stats.detection(**acc.counts)
        | {"counts": acc.counts, "tolerance_mm": tolerance_mm},
        **{name: stats.continuous_agreement(a, t) for name, (a, t) in acc.pairs.items()},
        "note": "calcium agreement over frames with true calcium (missed calcium counts as 0)",
    }


def _scored_dice(pred: np.ndarray, truth: np.ndarray, cls: int) -> list[float]:
    """Dice of ``cls`` on the frames where it is in the truth or the prediction."""
    present = (pred == cls).any(axis=(1, 2)) | (truth == cls).any(axis=(1, 2))
    if not present.any():
        return []
    return dice_frames(pred[present], truth[present], cls).tolist()


class _TruthPairs:
    """(measured, true) value pairs and strut counts collected over the pullbacks."""

    MEASURES = (
        "lumen_area_mm2",
        "calcium_arc_deg",
        "calcium_max_thickness_mm",
        "malapposition_distance_mm",
    )

    def __init__(self, classes: list[int]):
        self.dice: dict[int, list[float]] = {c: [] for c in classes}
        self.pairs: dict[str, tuple[list[float], list[float]]] = {
            m: ([], []) for m in self.MEASURES
        }
        self.counts = {"tp": 0, "fp": 0, "fn": 0}

    def _add(self, name: str, measured: Any, true: Any) -> None:
        self.pairs[name][0].append(measured)
        self.pairs[name][1].append(true)

    def add_pullback(self, m: Any, truth: Path, tolerance_mm: float) -> None:
        """Pair the measurements ``m`` of one predicted pullback with its ``truth`` folder."""
        from octseg.geometry.tables import read_csv

        true_frames = {int(r["frame"]): r for r in read_csv(truth / "frames.csv")}
        for r in m.frames:
            t = true_frames.get(int(r["frame"]))
            if t is not None:
                self._add_frame(r, t)
        self._add_struts(m.struts, read_csv(truth / "struts.csv"), tolerance_mm)

    def _add_struts(
        self, struts: list[dict[str, Any]], true_struts: list[dict[str, Any]], tolerance_mm: float
    ) -> None:
        """Count the measured struts found / spurious / missed against the true ones, and pair
        the malapposition distances of the struts found."""
        pairs, cnt = matching.match_struts(struts, true_struts, tolerance_mm=tolerance_mm)
        for k in self.counts:
            self.counts[k] += cnt[k]
        for pr in pairs:
            if pr.get("auto") is not None and pr.get("manual") is not None:
                self._add(
                    "malapposition_distance_mm",
                    pr["auto"]["distance_mm"],
                    pr["manual"]["distance_mm"],
                )

    def _add_frame(self, r: dict[str, Any], t: dict[str, Any]) -> None:
        """Pair a measured frame ``r`` with its true frame ``t``: the lumen area where the truth
        gives it; calcium arc and thickness on frames with true calcium (missed calcium counts
        as 0)."""
        if t.get("lumen_area_mm2") is not None:
            self._add("lumen_area_mm2", r.get("lumen_area_mm2") or 0.0, t["lumen_area_mm2"])
        if t.get("calcium_arc_deg") is None:
            return
        self._add("calcium_arc_deg", r.get("calcium_arc_deg") or 0.0, t["calcium_arc_deg"])
        self._add(
            "calcium_max_thickness_mm",
            r.get("calcium_max_thickness_mm") or 0.0,
            t["calcium_max_thickness_mm"],
        )
