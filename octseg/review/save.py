"""Saving a review: the reviewed frames as a labelled pullback in the dataset layout.

``<opened>/_reviewed/<id>/`` (the leading underscore keeps it out of pullback listings) holds:

- ``image.*``: the pullback's image (a hard link, else a copy, of the source file; written once);
- ``labels.npz``: label schema v1 with **only the reviewed frames** (``frame_index``), so that
  ``train.py`` (``data.root=<opened>/_reviewed``) trains on reviewed frames only;
- ``frames.csv``, ``struts.csv``, ``summary.json``: those frames measured by
  ``octseg.geometry.measure_labels`` - the manual side for ``evaluate.py manual=<opened>/_reviewed``;
- ``review.json``: provenance (frames reviewed / edited, edit counts, reviewer, time, model).

``<opened>/_corrected/<id>/`` holds the whole corrected pullback (the model's labels with the
corrections: ``labels.npz``, re-measured ``frames.csv`` / ``struts.csv`` / ``summary.json``,
``report.html``, ``review.json``) - the automated side, like an inference output folder. It is a
separate tree so that evaluation never mistakes its tables for manual ones.

Every file is written atomically (:mod:`octseg.core.atomic`), ``review.json`` last; saves are
serialised within the process (a lock) and across processes (``fcntl.flock`` on ``.lock``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np

from octseg import __version__
from octseg.core import atomic
from octseg.core.errors import InputError
from octseg.io.labels import load_labels, save_labels
from octseg.io.npzimage import write_npz_image
from octseg.review.source import CORRECTED_DIR, REVIEWED_DIR, inside
from octseg.review.state import PullbackState

PROVENANCE = "review.json"
_SAVE_LOCK = threading.Lock()
_IMAGE_NAMES = {
    ".npz": "image.npz",
    ".dcm": "image.dcm",
    ".tif": "image.tif",
    ".tiff": "image.tiff",
}


def reviewed_dir(root: Path, pid: str, tree: str = REVIEWED_DIR) -> Path:
    out = inside(root, root / tree / pid)
    if out is None:
        raise InputError(root / tree / pid, "lies outside the opened folder")
    return out


@contextlib.contextmanager
def _folder_lock(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with _SAVE_LOCK, open(folder / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _copy_image(st: PullbackState, out: Path) -> str:
    """The image beside the labels: a hard link or copy of the source, else an octseg npz."""
    src = st.entry.image_path
    if src is not None and src.is_dir():
        name = "image"
        if not (out / name).exists():
            tmp = out / f".tmp-{name}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)
            os.replace(tmp, out / name)
        return name
    name = _IMAGE_NAMES.get(src.suffix.lower()) if src is not None else None
    if name is None:
        name = "image.npz"
        if not (out / name).exists():
            write_npz_image(
                out / name,
                st.image,
                space=st.space,
                pixel_spacing_mm=st.ps,
                frame_spacing_mm=st.fs,
                catheter_center=st.center,
            )
        return name
    target = out / name
    if not target.exists() or target.stat().st_size != src.stat().st_size:
        tmp = out / f".tmp-{name}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        try:  # a hard link is not chmod-ed: the source file's mode stays as it is
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    sidecar = src.parent / "spacing.json"
    if sidecar.is_file():
        atomic.write_bytes(out / "spacing.json", sidecar.read_bytes())
    return name


def provenance(st: PullbackState, layout: str, reviewer: str, image_name: str) -> dict[str, Any]:
    src = st.entry.labels_path
    return {
        "pullback_id": st.entry.id,
        "tool": f"octseg review {__version__}",
        "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "reviewer": reviewer,
        "opened_layout": layout,
        "model": st.entry.model,
        "source_labels_sha256": _sha256(src) if src is not None else None,
        "n_frames": st.n_frames,
        "frames_reviewed": sorted(st.reviewed),
        "frames_edited": sorted(st.edited),
        "edits": dict(sorted(st.edit_counts.items())),
        "image": image_name,
        "labels": "labels.npz: the reviewed frames only (frame_index)",
    }


def _sha256(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def save_review(st: PullbackState, root: Path, layout: str, reviewer: str) -> dict[str, Any]:
    """Write the review of ``st`` under ``root/_reviewed/<id>/``; returns the provenance."""
    from octseg.geometry import measure_labels

    out = reviewed_dir(root, st.entry.id)
    with _folder_lock(out), st.lock:
        frames = sorted(st.reviewed)
        if not frames:
            raise ValueError("no frame is marked reviewed: nothing to save")
        lf = st.label_file(frames)
        prov = provenance(st, layout, reviewer, "")
        labelled = [int(f) for f in np.flatnonzero(st.labelled)]
        whole = st.label_file(labelled)
    image_name = _copy_image(st, out)
    with _folder_lock(out):
        save_labels(out / "labels.npz", lf)
        measure_labels(lf, st.geometry).write(out)
        prov["image"] = image_name
        atomic.write_json(out / PROVENANCE, prov)
    prov["warnings"] = write_corrected(st, root, whole, prov)
    return prov


def write_corrected(st: PullbackState, root: Path, lf, prov: dict[str, Any]) -> list[str]:
    """The whole corrected pullback, re-measured, with its report, under ``_corrected/<id>/``.
    Returns warnings (a report that could not be drawn does not fail the save)."""
    from octseg.geometry import measure_labels

    out = reviewed_dir(root, st.entry.id, CORRECTED_DIR)
    if lf.frame_index is not None and np.array_equal(lf.frame_index, np.arange(st.n_frames)):
        lf.frame_index = None
    with _folder_lock(out):
        save_labels(out / "labels.npz", lf, compress_level=1)
        m = measure_labels(lf, st.geometry)
        m.write(out)
        atomic.write_json(out / PROVENANCE, prov)
        try:
            _report(st, out, m, prov)
        except Exception as exc:  # noqa: BLE001 - an optional output, reported
            return [f"report.html not written: {type(exc).__name__}: {exc}"]
    return []


def _report(st: PullbackState, out: Path, m, prov: dict[str, Any]) -> None:
    from octseg.report.pullback import write_report

    h, w = st.labels.shape[1:]
    info = {
        "frame_spacing_mm": st.fs,
        "frames": st.n_frames,
        "space": st.space,
        "height": h,
        "width": w,
        "pixel_spacing_mm": st.ps,
        "format": "reviewed labels",
    }
    model = {
        "checkpoint": (st.entry.model or {}).get("checkpoint", "reviewed"),
        "classes": [0, 1, 2, 3, 4],
    }
    write_report(
        out / "report.html",
        pullback_id=st.entry.id,
        info=info,
        frames=m.frames,
        struts=m.struts,
        summary=m.summary,
        overlays=[],
        model=model,
    )


def restore(st: PullbackState, root: Path) -> bool:
    """Load an earlier save of this pullback (reviewed labels and marks) into ``st``."""
    out = inside(root, root / REVIEWED_DIR / st.entry.id)
    if out is None or not (out / PROVENANCE).is_file() or not (out / "labels.npz").is_file():
        return False
    import json

    prov = json.loads((out / PROVENANCE).read_text(encoding="utf-8"))
    lf = load_labels(out / "labels.npz")
    if lf.labels.shape[1:] != st.labels.shape[1:] or int(lf.frames.max()) >= st.n_frames:
        raise InputError(out / "labels.npz", "does not match the pullback's frames")
    st.labels[lf.frames] = lf.labels
    st.labelled[lf.frames] = True
    st.reviewed = {int(f) for f in prov.get("frames_reviewed", [])}
    st.edited = {int(f) for f in prov.get("frames_edited", [])}
    st.edit_counts = {str(k): int(v) for k, v in prov.get("edits", {}).items()}
    st.measure()
    return True
