"""Hybrid pullbacks: calcium lesions and stents drawn over runs of real polar frames.

The lesions, distractors and stent of a pullback are drawn by :mod:`octseg.datasets.hybrid.draw`
(with a :class:`~octseg.datasets.hybrid.draw.LesionMix` for training builds); this module
inserts them frame by frame, writes the pullbacks and their truth, and builds datasets.

The guidewire shadow of every real frame is **detected**
(:func:`octseg.datasets.hybrid.insert.guidewire_sector`): calcium arcs are trimmed to the largest part
that keeps 3 degrees away from it and struts inside it are left out (a real strut there would be
invisible). The detected sector is **labelled class 4** from the lumen border outward, following
the synthetic generator's convention (class 4 = guidewire + its shadow sector, docs/metrics.md),
so real-derived hybrid targets and synthetic targets agree: the geometry then masks those rays and
interpolates the lumen contour across the shadow, as for synthetic frames. (The real guidewire in
front of the shadow stays labelled lumen: its exact position is not detected; rays whose lumen
border touches class 4 are masked either way, so the lumen measurement is the same.) True values (``truth/frames.csv``, ``struts.csv``, ``summary.json``) are computed from
the parameters actually used and the real lumen contour.

``python -m octseg.datasets.hybrid.cohort build REAL_DATASET OUT [--synthetic SYNTH_DATASET]`` writes
``OUT/train`` and ``OUT/val`` (the hybrid versions of the real training and held-out blocks named
in ``REAL_DATASET/split.json``; synthetic pullbacks are linked into ``OUT/train``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core import atomic
from octseg.core.classes import BACKGROUND, GUIDEWIRE, LUMEN
from octseg.core.errors import InputError
from octseg.datasets.hybrid.bins import (
    arc_bins,
    extent_bins,
    field_bins,
    forbidden_bins,
    lumen_beyond_bins,
    trim_arc,
    trim_sector,
    union_bins,
)
from octseg.datasets.hybrid.distractors import (
    LipidSpec,
    VasaChannel,
    branch_sector_deg,
    draw_vasa,
    insert_branch,
    insert_lipid,
    insert_media_band,
    insert_vasa,
    lipid_columns,
)
from octseg.datasets.hybrid.draw import (
    DEFAULT_MIX,
    THICK_THICKNESS_MM,
    CalciumLesion,
    LesionMix,
    LipidLesion,
    SideBranch,
    Stent,
    add_media,
    draw_distractors,
    draw_lesions,
    draw_stent,
    lipid_spec,
    make_deep,
    make_far_wall,
    make_nodules,
    make_past_field,
    make_thick,
    malappose,
    place_stent,
)
from octseg.datasets.hybrid.insert import (
    CalciumSpec,
    LumenGeometry,
    calcium_margin,
    dilate_periodic,
    guidewire_sector,
    insert_calcium,
    insert_strut,
    lumen_geometry,
    strut_row,
)
from octseg.datasets.hybrid.render import side_by_side
from octseg.datasets.hybrid.truth import shape_calcium_columns, union_margin
from octseg.geometry.tables import ANALYTIC_TRUTH, FRAME_COLUMNS, write_measurements
from octseg.io.labels import LabelFile, load_labels, save_labels


def label_guidewire(labels: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """Polar labels ``(A, R)`` with class 4 on the ``shadow`` A-lines from the end of the lumen run
    (classes 1 and 3 from the catheter) to the far end: the synthetic generator's convention."""
    lab = labels.copy()
    lum = np.isin(lab, (1, 3))
    r = lab.shape[1]
    k = np.where(lum.all(axis=1), r, np.argmin(lum, axis=1))
    cols = np.arange(r)[None, :]
    lab[shadow[:, None] & (cols >= k[:, None])] = GUIDEWIRE
    return lab


def real_lumen_columns(labels: np.ndarray, ps: float, frame_spacing_mm: float) -> list[dict]:
    """The lumen columns of ``frames.csv`` for real polar label frames ``(F, A, R)``, measured
    by the product's geometry (:func:`octseg.geometry.measure_frames`)."""
    from octseg.geometry import measure_frames

    m = measure_frames(
        labels, space="polar", pixel_spacing_mm=ps, frame_spacing_mm=frame_spacing_mm
    )
    return [{k: v for k, v in r.items() if k.startswith("lumen_")} for r in m.frames]


def make_hybrid(
    images: np.ndarray,
    labels: np.ndarray,
    ps: float,
    lesions: list[CalciumLesion],
    stent: Stent | None,
    rng: np.random.Generator,
    *,
    frame_spacing_mm: float,
    lipids: list[LipidLesion] | None = None,
    branches: list[SideBranch] | None = None,
    vasa: list[VasaChannel] | None = None,
    threshold_mm: float = 0.09,
    avoid_guidewire: bool = True,
    label_margin_alines: int = 1,
    record: list[dict] | None = None,
    progress: bool = False,
    calcium_look: str = "fade",
) -> tuple[np.ndarray, np.ndarray, list[dict], list[dict]]:
    """Insert calcium lesions, lipid, vasa vasorum, side branches and a stent into real polar
    frames ``(F, A, R)`` (grey in [0, 1]).

    With ``avoid_guidewire`` the detected guidewire shadow (widened by ``label_margin_alines``
    A-lines) is labelled class 4 from the lumen border outward, and inserts keep 4 more A-lines
    (and 3 degrees) away from it. Returns new images (float32), labels, and the true
    ``frames.csv`` / ``struts.csv`` rows (the lumen columns: the label frame before the stent
    and class 4 measured by octseg.geometry, i.e. the real lumen, or the lumen a nodule dented).
    ``record`` (if given) receives one dict per frame naming what was inserted.
    ``calcium_look``: one of :data:`CALCIUM_LOOKS` ("fade", the default since session 63: the
    calcium's level falls with depth as the real tissue's does,
    :func:`octseg.datasets.hybrid.insert.depth_fade`; "flat": the builds of sessions 1-62).
    """
    from tqdm import tqdm

    if calcium_look not in CALCIUM_LOOKS:
        raise ValueError(f"calcium_look must be one of {CALCIUM_LOOKS}, got {calcium_look!r}")
    out_img = np.empty_like(images, dtype=np.float32)
    out_lab = labels.copy()
    real_lumen = real_lumen_columns(labels, ps, frame_spacing_mm)
    frame_rows: list[dict] = []
    strut_rows: list[dict] = []
    plan = _Plan(
        lesions,
        lipids or [],
        branches or [],
        stent,
        threshold_mm,
        frame_spacing_mm,
        vasa or [],
        calcium_look == "fade",
    )
    for f in tqdm(range(images.shape[0]), desc="hybrid frames", disable=not progress):
        img, lab = images[f].astype(np.float32), labels[f]
        g = lumen_geometry(lab, ps)
        shadow, forbidden = _guidewire_guard(img, lab, g, ps, avoid_guidewire, label_margin_alines)
        forbidden |= lumen_beyond_bins(lab, g)
        row: dict[str, Any] = {"frame": f, "position_mm": f * frame_spacing_mm}
        row.update(real_lumen[f])
        img, lab, struts, rec = _hybrid_frame(img, lab, g, f, forbidden, plan, row, rng)
        strut_rows += struts
        if shadow.any():  # class 4 behind the lumen border on the shadow's A-lines
            lab = label_guidewire(lab, shadow)
        frame_rows.append({k: v for k, v in row.items() if k in FRAME_COLUMNS})
        if record is not None:
            record.append(rec)
        out_img[f] = img
        out_lab[f] = lab
    return out_img, out_lab, frame_rows, strut_rows


@dataclass
class _Plan:
    """What a hybrid pullback gets, frame by frame."""

    lesions: list[CalciumLesion]
    lipids: list[LipidLesion]
    branches: list[SideBranch]
    stent: Stent | None
    threshold_mm: float
    frame_spacing_mm: float
    vasa: list[VasaChannel]
    fade: bool  # calcium fades with depth (make_hybrid's calcium_look)


def _hybrid_frame(img, lab, g, f, forbidden, plan: _Plan, row: dict, rng) -> tuple:
    """Calcium, then lipid, vasa vasorum, side branches and struts into one frame (struts keep
    off nodules, lipid and branches); truth columns into ``row``. Returns (image, labels, strut
    rows, record)."""
    ps, fs = g.ps, plan.frame_spacing_mm
    img, lab, ca = _insert_calcium_all(
        img, lab, g, plan.lesions, f, forbidden, ps, rng, fade=plan.fade
    )
    no_strut = forbidden.copy()
    if ca:
        g, cols = _calcium_truth(lab, g, ca, ps, fs, img.shape[1])
        row.update(cols)
        no_strut |= union_bins([arc_bins(s.center_deg, s.arc_deg, 5) for s in ca if s.bulge_mm])
    img, lab, lp = _insert_lipid(img, lab, g, plan.lipids, f, forbidden, ps)
    if lp is not None:
        row.update(lipid_columns(lp))
        row["tcfa"] = int(_is_tcfa(lp))
        no_strut |= arc_bins(lp.center_deg, lp.arc_deg, 5)
    img, n_vasa = _insert_vasa(img, lab, g, plan.vasa, f, forbidden)
    img, br, branch_bins = _insert_branches(img, lab, g, plan.branches, f, forbidden, rng)
    img, lab, struts = _stent_frame(img, lab, g, f, no_strut | branch_bins, plan, row, rng)
    return img, lab, struts, _frame_record(f, ca, lp, br, n_vasa)


def _insert_vasa(img, lab, g, vasa: list[VasaChannel], f: int, forbidden) -> tuple:
    """The vasa vasorum present at frame ``f`` off the guidewire, inside the field and clear of
    every other label: (image, how many were placed)."""
    field = (img.shape[1] - 1) * g.ps
    placed = 0
    for ch in vasa:
        spec = ch.at(f)
        if spec is None or forbidden[int(spec.center_deg * 2) % 720]:
            continue
        reach = spec.depth_mm + spec.radius_mm + spec.clear_mm
        if float(g.rho(math.radians(spec.center_deg))) + reach > field:
            continue
        img, ok = insert_vasa(img, lab, g, spec)
        placed += ok
    return img, placed


def _insert_branches(img, lab, g, branches, f, forbidden, rng) -> tuple:
    """The side branches present at frame ``f`` whose centre is off the guidewire: (image,
    their specs, the bins struts keep off: each branch's sector widened by 3 degrees)."""
    br = [b.at(f) for b in branches if b.at(f) is not None]
    br = [b for b in br if not forbidden[int(b.center_deg * 2) % 720]]
    bins = np.zeros(720, dtype=bool)
    for b in br:
        img = insert_branch(img, lab, g, b, rng)
        bins |= arc_bins(*branch_sector_deg(g, b), 3)
    return img, br, bins


def _stent_frame(img, lab, g, f, no_strut, plan: _Plan, row: dict, rng) -> tuple:
    """The stent's struts at frame ``f`` (off the ``no_strut`` bins), their truth columns into
    ``row``; returns (image, labels, strut rows)."""
    from octseg.datasets.hybrid.insert import stent_columns

    st, thr = plan.stent, plan.threshold_mm
    if st is None or not st.start <= f < st.stop:
        return img, lab, []
    img, lab, rows = _insert_stent(img, lab, g, st.struts(f, rng), no_strut, g.ps, rng)
    pts = np.array([p for p, _, _ in rows]).reshape(-1, 2)
    row.update(stent_columns(g, pts, np.array([d for _, d, _ in rows]), thr))
    return img, lab, [strut_row(f, g, p, d, thr) for p, d, _ in rows]


def _frame_record(
    f: int, ca: list[CalciumSpec], lp: LipidSpec | None, br: list, vasa: int = 0
) -> dict:
    return {
        "frame": f,
        "calcium": len(ca),
        "nodule": sum(s.bulge_mm > 0 for s in ca),
        "deep": sum(s.depth_mm >= 0.4 for s in ca),
        "lipid": lp is not None,
        "branch": len(br),
        "vasa": vasa,
    }


def _is_tcfa(spec: LipidSpec) -> bool:
    from octseg.geometry.settings import GeometrySettings

    s = GeometrySettings()
    return spec.cap_min_um < s.tcfa_cap_um and spec.arc_deg > s.tcfa_arc_deg


def _calcium_truth(lab, g0, specs, ps, fs, n_samples) -> tuple[LumenGeometry, dict]:
    """The frame's lumen after the calcium (a nodule dents it: the label frame re-measured)
    and the true calcium columns of the continuous shapes (placed about ``g0``) about that
    lumen (:func:`octseg.datasets.hybrid.truth.shape_calcium_columns`)."""
    g = g0
    cols: dict[str, Any] = {}
    if any(s.bulge_mm > 0 for s in specs):
        g = lumen_geometry(lab, ps)
        cols.update(real_lumen_columns(lab[None], ps, fs)[0])
    margin = union_margin([partial(_shape_margin, g0, s) for s in specs])
    cols.update(shape_calcium_columns(g, margin, (n_samples - 0.5) * ps, step_mm=ps / 2))
    return g, cols


def _shape_margin(g: LumenGeometry, spec: CalciumSpec, y: np.ndarray, x: np.ndarray):
    return calcium_margin(g, spec, y, x)[0]


def _guidewire_guard(img, lab, g, ps, avoid: bool, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """The guidewire shadow's A-lines (labelled class 4 later) and the 0.5-degree bins inserts
    keep away from (the shadow widened to 4 A-lines)."""
    forbidden = np.zeros(720, dtype=bool)
    shadow = np.zeros(img.shape[0], dtype=bool)
    if avoid:
        shadow = guidewire_sector(img, lab, ps, margin_alines=margin)
        widened = dilate_periodic(shadow, max(0, 4 - margin))
        forbidden = forbidden_bins(widened, g)
    return shadow, forbidden


CALCIUM_LOOKS = ("flat", "fade")  # make_hybrid's calcium_look
MIN_NODULE_RADIUS_MM = 0.6  # nodule surface to catheter centre (sheath: 0.45 mm)


def _insert_calcium_all(img, lab, g, lesions, f, forbidden, ps, rng, fade: bool) -> tuple:
    """Every lesion present at frame ``f``, trimmed off the guidewire, the field's edge and the
    lesions already inserted (10 degrees apart), all placed about the frame's real lumen ``g``;
    returns (image, labels, the specs inserted)."""
    taken = forbidden.copy()
    field = (img.shape[1] - 1) * ps
    done: list[CalciumSpec] = []
    for les in lesions:
        spec = les.at(f)
        if spec is None:
            continue
        spec = trim_arc(spec, taken | field_bins(g, spec, field, past_field=les.past_field))
        if spec is None or (spec.bulge_mm > 0 and not _nodule_fits(g, spec)):
            continue
        before = lab
        img, lab = insert_calcium(img, lab, g, spec, rng, fade=fade)
        if les.media is not None:  # the lesion's own pixels: new calcium only
            img = insert_media_band(
                img, lab, (lab != before) & (before == BACKGROUND), les.media, ps
            )
        done.append(spec)
        taken |= arc_bins(spec.center_deg, spec.arc_deg, 10.0)
    return img, lab, done


def _nodule_fits(g: LumenGeometry, spec: CalciumSpec) -> bool:
    """The nodule's top stays clear of the catheter and sheath."""
    phi = math.radians(spec.center_deg) + np.linspace(-1, 1, 61) * math.radians(spec.arc_deg) / 2
    r = g.rho(phi) - spec.bulge_mm
    y = g.centroid[0] + r * np.sin(phi)
    x = g.centroid[1] + r * np.cos(phi)
    return bool(np.hypot(y, x).min() > MIN_NODULE_RADIUS_MM)


def _insert_lipid(img, lab, g, lipids, f, forbidden, ps) -> tuple:
    """The first lipid lesion present at frame ``f``, trimmed off the guidewire and the field's
    edge (the thinnest cap kept inside the trimmed arc); (image, labels, spec or None)."""
    field = (img.shape[1] - 1) * ps
    for les in lipids:
        spec = les.at(f)
        if spec is None:
            continue
        extent = spec.cap_max_um / 1000 + spec.core_thickness_mm
        t = trim_sector(
            spec.center_deg, spec.arc_deg, forbidden | extent_bins(g, extent, field), 20.0
        )
        if t is None:
            continue
        if t != (spec.center_deg, spec.arc_deg):
            spec = lipid_spec(les, t[0], t[1], spec.cap_min_um, spec.core_thickness_mm)
        img, lab = insert_lipid(img, lab, g, spec)
        return img, lab, spec
    return img, lab, None


def _insert_stent(img, lab, g, struts, forbidden, ps, rng) -> tuple[np.ndarray, np.ndarray, list]:
    """Struts inserted away from the guidewire, the catheter sheath and beyond the field:
    ``(image, labels, [(point, distance_mm, strut), ...])``."""
    rows = []
    for s in struts:
        if forbidden[int(s.angle_deg * 2) % 720]:
            continue
        pt = g.point(math.radians(s.angle_deg), float(g.rho(math.radians(s.angle_deg))))
        if np.hypot(*pt) < 0.75 or np.hypot(*pt) > img.shape[1] * ps - 0.5:
            continue  # at the catheter sheath, or a side branch beyond the field
        img, lab, p = insert_strut(img, lab, g, s, rng)
        rows.append((p, s.distance_mm, s))
    return img, lab, rows


def write_pullback(
    out_dir: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    ps: float,
    fs: float,
    frame_rows: list[dict],
    strut_rows: list[dict],
    params: dict[str, Any],
    settings: Any = None,
) -> None:
    """One hybrid pullback in the dataset layout, with ``truth/`` tables and ``params.json``."""
    from octseg.geometry.summary import summarize

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(
        d / "image.npz",
        frames=np.clip(np.rint(images * 255), 0, 255).astype(np.uint8),
        space=np.array("polar"),
        pixel_spacing_mm=np.float64(ps),
        frame_spacing_mm=np.float64(fs),
    )
    save_labels(
        d / "labels.npz",
        LabelFile(labels=labels, space="polar", pixel_spacing_mm=ps, frame_spacing_mm=fs),
    )
    atomic.write_json(d / "spacing.json", {"pixel_spacing_mm": ps, "frame_spacing_mm": fs})
    summary = summarize(frame_rows, strut_rows, fs, settings)
    summary[ANALYTIC_TRUTH] = True  # from the inserted shapes, not measured on the labels
    write_measurements(d / "truth", frame_rows, strut_rows, summary)
    atomic.write_json(d / "params.json", params)


def hybrid_from_real(
    real_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    *,
    threshold_mm: float = 0.09,
    progress: bool = False,
    mix: LesionMix = DEFAULT_MIX,
    calcium_look: str = "fade",
) -> dict[str, Any]:
    """Read one real pseudo-pullback folder, draw lesions and a stent, write the hybrid
    (``mix``: :class:`LesionMix`; ``calcium_look``: :func:`make_hybrid`'s)."""
    from octseg.io import read_pullback

    real_dir = Path(real_dir)
    pb = read_pullback(real_dir / "image.npz")
    lf = load_labels(real_dir / "labels.npz")
    if pb.space != "polar" or lf.space != "polar":
        raise InputError(real_dir, "hybrid pullbacks need polar images and labels")
    if lf.n_frames != pb.n_frames or not np.array_equal(lf.frames, np.arange(pb.n_frames)):
        raise InputError(real_dir, "hybrid pullbacks need dense labels (every frame labelled)")
    _check_lumen_only(real_dir / "labels.npz", lf.labels)
    rng = np.random.default_rng(seed)
    images = pb.read()
    lesions = draw_lesions(rng, pb.n_frames, mix=mix)
    make_deep(lesions, seed, mix.deep_share)
    make_nodules(lesions, seed, mix.nodule_share)
    make_thick(lesions, seed, mix.thick_share)
    add_media(lesions, seed, mix.media_share)
    make_past_field(lesions, seed, mix.past_field_share)
    make_far_wall(
        lesions,
        seed,
        mix.far_wall_share,
        lf.labels,
        pb.pixel_spacing_mm,
        mix.far_wall_nodule_share,
    )
    vasa = draw_vasa(seed, pb.n_frames, mix.vasa_share)
    stent = draw_stent(rng, pb.n_frames)
    lipids, branches = draw_distractors(rng, pb.n_frames, lesions)
    stent = place_stent(stent, lesions, seed, pb.n_frames, mix.stent_share)
    stent = malappose(stent, seed, mix.malapposition_share)
    record: list[dict] = []
    img, lab, rows, struts = make_hybrid(
        images,
        lf.labels,
        pb.pixel_spacing_mm,
        lesions,
        stent,
        rng,
        frame_spacing_mm=pb.frame_spacing_mm,
        lipids=lipids,
        branches=branches,
        vasa=vasa,
        threshold_mm=threshold_mm,
        record=record,
        progress=progress,
        calcium_look=calcium_look,
    )
    params = {
        "source": real_dir.name,
        "seed": seed,
        **asdict(mix),
        "calcium_look": calcium_look,
        "guidewire": (
            "detected per frame and labelled class 4 from the lumen border outward; calcium "
            "trimmed and struts dropped near it"
        ),
        "side_branches": (
            "image only: the branch stays background and the lumen is closed across its "
            "ostium (the expert's convention on the real pullback)"
        ),
        "lesions": [asdict(x) for x in lesions],
        "lipid_lesions": [asdict(x) for x in lipids],
        "branches": [asdict(x) for x in branches],
        "vasa_vasorum": [asdict(x) for x in vasa],
        "stent": asdict(stent) if stent is not None else None,
        "frames": record,
    }
    write_pullback(
        out_dir, img, lab, pb.pixel_spacing_mm, pb.frame_spacing_mm, rows, struts, params
    )
    return params


def _check_lumen_only(path: Path, labels: np.ndarray) -> None:
    """Real labels must hold only background and lumen: inserts relabel background only and the
    truth knows only what was inserted, so real fibrous cap / lipid labels (a dataset built with
    ``--plaque``) would give calcium with holes and plaque truth that misses them."""
    other = sorted(set(np.unique(labels).tolist()) - {BACKGROUND, LUMEN})
    if other:
        raise InputError(
            path,
            f"holds label classes {other} besides background and lumen (built with --plaque?); "
            "build the real dataset for hybrids without --plaque",
        )


def build_hybrid_dataset(
    real_root: str | Path,
    out: str | Path,
    *,
    variants: int = 3,
    val_variants: int | None = None,
    synthetic: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    mix: LesionMix = DEFAULT_MIX,
    calcium_look: str = "fade",
) -> dict[str, list[str]]:
    """Hybrid versions of every block of a real dataset (``split.json`` of
    :mod:`octseg.datasets.danilov.build`) into ``out/train`` and ``out/val``; synthetic pullbacks
    linked in. ``mix`` (:class:`LesionMix`): hard lesions drawn more often in the *training*
    hybrids; the val hybrids keep the default draw, like every test set. ``calcium_look``
    (:func:`make_hybrid`'s) is the look of both parts."""
    from tqdm import tqdm

    real_root, out = Path(real_root), Path(out)
    split_path = real_root / "split.json"
    if not split_path.exists():
        raise InputError(
            split_path, "no split.json (build the real dataset with octseg.datasets.danilov.build)"
        )
    split = json.loads(split_path.read_text())
    made: dict[str, list[str]] = {"train": [], "val": []}
    jobs = []
    for part, n in (("train", variants), ("val", val_variants or variants)):
        for bid in split.get(part, []):
            for v in range(n):
                jobs.append((part, bid, v))
    for i, (part, bid, v) in enumerate(tqdm(jobs, desc="hybrid pullbacks", disable=not progress)):
        pid = f"hyb-{bid}-v{v}"
        m = mix if part == "train" else DEFAULT_MIX
        hybrid_from_real(
            real_root / bid,
            out / part / pid,
            seed=seed * 1000 + i,
            mix=m,
            calcium_look=calcium_look,
        )
        made[part].append(pid)
    made["train"] += _link_synthetic(out / "train", synthetic)
    atomic.write_json(out / "split.json", made)
    atomic.write_json(
        out / "train" / "dataset.json",
        {"name": "hybrid-train", "description": "real frames + synthetic calcium/struts"},
    )
    atomic.write_json(
        out / "val" / "dataset.json",
        {"name": "hybrid-val", "description": "held-out real block + synthetic calcium/struts"},
    )
    return made


def _link_synthetic(train_dir: Path, synthetic: str | Path | None) -> list[str]:
    """Link the synthetic pullbacks into ``train_dir`` as ``synth-ID`` (the links of an earlier
    build, perhaps of another cohort, are replaced); returns the link names."""
    if train_dir.is_dir():
        for old in train_dir.iterdir():
            if old.name.startswith("synth-") and old.is_symlink():
                old.unlink()
    if synthetic is None:
        return []
    from octseg.io.dataset import list_pullbacks

    train_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for e in list_pullbacks(synthetic):
        src = Path(e.image_path).parent if Path(e.image_path).is_file() else Path(e.image_path)
        link = train_dir / f"synth-{e.id}"
        if link.exists() or link.is_symlink():
            raise InputError(link, "exists and is not a link of an earlier build")
        os.symlink(src.resolve(), link, target_is_directory=True)
        names.append(link.name)
    return names


def evaluate_hybrid(
    checkpoint: str | Path,
    root: str | Path,
    *,
    device: str = "cpu",
    tolerance_mm: float = 0.1,
    cart_size: int = 750,
) -> dict[str, Any]:
    """A checkpoint on held-out hybrid pullbacks (every pullback folder under ``root``, i.e.
    every folder with a ``labels.npz``): the held-out evaluation
    :func:`octseg.datasets.holdout.evaluate_truth` (per-class Dice, strut detection F1 within
    ``tolerance_mm``, agreement of lumen area, calcium arc / thickness and malapposition
    distance with the true values in ``truth/``)."""
    from octseg.datasets.holdout import evaluate_truth

    ids = sorted(d.name for d in Path(root).iterdir() if (d / "labels.npz").exists())
    folders = {pid: Path(root) / pid for pid in ids}
    return evaluate_truth(
        checkpoint, folders, device=device, tolerance_mm=tolerance_mm, cart_size=cart_size
    )


def _share(text: str) -> float:
    """An argparse type: a share in [0, 1]."""
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"a share must be in [0, 1], got {text}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Sub-commands (also usable from the ``octseg`` CLI dispatcher)."""
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="hybrid pullbacks from a real dataset")
    b.add_argument(
        "real", help="real dataset written by python -m octseg.datasets.danilov.build build"
    )
    b.add_argument("out", help="output folder (train/, val/)")
    b.add_argument("--variants", type=int, default=3, help="hybrids per real training block")
    b.add_argument("--val-variants", type=int, default=None)
    b.add_argument("--synthetic", default=None, help="synthetic dataset to link into train/")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--faint-share",
        type=_share,
        default=0.0,
        help="share of the training lesions drawn faint (contrast 0.5-0.7 instead of 0.15-0.65; "
        "the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--thin-share",
        type=_share,
        default=0.0,
        help="share of the superficial and deep training lesions drawn thin (0.15-0.3 mm at "
        "their middle instead of up to 0.9; the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--media-share",
        type=_share,
        default=0.0,
        help="share of the superficial and deep training lesions with a dark media band just "
        "behind them (tissue, not calcium; the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--deep-share",
        type=_share,
        default=0.0,
        help="share of the training lesions drawn superficial that are made deep instead "
        "(0.4-0.9 mm under the lumen; the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--nodule-share",
        type=_share,
        default=0.0,
        help="share of the training lesions drawn superficial (and not made deep) that are made "
        "calcified nodules bulging into the lumen instead (the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--thick-share",
        type=_share,
        default=0.0,
        help="share of the training lesions (any kind) drawn thick ({:g}-{:g} mm at their middle "
        "instead of at most 0.9; the val hybrids keep the default draw)".format(
            *THICK_THICKNESS_MM
        ),
    )
    b.add_argument(
        "--vasa-share",
        type=_share,
        default=0.0,
        help="share of the training frames with vasa vasorum: small dark sharp-edged channels "
        "in the wall, labelled tissue (the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--stent-share",
        type=_share,
        default=0.0,
        help="share of the training pullbacks with a stent over one of their calcium lesions "
        "(the default draw stents about 4 in 5, anywhere; the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--past-field-share",
        type=_share,
        default=0.0,
        help="share of the training lesions (not nodules) allowed to run past the imaged "
        "field's edge, cut there, so that far walls get calcium (the val hybrids keep the "
        "default draw)",
    )
    b.add_argument(
        "--far-wall-share",
        type=_share,
        default=0.0,
        help="share of the training lesions (not nodules) centred on the wall farthest from the "
        "catheter (with --past-field-share they may run past the field there; the val hybrids "
        "keep the default draw)",
    )
    b.add_argument(
        "--far-wall-nodule-share",
        type=_share,
        default=0.0,
        help="share of the training nodules centred on the wall farthest from the catheter "
        "(--far-wall-share leaves nodules where they are; the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--malapposition-share",
        type=_share,
        default=0.0,
        help="share of the training stents given a malapposition window drawn anew (the default "
        "draw gives about 7 in 10 one; the val hybrids keep the default draw)",
    )
    b.add_argument(
        "--calcium-look",
        choices=CALCIUM_LOOKS,
        default="fade",
        help="how calcium is painted, in the training and the val hybrids alike: 'fade' (the "
        "default since session 63, RULE46) lets its level fall with depth as the real tissue it "
        "replaces does, so its back border shows; 'flat' keeps the level of the tissue in front "
        "of it all the way down (the builds of sessions 1-62: reproduces their figures)",
    )
    b.add_argument(
        "--console",
        default=None,
        help="also write the held-out (val) hybrids here as console exports (Cartesian PNG, "
        "sepia/grey, 500-1024 px, spacing.json) with their truth: octseg.datasets.hybrid.console",
    )
    c = sub.add_parser("console", help="hybrid pullbacks as console exports (Cartesian PNG)")
    c.add_argument("root", help="folder of hybrid pullbacks with truth/ (e.g. OUT/val)")
    c.add_argument("out", help="writes OUT/inputs/PID (PNG + spacing.json) and OUT/manual/PID")
    c.add_argument("--sizes", type=int, nargs=2, default=(500, 1024), metavar=("MIN", "MAX"))
    c.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("evaluate", help="Dice, strut F1 and agreement on hybrid pullbacks")
    e.add_argument("checkpoint")
    e.add_argument("root", help="folder of hybrid pullbacks with truth/ (e.g. OUT/val)")
    e.add_argument("--out", help="write the result JSON here")
    e.add_argument("--device", default="cpu")
    r = sub.add_parser("render", help="real | hybrid | hybrid+labels PNG of some frames")
    r.add_argument("real", help="real pseudo-pullback folder")
    r.add_argument("hybrid", help="its hybrid pullback folder")
    r.add_argument("png")
    r.add_argument("--frames", type=int, nargs="+", required=True)
    r.add_argument("--size", type=int, default=400)


def run(a: argparse.Namespace) -> int:
    if a.cmd == "evaluate":
        res = evaluate_hybrid(a.checkpoint, a.root, device=a.device)
        if a.out:
            atomic.write_json(a.out, res)
        print(json.dumps(res, indent=2))
        return 0
    if a.cmd == "render":
        from PIL import Image

        from octseg.io import read_pullback

        real = read_pullback(Path(a.real) / "image.npz")
        hyb = read_pullback(Path(a.hybrid) / "image.npz")
        lab = load_labels(Path(a.hybrid) / "labels.npz").labels
        rows = [
            side_by_side(
                real.read(f, f + 1)[0], hyb.read(f, f + 1)[0], lab[f], real.pixel_spacing_mm, a.size
            )
            for f in a.frames
        ]
        with atomic.atomic_path(a.png) as tmp:
            Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG", optimize=True)
        return 0
    if a.cmd == "console":
        from octseg.datasets.hybrid.console import export_folder

        print(json.dumps(export_folder(a.root, a.out, sizes=tuple(a.sizes), seed=a.seed), indent=2))
        return 0
    made = build_hybrid_dataset(
        a.real,
        a.out,
        variants=a.variants,
        val_variants=a.val_variants,
        synthetic=a.synthetic,
        seed=a.seed,
        mix=LesionMix(**{f.name: getattr(a, f.name) for f in fields(LesionMix)}),
        calcium_look=a.calcium_look,
    )
    print(json.dumps(made, indent=2))
    print(json.dumps(count_inserts(a.out), indent=2))
    if a.console:
        from octseg.datasets.hybrid.console import export_folder

        print(json.dumps(export_folder(Path(a.out) / "val", a.console, seed=a.seed), indent=2))
    return 0


def count_inserts(root: str | Path) -> dict[str, dict[str, int]]:
    """Per part (train, val): frames, and frames with calcium, several calcium lesions, a
    nodule, deep calcium, lipid, a side branch, vasa vasorum, a stent, and calcium behind a
    stent (from every hybrid's ``params.json``; builds before vasa count none); struts and
    malapposed struts (from its ``truth/struts.csv``, where there is one); calcium lesions of
    the truth and those one frame long (from its ``truth/summary.json``, where there is one:
    a lesion drawn over many frames can be trimmed to one by the guidewire shadow and the
    field, and a minimum lesion length, e.g. the calcium models' recommended 0.4 mm, removes
    such calcium by design)."""
    kinds = ("frames", "calcium", "several", "nodule", "deep", "lipid", "branch", "vasa")
    out: dict[str, dict[str, int]] = {}
    for part in ("train", "val"):
        extra = ("stent", "stent_calcium", "struts", "malapposed", "lesions", "lesions_one_frame")
        c = dict.fromkeys((*kinds, *extra), 0)
        for pj in sorted((Path(root) / part).glob("hyb-*/params.json")):
            n_struts, n_mal = _count_struts(pj.parent / "truth/struts.csv")
            c["struts"] += n_struts
            c["malapposed"] += n_mal
            n_les, n_one = _count_lesions(pj.parent / "truth/summary.json")
            c["lesions"] += n_les
            c["lesions_one_frame"] += n_one
            params = json.loads(pj.read_text())
            st = params.get("stent") or {"start": 0, "stop": 0}
            for r in params.get("frames", []):
                stented = st["start"] <= r["frame"] < st["stop"]
                c["frames"] += 1
                c["calcium"] += r["calcium"] > 0
                c["several"] += r["calcium"] > 1
                c["nodule"] += r["nodule"] > 0
                c["deep"] += r["deep"] > 0
                c["lipid"] += bool(r["lipid"])
                c["branch"] += r["branch"] > 0
                c["vasa"] += r.get("vasa", 0) > 0
                c["stent"] += stented
                c["stent_calcium"] += stented and r["calcium"] > 0
        out[part] = c
    return out


def _count_lesions(path: Path) -> tuple[int, int]:
    """Calcium lesions in ``path`` (a truth ``summary.json``; none if missing) and those one
    frame long."""
    if not path.exists():
        return 0, 0
    lesions = json.loads(path.read_text()).get("calcium_lesions") or []
    return len(lesions), sum(les["start_frame"] == les["end_frame"] for les in lesions)


def _count_struts(path: Path) -> tuple[int, int]:
    """Struts and malapposed struts in ``path`` (a truth ``struts.csv``; none if missing)."""
    if not path.exists():
        return 0, 0
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows), sum(int(r["malapposed"]) for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m octseg.datasets.hybrid.cohort", description=__doc__.splitlines()[0]
    )
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
