"""Self-check: evaluate a synthetic cohort's truth against a noisy copy of itself.

``octseg evaluate --self-check DATASET --out OUT`` (or ``python evaluate.py self_check=true
auto=DATASET out=OUT``). For every pullback of ``DATASET`` (the layout ``octseg synth`` writes:
``<id>/truth/frames.csv|struts.csv|summary.json`` and ``<id>/labels.npz``):

- the **manual** side is the truth, written as a core lab would: ``manual_frames.csv`` with one
  row about every 1 mm given by ``position_mm`` (not by frame), ``manual_lesions.csv`` with
  ``start_mm``/``end_mm``, ``manual_struts.csv``, and the true label maps;
- the **automated** side is the truth with noise of known size (scaled by ``noise``): Gaussian
  noise on every per-frame measure, strut positions jittered (sd 0.02 mm) with a few struts
  dropped and a few spurious ones added, malapposition distances jittered and re-thresholded,
  calcium dropped from some lesion end frames (lesion boundaries move), the summary
  recomputed from the noisy tables with :func:`octseg.geometry.summary.summarize` (so calcium scores and
  flags near thresholds flip), and label maps with boundaries moved by one pixel in some frames.

With ``noise=0`` the two sides are identical: every bias is 0, every ICC 1, every Dice 1.
The expected outcome for ``noise=1``: biases near 0 with limits of agreement close to
+-1.96 x the noise sd listed in :data:`FRAME_NOISE`, strut precision/recall near 0.95-0.97.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core.errors import InputError
from octseg.evaluate.inputs import pullback_dirs, read_tables
from octseg.geometry.tables import (
    ANALYTIC_TRUTH,
    FRAME_COLUMNS,
    MANUAL_FRAME_COLUMNS,
    MANUAL_LESION_COLUMNS,
    MANUAL_STRUT_COLUMNS,
    write_csv,
    write_measurements,
)
from octseg.io.labels import load_labels

#: noise sd per frame column at noise = 1: ("abs", sd) additive, ("rel", fraction) multiplicative
FRAME_NOISE: dict[str, tuple[str, float]] = {
    "lumen_area_mm2": ("rel", 0.02),
    "lumen_mean_diameter_mm": ("abs", 0.02),
    "lumen_min_diameter_mm": ("abs", 0.03),
    "lumen_max_diameter_mm": ("abs", 0.03),
    "lumen_eccentricity": ("abs", 0.01),
    "lumen_centroid_x_mm": ("abs", 0.01),
    "lumen_centroid_y_mm": ("abs", 0.01),
    "calcium_arc_deg": ("abs", 4.0),
    "calcium_max_thickness_mm": ("abs", 0.03),
    "calcium_min_depth_mm": ("abs", 0.02),
    "calcium_area_mm2": ("rel", 0.05),
    "stent_area_mm2": ("rel", 0.02),
    "max_malapposition_mm": ("abs", 0.01),
    "malapposition_area_mm2": ("rel", 0.05),
}
STRUT_XY_SD_MM = 0.02
STRUT_DISTANCE_SD_MM = 0.01
STRUT_DROP = 0.03
STRUT_ADD = 0.02
LESION_END_DROP = 0.3
#: measures that may be negative (clamping their noise at 0 would bias them): the centroid
#: coordinates and the malapposition distance (<= 0 when every strut is embedded)
SIGNED_MEASURES = frozenset({"lumen_centroid_x_mm", "lumen_centroid_y_mm", "max_malapposition_mm"})


def _jitter(
    v: Any, kind: str, sd: float, rng: np.random.Generator, nonnegative: bool = True
) -> Any:
    """``v`` with Gaussian noise; clamped at 0 only for measures that cannot be negative."""
    if v is None:
        return None
    x = float(v) * (1 + rng.normal(0, sd)) if kind == "rel" else float(v) + rng.normal(0, sd)
    if math.isnan(x):
        return None
    return max(x, 0.0) if nonnegative else x


def _noisy_frames(
    frames: list[dict[str, Any]],
    lesions: list[dict[str, Any]],
    noise: float,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Frame rows as an automated reading: every measure jittered (:data:`FRAME_NOISE`), and
    calcium missed in some lesion end frames (so lesion boundaries move)."""
    ends = {int(les["start_frame"]) for les in lesions} | {int(les["end_frame"]) for les in lesions}
    return [_noisy_frame(r, int(r["frame"]) in ends, noise, rng) for r in frames]


def _noisy_frame(
    r: dict[str, Any], lesion_end: bool, noise: float, rng: np.random.Generator
) -> dict[str, Any]:
    """One noisy frame row; ``lesion_end``: the frame starts or ends a lesion."""
    row = {k: r.get(k) for k in FRAME_COLUMNS if k in r}
    _jitter_measures(row, noise, rng)
    if row.get("calcium_arc_deg") is not None:
        row["calcium_arc_deg"] = min(row["calcium_arc_deg"], 360.0)
    if lesion_end and rng.random() < LESION_END_DROP * min(noise, 1.0):
        _drop_calcium(row)  # calcium missed in a lesion's end frame
    return row


def _jitter_measures(row: dict[str, Any], noise: float, rng: np.random.Generator) -> None:
    """Add the noise of :data:`FRAME_NOISE` (scaled by ``noise``) to the measures of ``row``."""
    for col, (kind, sd) in FRAME_NOISE.items():
        if col in row and sd * noise > 0:
            row[col] = _jitter(
                row[col], kind, sd * noise, rng, nonnegative=col not in SIGNED_MEASURES
            )


def _drop_calcium(row: dict[str, Any]) -> None:
    for col in FRAME_COLUMNS:
        if col.startswith("calcium_"):
            row[col] = None


def _noisy_struts(
    struts: list[dict[str, Any]], threshold: float, noise: float, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Struts as an automated reading: a few dropped, the others jittered (position, angle,
    distance; malapposition re-thresholded at ``threshold``), a few spurious ones added; sorted
    by frame and angle."""
    out = []
    for r in struts:
        if rng.random() < STRUT_DROP * min(noise, 1.0):
            continue
        out.append(_jittered_strut(r, threshold, noise, rng) if noise > 0 else dict(r))
    if noise > 0 and struts:
        out += _spurious_struts(struts, noise, rng)
    out.sort(key=lambda r: (int(r["frame"]), float(r.get("angle_deg") or 0.0)))
    return out


def _jittered_strut(
    r: dict[str, Any], threshold: float, noise: float, rng: np.random.Generator
) -> dict[str, Any]:
    """A copy of strut ``r`` with its position, angle and distance jittered."""
    row = dict(r)
    for c in ("x_mm", "y_mm"):
        if row.get(c) is not None:
            row[c] = float(row[c]) + rng.normal(0, STRUT_XY_SD_MM * noise)
    if row.get("angle_deg") is not None:
        # the angle moves as much as the position does at the strut's radius
        rad = math.hypot(float(r.get("x_mm") or 0.0), float(r.get("y_mm") or 0.0)) or 1.0
        sd_deg = math.degrees(STRUT_XY_SD_MM * noise / rad)
        row["angle_deg"] = (float(r["angle_deg"]) + rng.normal(0, sd_deg)) % 360.0
    if row.get("distance_mm") is not None:
        row["distance_mm"] = float(row["distance_mm"]) + rng.normal(0, STRUT_DISTANCE_SD_MM * noise)
        row["malapposed"] = row["distance_mm"] > threshold
    return row


def _spurious_struts(
    struts: list[dict[str, Any]], noise: float, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """About :data:`STRUT_ADD` x ``len(struts)`` apposed struts that are not there: each in the
    frame of a random true strut, at its radius and a random angle."""
    n_add = int(rng.binomial(len(struts), STRUT_ADD * min(noise, 1.0)))
    out = []
    for _ in range(n_add):
        src = struts[int(rng.integers(len(struts)))]
        ang = float(rng.uniform(0, 360))
        rad = math.hypot(float(src.get("x_mm") or 1.0), float(src.get("y_mm") or 0.0))
        out.append(
            {
                "frame": src["frame"],
                "angle_deg": ang,
                "x_mm": rad * math.cos(math.radians(ang)),
                "y_mm": rad * math.sin(math.radians(ang)),
                "distance_mm": 0.0,
                "malapposed": False,
            }
        )
    return out


def _noisy_labels(src: Path, dst: Path, noise: float, rng: np.random.Generator) -> None:
    from scipy import ndimage

    from octseg.core.classes import BACKGROUND, LUMEN
    from octseg.io.labels import save_labels

    lf = load_labels(src)
    lab = lf.labels.copy()
    if noise > 0:
        for i in range(lab.shape[0]):
            u = rng.random()
            if u < 0.25 * min(noise, 1.0):  # lumen border one pixel outwards
                grown = ndimage.binary_dilation(lab[i] == LUMEN)
                lab[i][grown & (lab[i] == BACKGROUND)] = LUMEN
            elif u < 0.5 * min(noise, 1.0):  # one pixel inwards
                shrunk = ndimage.binary_erosion(lab[i] == LUMEN, border_value=1)
                lab[i][(lab[i] == LUMEN) & ~shrunk] = BACKGROUND
    lf.labels = lab
    save_labels(dst, lf)


def make_selfcheck_inputs(
    dataset: str | Path, work: str | Path, noise: float = 1.0, seed: int = 0, geometry: Any = None
) -> tuple[Path, Path]:
    """Write ``work/auto`` (noisy) and ``work/manual`` (truth as manual CSVs) from ``dataset``."""
    from octseg.geometry.settings import GeometrySettings

    g = GeometrySettings.from_dict(geometry or {})
    dirs = _truth_dirs(Path(dataset))
    work = Path(work)
    auto_dir, manual_dir = work / "auto", work / "manual"
    for d in (auto_dir, manual_dir):
        if d.exists():
            shutil.rmtree(d)
    rng = np.random.default_rng(seed)
    mf, ml, ms = [], [], []
    for pid, d in dirs.items():
        t, fs = _read_truth(d, pid)
        _write_noisy(auto_dir / pid, t, fs, g, noise, rng)
        if (d / "labels.npz").exists():
            _write_label_maps(d / "labels.npz", auto_dir / pid, manual_dir / pid, noise, rng)
        mf += _manual_frames(pid, t.frames, fs)
        ml += _manual_lesions(pid, t.lesions or [], fs)
        ms += _manual_struts(pid, t.struts or [])
    _write_manual_tables(manual_dir, mf, ml, ms)
    return auto_dir, manual_dir


def _write_label_maps(
    src: Path, auto: Path, manual: Path, noise: float, rng: np.random.Generator
) -> None:
    """A noisy copy of the true label maps on the automated side, the true ones on the manual."""
    _noisy_labels(src, auto / "labels.npz", noise, rng)
    manual.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, manual / "labels.npz")


def _manual_struts(pid: str, struts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manual strut rows: the true struts' :data:`MANUAL_STRUT_COLUMNS`."""
    return [
        {"pullback_id": pid, **{k: s.get(k) for k in MANUAL_STRUT_COLUMNS if k in s}}
        for s in struts
    ]


def _write_manual_tables(
    manual_dir: Path,
    frames: list[dict[str, Any]],
    lesions: list[dict[str, Any]],
    struts: list[dict[str, Any]],
) -> None:
    """``manual_frames.csv`` (by position, no frame column), ``manual_lesions.csv`` and
    ``manual_struts.csv`` of every pullback."""
    manual_dir.mkdir(parents=True, exist_ok=True)
    write_csv(
        manual_dir / "manual_frames.csv", [c for c in MANUAL_FRAME_COLUMNS if c != "frame"], frames
    )
    write_csv(manual_dir / "manual_lesions.csv", MANUAL_LESION_COLUMNS, lesions)
    write_csv(manual_dir / "manual_struts.csv", MANUAL_STRUT_COLUMNS, struts)


def _truth_dirs(dataset: Path) -> dict[str, Path]:
    """Pullback folders of ``dataset`` that hold a truth (``truth/`` or ``frames.csv``)."""
    dirs = pullback_dirs(dataset)
    dirs = {k: d for k, d in dirs.items() if (d / "truth").is_dir() or (d / "frames.csv").exists()}
    if not dirs:
        raise InputError(
            dataset, "self-check needs a synthetic cohort (pullback folders with truth/)"
        )
    return dirs


def _read_truth(d: Path, pid: str) -> tuple[Any, float]:
    """The truth tables of one pullback folder and its frame spacing (mm)."""
    tdir = d / "truth" if (d / "truth").is_dir() else d
    t = read_tables(tdir, pid)
    if t.frames is None:
        raise InputError(tdir, "no frames.csv")
    fs = t.frame_spacing_mm
    if not fs and (d / "labels.npz").exists():
        fs = load_labels(d / "labels.npz").frame_spacing_mm
    if not fs:
        raise InputError(tdir, "frame spacing unknown (no position_mm and no labels.npz)")
    return t, fs


def _write_noisy(
    folder: Path, t: Any, fs: float, g: Any, noise: float, rng: np.random.Generator
) -> None:
    """The automated side of one pullback: noisy frames and struts, the summary recomputed."""
    from octseg.geometry.summary import summarize

    frames = _noisy_frames(t.frames, t.lesions or [], noise, rng)
    struts = _noisy_struts(t.struts or [], g.strut_threshold_mm, noise, rng)
    for r in frames:  # n_struts / n_malapposed follow the noisy struts
        fr = [s for s in struts if int(s["frame"]) == int(r["frame"])]
        if r.get("n_struts") is not None or fr:
            r["n_struts"] = len(fr)
            r["n_malapposed"] = sum(bool(s.get("malapposed")) for s in fr)
    summary = summarize(frames, struts, fs, g)
    summary[ANALYTIC_TRUTH] = True  # exact truth plus noise: no measurement rules made it
    write_measurements(folder, frames, struts, summary)


def _manual_frames(pid: str, frames: list[dict[str, Any]], fs: float) -> list[dict[str, Any]]:
    """Manual frame rows about every 1 mm, given by position (not by frame)."""
    step = max(1, int(round(1.0 / fs)))
    rows = []
    for r in sorted(frames, key=lambda r: r["frame"]):
        if int(r["frame"]) % step == 0:
            row = {k: r.get(k) for k in FRAME_COLUMNS if k not in ("frame",)}
            row["position_mm"] = round(int(r["frame"]) * fs, 4)
            rows.append({"pullback_id": pid, **row})
    return rows


def _manual_lesions(pid: str, lesions: list[dict[str, Any]], fs: float) -> list[dict[str, Any]]:
    """Manual lesion rows with ``start_mm`` / ``end_mm`` instead of frames."""
    return [
        {
            "pullback_id": pid,
            "start_mm": round(les["start_frame"] * fs, 4),
            "end_mm": round(les["end_frame"] * fs, 4),
            **{
                k: les.get(k)
                for k in MANUAL_LESION_COLUMNS
                if k in les and k not in ("start_frame", "end_frame")
            },
        }
        for les in lesions
    ]


def self_check(
    dataset: str | Path,
    out: str | Path,
    noise: float = 1.0,
    settings: dict[str, Any] | None = None,
    seed: int = 0,
) -> Any:
    """Make the noisy inputs under ``out/selfcheck_inputs`` and evaluate them into ``out``."""
    from octseg.evaluate.pipeline import EvaluationSettings, evaluate

    if not noise >= 0:
        raise InputError(None, f"noise must be >= 0, got {noise!r}")
    s = EvaluationSettings.from_dict(settings)
    auto_dir, manual_dir = make_selfcheck_inputs(
        dataset, Path(out) / "selfcheck_inputs", noise=noise, seed=seed, geometry=s.geometry
    )
    s.auto_source = "tables"
    info = {"dataset": str(dataset), "noise": noise, "seed": seed, "inputs": str(auto_dir.parent)}
    return evaluate(auto_dir, manual_dir, out, s, extra={"self_check": info})
