"""A pullback under review: image, label maps, per-frame measurements, edits, undo/redo.

Measurements always come from :func:`octseg.geometry.measure_labels` (the product's own
geometry): the whole pullback when it is opened, then the one frame an edit touched.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from octseg.core.classes import CLASS_NAMES
from octseg.core.errors import InputError
from octseg.io.labels import LabelFile, load_labels
from octseg.review import edits
from octseg.review.source import Entry

MAX_UNDO = 200


@dataclass
class Step:
    """One undoable change of one frame: the label map and marks before it."""

    frame: int
    labels: np.ndarray
    reviewed: bool
    edited: bool


@dataclass
class PullbackState:
    entry: Entry
    image: np.ndarray  # uint8 (F, H, W)
    labels: np.ndarray  # uint8 (F, H, W): every image frame
    labelled: np.ndarray  # bool (F,): frames that had a label map (sparse dataset labels)
    space: str
    ps: float
    fs: float
    center: tuple[float, float] | None
    grid: edits.PixelGrid
    geometry: Any = None  # GeometrySettings that measure the labels (None: the defaults)
    rows: list[dict[str, Any] | None] = field(default_factory=list)
    reviewed: set[int] = field(default_factory=set)
    edited: set[int] = field(default_factory=set)
    edit_counts: dict[str, int] = field(default_factory=dict)
    undo: list[Step] = field(default_factory=list)
    redo: list[Step] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    version: int = 0  # bumped by every change
    fver: dict[int, int] = field(default_factory=dict)  # per-frame change count (render cache)
    saved_version: int = 0
    _shapes: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def n_frames(self) -> int:
        return int(self.image.shape[0])

    # ------------------------------------------------------------ measuring

    def label_file(self, frames: list[int]) -> LabelFile:
        return LabelFile(
            labels=self.labels[frames],
            space=self.space,
            pixel_spacing_mm=self.ps,
            frame_spacing_mm=self.fs,
            catheter_center=self.center,
            frame_index=np.asarray(frames, dtype=np.int64),
        )

    def measure(self, frames: list[int] | None = None) -> None:
        """Re-measure ``frames`` (default: every labelled frame) with ``measure_labels``."""
        from octseg.geometry import measure_labels

        if frames is None:
            self.rows = [None] * self.n_frames
            frames = [int(f) for f in np.flatnonzero(self.labelled)]
        if not frames:
            return
        for row in measure_labels(self.label_file(frames), self.geometry).frames:
            self.rows[int(row["frame"])] = row

    def jumps(self) -> dict[str, int | None]:
        """Frames of the MLA, MSA, max calcium arc, max malapposition and the TCFA frame with the
        thinnest cap (None if none)."""
        return {
            "mla": _arg(self.rows, "lumen_area_mm2", min),
            "msa": _arg(self.rows, "stent_area_mm2", min),
            "max_calcium_arc": _arg(self.rows, "calcium_arc_deg", max),
            "max_malapposition": _arg(self.rows, "max_malapposition_mm", max),
            "tcfa": _arg(
                [r for r in self.rows if r and r.get("tcfa")], "cap_min_thickness_um", min
            ),
        }

    # ------------------------------------------------------------ editing

    def apply(self, frame: int, op: dict[str, Any]) -> None:
        """Apply one validated edit to ``frame``, re-measure it, mark it edited and reviewed."""
        self._check_frame(frame)
        with self.lock:
            new = run_edit(self.labels[frame], self.grid, op)
            self._push(self.undo, frame)
            self.redo.clear()
            self.labels[frame] = new
            self.labelled[frame] = True
            self.edited.add(frame)
            self.reviewed.add(frame)
            self.edit_counts[op["op"]] = self.edit_counts.get(op["op"], 0) + 1
            self._changed(frame)

    def set_reviewed(self, frame: int, value: bool) -> None:
        self._check_frame(frame)
        with self.lock:
            self._push(self.undo, frame)
            self.redo.clear()
            (self.reviewed.add if value else self.reviewed.discard)(frame)
            self.labelled[frame] = self.labelled[frame] or value
            self._changed(frame)

    def step_back(self, forward: bool = False) -> int | None:
        """Undo (``forward``: redo) the last change; returns its frame, None if nothing to do."""
        src, dst = (self.redo, self.undo) if forward else (self.undo, self.redo)
        with self.lock:
            if not src:
                return None
            step = src.pop()
            self._push(dst, step.frame)
            self.labels[step.frame] = step.labels
            (self.reviewed.add if step.reviewed else self.reviewed.discard)(step.frame)
            (self.edited.add if step.edited else self.edited.discard)(step.frame)
            self._changed(step.frame)
            return step.frame

    def _push(self, stack: list[Step], frame: int) -> None:
        stack.append(
            Step(frame, self.labels[frame].copy(), frame in self.reviewed, frame in self.edited)
        )
        del stack[:-MAX_UNDO]

    def _changed(self, frame: int) -> None:
        self.version += 1
        self.fver[frame] = self.fver.get(frame, 0) + 1
        if self.labelled[frame]:
            self.measure([frame])

    def _check_frame(self, frame: int) -> None:
        if not 0 <= frame < self.n_frames:
            raise IndexError(f"frame {frame} outside 0..{self.n_frames - 1}")

    # ------------------------------------------------------------ views

    def shapes(self, frame: int) -> dict[str, Any]:
        """Control points, contour and struts of a frame (cached until the frame changes)."""
        key = (frame, self.fver.get(frame, 0))
        hit = self._shapes.get(key)
        if hit is None:
            pts = edits.control_points(self.labels[frame], self.grid)
            t, r = edits.spline_radius(np.asarray(pts))
            step = max(1, len(t) // 256)
            curve = [
                [float(rr * math.cos(tt)), float(rr * math.sin(tt))]
                for tt, rr in zip(t[::step], r[::step])
            ]
            hit = {"control_points": pts, "contour": curve, "struts": self.struts(frame)}
            self._shapes[key] = hit
            while len(self._shapes) > 256:
                self._shapes.pop(next(iter(self._shapes)))
        return hit

    def frame_info(self, frame: int) -> dict[str, Any]:
        self._check_frame(frame)
        with self.lock:
            return {
                "frame": frame,
                "row": self.rows[frame],
                **self.shapes(frame),
                "reviewed": frame in self.reviewed,
                "edited": frame in self.edited,
                "labelled": bool(self.labelled[frame]),
                "jumps": self.jumps(),
                "n_undo": len(self.undo),
                "n_redo": len(self.redo),
            }

    def struts(self, frame: int) -> list[list[float]]:
        """Strut points [x, y] mm of a frame, by the geometry module's strut finder."""
        import torch

        from octseg.geometry.stent import strut_points

        lab = torch.from_numpy(np.ascontiguousarray(self.labels[frame]))[None]
        _, yx = strut_points(lab, self.space, self.ps, self.center)
        return [[float(x), float(y)] for y, x in yx.tolist()]

    def table(self) -> list[dict[str, Any] | None]:
        return list(self.rows)


def _arg(rows: list[dict[str, Any] | None], key: str, pick) -> int | None:
    vals = [(r[key], r["frame"]) for r in rows if r and r.get(key) is not None]
    vals = [v for v in vals if math.isfinite(v[0])]
    return int(pick(vals)[1]) if vals else None


def run_edit(lab: np.ndarray, grid: edits.PixelGrid, op: dict[str, Any]) -> np.ndarray:
    kind = op["op"]
    if kind == "lumen":
        return edits.set_lumen(lab, grid, op["points"])
    if kind == "brush":
        cls = {v: k for k, v in CLASS_NAMES.items()}[op.get("class", "calcium")]
        return edits.brush(lab, grid, op["points"], op["radius_mm"], op["mode"] == "erase", cls)
    if kind == "strut_add":
        return edits.add_strut(lab, grid, op["x"], op["y"])
    if kind == "strut_delete":
        return edits.delete_strut(lab, grid, op["x"], op["y"])
    if kind == "strut_move":
        return edits.move_strut(lab, grid, op["src"], op["dst"])
    if kind == "guidewire":
        return edits.set_guidewire(lab, grid, op["start_deg"], op["end_deg"], op["radius_mm"])
    raise ValueError(f"unknown edit {kind!r}")


# ---------------------------------------------------------------- loading


def _as_uint8(frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames
    f = frames.astype(np.float32)
    hi = 1.0 if f.size and float(f.max()) <= 1.0 else 255.0
    return np.clip(f * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8)


def load_state(entry: Entry, geometry: Any = None) -> PullbackState:
    """Read a pullback's image and labels and measure it with ``geometry`` (GeometrySettings;
    None: the defaults). Errors name the file and problem."""
    from octseg.io import read_pullback

    if entry.error:
        raise InputError(entry.folder, entry.error)
    if entry.image_path is None:
        raise InputError(entry.folder, "no image for this pullback (pass --data DATASET)")
    pb = read_pullback(entry.image_path)
    image = _as_uint8(np.asarray(pb.read()))
    f, h, w = image.shape
    labels = np.zeros((f, h, w), dtype=np.uint8)
    labelled = np.zeros(f, dtype=bool)
    center = pb.catheter_center if pb.space == "cartesian" else None
    if entry.labels_path is not None:
        lf = load_labels(entry.labels_path)
        _check_match(entry, lf, pb)
        labels[lf.frames] = lf.labels
        labelled[lf.frames] = True
        center = lf.center if lf.space == "cartesian" else None
    grid = edits.PixelGrid.make(pb.space, (h, w), pb.pixel_spacing_mm, center)
    st = PullbackState(
        entry,
        image,
        labels,
        labelled,
        pb.space,
        pb.pixel_spacing_mm,
        pb.frame_spacing_mm,
        center,
        grid,
        geometry,
    )
    st.measure()
    return st


def _check_match(entry: Entry, lf: LabelFile, pb) -> None:
    path = entry.labels_path
    if lf.space != pb.space:
        raise InputError(path, f"labels are {lf.space}, the image is {pb.space}")
    if lf.labels.shape[1:] != (pb.height, pb.width):
        raise InputError(
            path, f"label frames {lf.labels.shape[1:]} != image frames {(pb.height, pb.width)}"
        )
    if lf.frames.size and int(lf.frames.max()) >= pb.n_frames:
        raise InputError(
            path, f"label frame {int(lf.frames.max())} beyond the image's {pb.n_frames} frames"
        )
