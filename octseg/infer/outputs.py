"""One segmented pullback's outputs, written by a writer thread (:func:`finish_pullback`):

post-processing (optional) -> ``labels.npz`` (compressed on its own thread while the geometry
measures) and ``seg.dcm`` (DICOM input) -> ``frames.csv`` / ``struts.csv`` / ``summary.json``
-> ``overlays/*.png`` and ``report.html`` -> ``done.json``, last, which marks the pullback done.

Every file is written atomically. DICOM-SEG, overlays and report are optional outputs: a failure
is a warning (:func:`octseg.infer.safety.optional_output`), the pullback stays done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octseg.infer import manifest as mf
from octseg.infer import safety
from octseg.infer.inputs import Task
from octseg.infer.privacy import public_info, scrub
from octseg.infer.settings import InferSettings
from octseg.infer.workers import Renderer, render_outputs
from octseg.io.levels import input_warnings

LABELS_ZLIB_LEVEL = 1  # label maps are long runs of a few values: level 1 is ~2.5x faster than
# zlib's default 6 for files ~2x larger (still ~1/60 of the raw size)


def save_labels_fast(path: Path, lf: Any, level: int = LABELS_ZLIB_LEVEL) -> None:
    """:func:`octseg.io.labels.save_labels` with a fast zlib level (same schema and arrays)."""
    from octseg.io.labels import save_labels

    save_labels(path, lf, compress_level=level)


@dataclass(frozen=True)
class OutputSpec:
    """What every pullback's outputs in a run depend on besides the pullback itself."""

    settings: InferSettings
    geometry: Any  # octseg.geometry.GeometrySettings
    model_info: Mapping[str, Any]  # Predictor.describe()
    fingerprint: str  # checkpoint and output-affecting settings (octseg.infer.manifest)


@dataclass
class Segmented:
    """A segmented pullback on its way to the disk."""

    task: Task
    out_dir: Path
    pullback: Any  # octseg.io.Pullback
    labels: np.ndarray  # (F, H, W) uint8, the input's space (post-processed by finish_pullback)
    timings: dict[str, float]  # seconds per stage so far; the writing stages are added
    t_open: float = 0.0  # time.perf_counter() when the file was opened


@dataclass
class Written:
    """The files written for one pullback (in order) and the warnings of optional outputs."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def optional(self, path: Path, warning: str | None) -> None:
        """An optional output: written (``path``) or not (``warning``)."""
        if warning:
            self.warnings.append(warning)
        else:
            self.files.append(path)


def finish_pullback(
    seg: Segmented, spec: OutputSpec, renderer: Renderer | None = None
) -> dict[str, Any]:
    """Measure, write every output atomically, and mark the pullback done (writer thread).

    Overlays and the report are drawn by ``renderer`` (in this thread when None). Returns the
    manifest's ``{"outputs": [relative paths], "warnings": [...] (if any)}``; ``seg.timings``
    gains the writing stages."""
    t0 = time.perf_counter()
    seg.labels = postprocess(seg, spec)
    lf = label_file(seg.pullback, seg.labels)
    written = Written(seg.out_dir)
    saving = _BackgroundSave(seg.out_dir / "labels.npz", lf)
    written.files.append(seg.out_dir / "labels.npz")
    write_dicom_seg(seg, spec, written)
    t1 = time.perf_counter()
    m, t_measured = _measure(lf, spec, saving)
    t2 = time.perf_counter()
    m.write(seg.out_dir)
    written.files += [seg.out_dir / n for n in ("frames.csv", "struts.csv", "summary.json")]
    write_overlays_and_report(seg, m, spec, renderer or Renderer(0), written)
    written.warnings += input_warnings(seg.pullback.metadata)
    written.warnings = [scrub(w, seg.task, spec.settings.anonymize_ids) for w in written.warnings]
    t3 = time.perf_counter()
    seg.timings.update(  # the label file is written while the geometry measures
        write_labels_s=(t1 - t0) + saving.seconds,
        measure_s=t_measured - t1,
        write_outputs_s=t3 - t2,
        finish_s=t3 - t0,
    )
    return write_done(seg, spec, written)


def postprocess(seg: Segmented, spec: OutputSpec) -> np.ndarray:
    """The labels after anatomical post-processing (``settings.postprocess``; in place), timed
    as ``postprocess_s``."""
    settings = spec.settings
    if not settings.postprocess:
        return seg.labels
    from octseg.model.postprocess import postprocess_labels

    t0 = time.perf_counter()
    pb = seg.pullback
    cath_c = pb.catheter_center if pb.space == "cartesian" else None
    g = spec.geometry
    args = (pb.space, pb.pixel_spacing_mm, cath_c, settings.postprocess, g.catheter_radius_mm)
    labels = postprocess_labels(
        seg.labels,
        *args,
        device=settings.geometry_device,
        strut_shadow_mm=g.strut_shadow_mm,
        frame_spacing_mm=pb.frame_spacing_mm,
        max_gap_frames=g.max_gap_frames,
    )
    seg.timings["postprocess_s"] = time.perf_counter() - t0
    return labels


def label_file(pullback: Any, labels: np.ndarray) -> Any:
    """``labels`` with the pullback's space and spacing (:class:`octseg.io.labels.LabelFile`)."""
    from octseg.io.labels import LabelFile

    return LabelFile(
        labels=labels,
        space=pullback.space,
        pixel_spacing_mm=pullback.pixel_spacing_mm,
        frame_spacing_mm=pullback.frame_spacing_mm,
        catheter_center=pullback.catheter_center if pullback.space == "cartesian" else None,
    )


class _BackgroundSave:
    """``labels.npz`` compressed on its own thread (zlib releases the GIL) while the geometry
    measures the same labels; :meth:`raise_error` re-raises its failure in the caller's thread."""

    def __init__(self, path: Path, lf: Any):
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.thread = threading.Thread(
            target=self._save, args=(path, lf), name="octseg-labels", daemon=True
        )
        self.thread.start()

    def _save(self, path: Path, lf: Any) -> None:
        t = time.perf_counter()
        try:
            save_labels_fast(path, lf)
        except BaseException as exc:  # re-raised by raise_error, in the writer thread
            self.error = exc
        self.seconds += time.perf_counter() - t

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


def _measure(lf: Any, spec: OutputSpec, saving: _BackgroundSave) -> tuple[Any, float]:
    """The geometry of ``lf`` (octseg.geometry.measure_labels) and when it was done; waits for
    the label file, whose failure is raised after the geometry's own."""
    from octseg.geometry import measure_labels

    try:
        m = measure_labels(lf, settings=spec.geometry, device=spec.settings.geometry_device)
        t_measured = time.perf_counter()
    finally:
        saving.thread.join()
    saving.raise_error()
    return m, t_measured


def write_dicom_seg(seg: Segmented, spec: OutputSpec, written: Written) -> None:
    """``seg.dcm`` for DICOM input (``settings.dicom_seg``), an optional output."""
    pb = seg.pullback
    if not (spec.settings.dicom_seg and pb.format == "dicom"):
        return
    from octseg.core.classes import CLASS_NAMES
    from octseg.io import dicomseg

    path = seg.out_dir / "seg.dcm"
    classes = spec.model_info.get("classes") or CLASS_NAMES
    _, warn = safety.optional_output(
        "DICOM-SEG (seg.dcm)",
        lambda: dicomseg.write_dicom_seg(
            path,
            seg.labels,
            pb.source,
            {c: CLASS_NAMES[c] for c in classes},
            pixel_spacing_mm=pb.pixel_spacing_mm,
            frame_spacing_mm=pb.frame_spacing_mm,
        ),
        [path],
    )
    written.optional(path, warn)


def write_overlays_and_report(
    seg: Segmented, m: Any, spec: OutputSpec, renderer: Renderer, written: Written
) -> None:
    """``overlays/*.png`` and ``report.html`` (``settings.report``), drawn by ``renderer``;
    optional outputs."""
    settings = spec.settings
    jobs = _overlay_jobs(seg, m, spec, written)
    report = _report_args(seg, m, spec) if settings.report else None
    out_dir = seg.out_dir
    rendered, warn = safety.optional_output(
        "overlays and report",
        lambda: renderer.run(
            render_outputs, str(out_dir), jobs or [], settings.overlay_size, report
        ),
        [out_dir / "overlays", out_dir / "report.html"],
    )
    rendered = rendered or {"overlays": [], "report": False, "warnings": [warn]}
    written.warnings += rendered["warnings"]
    written.files += [Path(o["path"]) for o in rendered["overlays"]]
    if rendered["report"]:
        written.files.append(out_dir / "report.html")


def _overlay_jobs(
    seg: Segmented, m: Any, spec: OutputSpec, written: Written
) -> list[dict[str, Any]] | None:
    """The overlays to draw (octseg.report.overlay.overlay_jobs); None, with a warning, when
    choosing them fails."""
    from octseg.report.overlay import overlay_jobs

    jobs, warn = safety.optional_output(
        "overlays",
        lambda: overlay_jobs(
            seg.pullback,
            seg.labels,
            m.frames,
            m.struts,
            m.summary,
            requested=spec.settings.overlay_frames,
            min_struts=getattr(spec.geometry, "min_struts", 3),
        ),
    )
    if warn:
        written.warnings.append(warn)
    return jobs


def _report_args(seg: Segmented, m: Any, spec: OutputSpec) -> dict[str, Any]:
    """The keyword arguments of octseg.report.pullback.write_report (picklable)."""
    info = public_info(seg.pullback.describe(), seg.task, spec.settings.anonymize_ids)
    return dict(
        pullback_id=seg.task.id,
        info=info,
        frames=m.frames,
        struts=m.struts,
        summary=m.summary,
        model=dict(spec.model_info),
        malapposition_threshold_mm=getattr(spec.geometry, "strut_threshold_mm", None),
        postprocess=spec.settings.postprocess,
    )


def write_done(seg: Segmented, spec: OutputSpec, written: Written) -> dict[str, Any]:
    """``done.json`` (written last: the pullback is done) and the manifest's record of it."""
    settings, task, out_dir = spec.settings, seg.task, seg.out_dir
    mf.write_done(
        out_dir,
        written.files,
        {
            "id": task.id,
            **({} if settings.anonymize_ids else {"source": str(task.path)}),
            "input": mf.source_identity(task.path, anonymous=settings.anonymize_ids),
            "fingerprint": spec.fingerprint,
            "n_frames": int(seg.labels.shape[0]),
            "frame_spacing_mm": seg.pullback.frame_spacing_mm,
            "timing": {k: round(v, 4) for k, v in seg.timings.items()},
            **({"warnings": written.warnings} if written.warnings else {}),
        },
    )
    res: dict[str, Any] = {"outputs": [p.relative_to(out_dir).as_posix() for p in written.files]}
    if written.warnings:
        res["warnings"] = written.warnings
    return res
