"""Writing synthetic pullbacks and cohorts in the dataset layout of ``docs/dataset.md``.

::

    OUT/dataset.json                     {"name", "description"}
    OUT/synth.json                       how the cohort was made (seed, grid, options, ids)
    OUT/manual_frames.csv                core-lab style truth every 1 mm (MANUAL_FRAME_COLUMNS)
    OUT/manual_lesions.csv               every calcium lesion (MANUAL_LESION_COLUMNS)
    OUT/manual_struts.csv                struts of the 1 mm frames (MANUAL_STRUT_COLUMNS)
    OUT/<id>/image.npz | image.dcm       polar frames, uint8
    OUT/<id>/labels.npz                  label schema v1, polar
    OUT/<id>/params.json                 every parameter (PullbackParams.to_dict)
    OUT/<id>/truth/frames.csv, struts.csv, summary.json
    OUT/<id>/image_cartesian.npz, labels_cartesian.npz   with cartesian=True

Everything is deterministic from the seed; every file is written atomically. Frames are
rendered one at a time and streamed into the image file, so memory stays at about two uint8
copies of the pullback (image and labels).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core import atomic
from octseg.core.errors import InputError
from octseg.datasets.synth.anatomy import Anatomy, FrameGeometry, draw_pullback
from octseg.datasets.synth.params import PRESETS, Grid, PullbackParams
from octseg.datasets.synth.render import PolarGrid, rasterize, render_frame
from octseg.datasets.synth.truth import frame_truth
from octseg.geometry.tables import (
    ANALYTIC_TRUTH,
    MANUAL_FRAME_COLUMNS,
    MANUAL_LESION_COLUMNS,
    MANUAL_STRUT_COLUMNS,
    write_csv,
    write_measurements,
)
from octseg.io.labels import LabelFile, save_labels

GENERATOR_VERSION = 1


def grid_from(preset: str = "default", **overrides: Any) -> Grid:
    if preset not in PRESETS:
        raise InputError(None, f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    values = dict(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    g = Grid(**values)
    try:
        g.validate()
    except ValueError as exc:
        raise InputError(None, f"synthetic grid: {exc}") from None
    return g


def _geometry_settings():
    from octseg.geometry.settings import GeometrySettings

    return GeometrySettings()


# --------------------------------------------------------------------------- npz writing
# --------------------------------------------------------------------------- one pullback
@dataclass
class PullbackResult:
    params: PullbackParams
    frames: list[dict[str, Any]]
    struts: list[dict[str, Any]]
    summary: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)


class PullbackSynth:
    """Geometry, labels, images and truth of one pullback."""

    def __init__(self, params: PullbackParams):
        self.p = params
        self.grid = params.grid
        self.anatomy = Anatomy(params)
        self.pg = PolarGrid(self.grid)
        self._geo: dict[int, FrameGeometry] = {}

    def geometry(self, f: int) -> FrameGeometry:
        if f not in self._geo:
            self._geo[f] = self.anatomy.frame(f)
        return self._geo[f]

    def frame(self, f: int) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 (A, R), labels uint8 (A, R)) of frame ``f``."""
        geo = self.geometry(f)
        ras = rasterize(geo, self.pg)
        rng = np.random.default_rng([self.p.render.seed, f])
        img = render_frame(
            geo,
            ras,
            self.pg,
            self.p.render,
            self.p.lumen.catheter_radius_mm,
            f * self.grid.frame_spacing_mm,
            rng,
        )
        return img, ras.labels

    def iter_frames(self, labels_out: np.ndarray, progress: Any = None) -> Iterator[np.ndarray]:
        """Yield image frames one by one (shape (1, A, R)); labels are stored in labels_out."""
        for f in range(self.grid.n_frames):
            img, lab = self.frame(f)
            labels_out[f] = lab
            if progress is not None:
                progress.update(1)
            yield img[None]

    def truth(self, settings: Any = None) -> tuple[list[dict], list[dict], dict]:
        from octseg.geometry.summary import summarize

        s = settings if settings is not None else _geometry_settings()
        rows, struts = [], []
        reach = self.grid.depth_mm
        for f in range(self.grid.n_frames):
            row, st = frame_truth(
                self.geometry(f),
                self.grid.frame_spacing_mm,
                reach,
                s.strut_threshold_mm,
                s.tcfa_cap_um,
                s.tcfa_arc_deg,
                self.grid.pixel_spacing_mm,
            )
            rows.append(row)
            struts.extend(st)
        summary = summarize(rows, struts, self.grid.frame_spacing_mm, s)
        return rows, struts, summary


def cartesian_size(grid: Grid, size: int | None = None) -> int:
    return int(size) if size else int(min(1024, 2 * grid.n_samples))


def write_pullback(
    params: PullbackParams,
    out_dir: Path,
    *,
    image_format: str = "npz",
    cartesian: bool = False,
    cart_size: int | None = None,
    frame_progress: Any = None,
) -> PullbackResult:
    """Render one pullback into ``out_dir``: image (``image_format`` npz or dicom), labels,
    parameters, true measurements and, with ``cartesian``, the scan-converted copies."""
    g = params.grid
    synth = PullbackSynth(params)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = np.zeros((g.n_frames, g.n_alines, g.n_samples), np.uint8)
    paths: dict[str, Path] = {}
    paths["image"], images = _write_image(out_dir, synth, labels, image_format, frame_progress)
    paths["labels"] = out_dir / "labels.npz"
    save_labels(
        paths["labels"],
        LabelFile(labels, "polar", g.pixel_spacing_mm, g.frame_spacing_mm),
    )
    paths["params"] = out_dir / "params.json"
    atomic.write_json(paths["params"], params.to_dict())

    rows, struts, summary = synth.truth()
    summary = {**summary, ANALYTIC_TRUTH: True}  # exact values, not measured by any rules
    paths.update(
        {
            f"truth_{k}": v
            for k, v in write_measurements(out_dir / "truth", rows, struts, summary).items()
        }
    )

    if cartesian:
        paths.update(_write_cartesian(out_dir, params, labels, images, cart_size))
    return PullbackResult(params, rows, struts, summary, paths)


def _write_image(
    out_dir: Path, synth: PullbackSynth, labels: np.ndarray, image_format: str, frame_progress
) -> tuple[Path, np.ndarray | None]:
    """Render the frames (filling ``labels``) into ``image.npz`` (streamed) or ``image.dcm``;
    returns the path and, for DICOM, the frames (the Cartesian copies reuse them)."""
    g = synth.p.grid
    frames = synth.iter_frames(labels, frame_progress)
    if image_format == "npz":
        path = out_dir / "image.npz"
        common = {
            "space": np.array("polar"),
            "pixel_spacing_mm": np.float64(g.pixel_spacing_mm),
            "frame_spacing_mm": np.float64(g.frame_spacing_mm),
        }
        atomic.save_npz_streamed(path, common, "frames", labels.shape, frames)
        return path, None
    if image_format == "dicom":
        from octseg.io.dicom_write import write_ivoct_dicom

        images = np.concatenate(list(frames), axis=0)
        path = out_dir / "image.dcm"
        write_ivoct_dicom(
            path,
            images,
            space="polar",
            pixel_spacing_mm=g.pixel_spacing_mm,
            frame_spacing_mm=g.frame_spacing_mm,
        )
        return path, images
    raise InputError(None, f"unknown image format {image_format!r} (npz or dicom)")


def _write_cartesian(out_dir, params, labels, images, cart_size) -> dict[str, Path]:
    import torch

    from octseg.core.polar import polar_to_cartesian

    g = params.grid
    size = cartesian_size(g, cart_size)
    cs = g.depth_mm / (size / 2.0)
    center = ((size - 1) / 2.0, (size - 1) / 2.0)
    if images is None:
        with np.load(out_dir / "image.npz") as z:
            images = z["frames"]

    def conv(chunk: np.ndarray, mode: str) -> np.ndarray:
        t = torch.from_numpy(chunk.astype(np.float32) if mode == "bilinear" else chunk)
        out = polar_to_cartesian(
            t,
            out_size=(size, size),
            polar_spacing_mm=g.pixel_spacing_mm,
            cart_spacing_mm=cs,
            center=center,
            mode=mode,
        )
        if mode == "bilinear":
            return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)
        return out.numpy().astype(np.uint8)

    step = 8
    small = {
        "space": np.array("cartesian"),
        "pixel_spacing_mm": np.float64(cs),
        "frame_spacing_mm": np.float64(g.frame_spacing_mm),
        "catheter_center": np.asarray(center, dtype=np.float64),
    }
    shape = (g.n_frames, size, size)
    p_img = out_dir / "image_cartesian.npz"
    atomic.save_npz_streamed(
        p_img,
        small,
        "frames",
        shape,
        (conv(images[i : i + step], "bilinear") for i in range(0, g.n_frames, step)),
    )
    lab_c = np.concatenate(
        [conv(labels[i : i + step], "nearest") for i in range(0, g.n_frames, step)], axis=0
    )
    p_lab = out_dir / "labels_cartesian.npz"
    save_labels(
        p_lab,
        LabelFile(lab_c, "cartesian", cs, g.frame_spacing_mm, catheter_center=center),
    )
    return {"image_cartesian": p_img, "labels_cartesian": p_lab}


# --------------------------------------------------------------------------- cohort
@dataclass
class CohortResult:
    root: Path
    pullbacks: list[PullbackResult]
    manual: dict[str, Path]


def cohort_spec(
    n: int,
    seed: int,
    grid: Grid,
    image_format: str,
    cartesian: bool,
    cart_size: int | None,
    lipid: bool = False,
) -> dict[str, Any]:
    """``synth.json``; ``"lipid": true`` only in cohorts made with lipid, so the specs of cohorts
    without it are as before the option existed."""
    from dataclasses import asdict

    spec = {
        "generator": "octseg synth",
        "generator_version": GENERATOR_VERSION,
        "n": int(n),
        "seed": int(seed),
        "grid": asdict(grid),
        "image_format": image_format,
        "cartesian": bool(cartesian),
        "cartesian_size": cartesian_size(grid, cart_size) if cartesian else None,
        "ids": [f"synth-{i:03d}" for i in range(n)],
    }
    if lipid:
        spec["lipid"] = True
    return spec


def manual_every(frame_spacing_mm: float, every_mm: float = 1.0) -> int:
    return max(1, int(round(every_mm / frame_spacing_mm)))


def generate_cohort(
    out: str | Path,
    n: int,
    seed: int = 0,
    grid: Grid | None = None,
    *,
    image_format: str = "npz",
    cartesian: bool = False,
    cart_size: int | None = None,
    lipid: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> CohortResult:
    """Generate ``n`` pullbacks into ``out`` (the dataset layout) and the manual tables;
    ``lipid`` gives every pullback a lipid lesion (off by default)."""
    from tqdm.auto import tqdm

    if n < 1:
        raise InputError(None, f"--n must be >= 1, got {n}")
    grid = grid or grid_from("default")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(
        root / "dataset.json",
        {
            "name": "octseg synthetic IVOCT cohort",
            "description": (
                f"{n} synthetic pullbacks (seed {seed}) with exact ground truth, made by "
                "`octseg synth`; see docs/synth.md"
            ),
        },
    )
    results: list[PullbackResult] = []
    bar = tqdm(range(n), desc="synth pullbacks", unit="pullback", disable=not progress)
    for i in bar:
        pid = f"synth-{i:03d}"
        bar.set_postfix_str(pid)
        params = draw_pullback(grid, seed, i, pid, lipid=lipid)
        res = write_pullback(
            params,
            root / pid,
            image_format=image_format,
            cartesian=cartesian,
            cart_size=cart_size,
        )
        results.append(res)
    manual = write_manual_tables(root, results, grid.frame_spacing_mm)
    atomic.write_json(
        root / "synth.json",
        cohort_spec(n, seed, grid, image_format, cartesian, cart_size, lipid),
    )
    if log:
        log(describe_cohort(root, results))
    return CohortResult(root, results, manual)


def write_manual_tables(
    root: Path, results: list[PullbackResult], frame_spacing_mm: float
) -> dict[str, Path]:
    every = manual_every(frame_spacing_mm)
    frames, lesions, struts = [], [], []
    for res in results:
        pid = res.params.pullback_id
        keep = {r["frame"] for r in res.frames if r["frame"] % every == 0}
        frames += [{"pullback_id": pid, **r} for r in res.frames if r["frame"] in keep]
        struts += [{"pullback_id": pid, **s} for s in res.struts if s["frame"] in keep]
        for les in res.summary["calcium_lesions"]:
            row = {
                "pullback_id": pid,
                "start_mm": les["start_frame"] * frame_spacing_mm,
                "end_mm": les["end_frame"] * frame_spacing_mm,
            }
            lesions.append({k: row[k] if k in row else les[k] for k in MANUAL_LESION_COLUMNS})
    paths = {
        "frames": root / "manual_frames.csv",
        "lesions": root / "manual_lesions.csv",
        "struts": root / "manual_struts.csv",
    }
    write_csv(paths["frames"], MANUAL_FRAME_COLUMNS, frames)
    write_csv(paths["lesions"], MANUAL_LESION_COLUMNS, lesions)
    write_csv(paths["struts"], MANUAL_STRUT_COLUMNS, struts)
    return paths


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def describe_cohort(root: Path, results: list[PullbackResult]) -> str:
    """A plain-text table of what was made."""
    lines = [f"synthetic cohort in {root} ({len(results)} pullbacks)"]
    hdr = (
        f"{'pullback':<10} {'frames':>6} {'MLA mm2':>8}  {'calcium lesions (kind score arc len)':<44}"
        f" {'stent frames':>13} {'MSA':>5} {'exp':>5} {'malapp':>7}"
    )
    lines.append(hdr)
    for res in results:
        s = res.summary
        les = ", ".join(
            f"{x['kind']} {x['calcium_score']} {_fmt(x['max_arc_deg'], 0)}deg "
            f"{_fmt(x['length_mm'])}mm"
            for x in s["calcium_lesions"]
        )
        st = s.get("stent")
        if st:
            st_txt = (
                f"{st['start_frame']:>6}-{st['end_frame']:<6} {_fmt(st['msa_mm2']):>5} "
                f"{_fmt(st['expansion'], 2):>5} {st['n_malapposed']:>3}/{st['n_struts']:<4}"
            )
        else:
            st_txt = "none"
        lines.append(
            f"{res.params.pullback_id:<10} {res.params.grid.n_frames:>6} "
            f"{_fmt(s['lumen']['mla_mm2'], 2):>8}  {les:<44} {st_txt}"
        )
        lines += [_describe_lipid(x) for x in s.get("lipid_lesions") or []]
    lines.append(
        f"files: {root}/<id>/image.npz|image.dcm, labels.npz, params.json, truth/; "
        f"{root}/manual_frames.csv, manual_lesions.csv, manual_struts.csv"
    )
    return "\n".join(lines)


def _describe_lipid(x: dict[str, Any]) -> str:
    return (
        f"{'':<10} lipid frames {x['start_frame']}-{x['end_frame']}, max arc "
        f"{_fmt(x['max_lipid_arc_deg'], 0)} deg, min cap {_fmt(x['min_cap_thickness_um'], 0)} um, "
        f"TCFA frames {x['n_tcfa_frames']}"
    )


def load_spec(root: str | Path) -> dict[str, Any] | None:
    p = Path(root) / "synth.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ensure_cohort(
    out: str | Path,
    n: int,
    seed: int = 0,
    preset: str = "small",
    *,
    lipid: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> Path:
    """The cohort in ``out``: reused when ``out/synth.json`` says it was made with the same
    settings and every pullback's truth exists, otherwise (re)generated from scratch."""
    import shutil

    root = Path(out)
    grid = grid_from(preset)
    want = cohort_spec(n, seed, grid, "npz", False, None, lipid)
    if load_spec(root) == want and all(
        (root / pid / "truth" / "summary.json").is_file() for pid in want["ids"]
    ):
        if log:
            log(f"reusing the synthetic cohort in {root} ({n} pullbacks, seed {seed})")
        return root
    if root.exists() and any(root.iterdir()):
        if load_spec(root) is None:
            raise InputError(
                root,
                "exists and is not an octseg synthetic cohort (no synth.json): "
                "refusing to overwrite it; choose another output folder",
            )
        shutil.rmtree(root)  # an older synthetic cohort made with other settings
    if log:
        log(f"generating {n} synthetic pullbacks (preset {preset}, seed {seed}) into {root}")
    generate_cohort(root, n, seed, grid, lipid=lipid, progress=progress, log=log)
    return root
