"""Shared by the ``octseg review`` tests: a tiny synthetic dataset and an inference-like output
made from it (what infer.py writes: manifest.json, per-pullback labels.npz, tables, done.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from octseg.core.classes import LUMEN
from octseg.geometry import measure_labels
from octseg.io.labels import LabelFile, load_labels, save_labels

PID = "synth-000"


def synth_dataset(root: Path, cartesian: bool = False) -> Path:
    """``octseg synth --preset small`` with 24 frames (0.5 mm apart); Cartesian: the image and
    labels are the generator's Cartesian versions, under the dataset names."""
    from octseg.datasets.synth.cohort import generate_cohort, grid_from

    grid = grid_from("small", n_frames=24, frame_spacing_mm=0.5)
    generate_cohort(root, 1, 0, grid, cartesian=cartesian, progress=False)
    if cartesian:
        pb = root / PID
        (pb / "image_cartesian.npz").replace(pb / "image.npz")
        (pb / "labels_cartesian.npz").replace(pb / "labels.npz")
    return root


def shrink_lumen(lf: LabelFile, frame: int, keep_cols: int) -> LabelFile:
    """A 'model error' on a polar frame: the lumen ends ``keep_cols`` samples from the catheter."""
    lab = lf.labels.copy()
    row = lab[frame]
    row[:, keep_cols:][row[:, keep_cols:] == LUMEN] = 0
    return LabelFile(
        lab, lf.space, lf.pixel_spacing_mm, lf.frame_spacing_mm, lf.catheter_center, lf.frame_index
    )


def inference_output(ds: Path, out: Path, *, broken: bool = True) -> Path:
    """``out`` laid out like infer.py's output for the dataset's pullback (labels = the truth with
    a too small lumen on frame 5), plus a failed pullback and, if ``broken``, one whose
    labels.npz is corrupt."""
    lf = shrink_lumen(load_labels(ds / PID / "labels.npz"), 5, 20)
    pb = out / PID
    pb.mkdir(parents=True)
    save_labels(pb / "labels.npz", lf)
    measure_labels(lf).write(pb)
    (pb / "done.json").write_text(
        json.dumps({"id": PID, "source": str(ds / PID / "image.npz"), "fingerprint": "f00d"})
    )
    records = {PID: {"status": "done", "source": str(ds / PID / "image.npz")}}
    records["gone"] = {"status": "failed", "error": "gone.dcm: not a recognised image"}
    if broken:
        bad = out / "broken"
        bad.mkdir()
        (bad / "labels.npz").write_bytes(b"PK\x03\x04 this is not a zip file")
        (bad / "done.json").write_text(json.dumps({"source": str(ds / PID / "image.npz")}))
        records["broken"] = {"status": "done"}
    header = {"checkpoint": "runs/best.ckpt", "fingerprint": "f00d"}  # at the top, as infer.py
    (out / "manifest.json").write_text(json.dumps({**header, "pullbacks": records}))
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def lumen_rows(labels: np.ndarray) -> np.ndarray:
    """Per A-line, the number of lumen samples of a polar frame."""
    return (labels == LUMEN).sum(1)
