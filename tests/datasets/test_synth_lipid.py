"""Opt-in lipid lesions of the synthetic generator (``octseg synth --lipid``): default cohorts
unchanged, label layout and precedence, exact truth against the product geometry
(``octseg.geometry`` on the generated labels), TCFA, the guidewire and angle 0, the image.

Tolerances of the product-vs-truth comparisons (fine grid, 10 um samples, 504 A-lines): the
geometry samples 720 centroid rays by nearest neighbour, so the lipid arc is off by up to a few
rays (2 deg); a ray's cap is a whole number of samples and the frame minimum is a minimum over
windows of such counts, hence 1 sample (10 um) for the cap; the lipid depth is a plain minimum
over hundreds of quantised rays and reads up to 2 samples low (20 um) and never above 1 sample.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from octseg.cli import main
from octseg.core.classes import CALCIUM, FIBROUS_CAP, GUIDEWIRE, LIPID, LUMEN, STRUT
from octseg.datasets.synth import Grid, PullbackParams, PullbackSynth, draw_pullback
from octseg.datasets.synth.anatomy import TWO_PI, Anatomy
from octseg.datasets.synth.cohort import generate_cohort, grid_from
from octseg.datasets.synth.render import rasterize
from octseg.datasets.synth.truth import frame_truth
from octseg.geometry.measure import measure_frames
from octseg.geometry.settings import GeometrySettings
from octseg.geometry.tables import FRAME_COLUMNS, read_csv, read_summary
from octseg.io.labels import load_labels

GRID = Grid(n_alines=504, n_samples=400, pixel_spacing_mm=0.01, n_frames=64, frame_spacing_mm=0.3)
PS_UM = GRID.pixel_spacing_mm * 1000
ARC_TOL_DEG = 2.0
CAP_TOL_UM = 1.0 * PS_UM
TINY = ["--preset", "small", "--n-frames", "48", "--frame-spacing", "0.3", "--quiet"]


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        h.update(str(p.relative_to(root)).encode())
        if p.suffix == ".npz":
            with np.load(p) as z:
                for k in sorted(z.files):
                    h.update(k.encode())
                    h.update(np.ascontiguousarray(z[k]).tobytes())
        else:
            h.update(p.read_bytes())
    return h.hexdigest()


def test_default_cohort_is_unchanged_by_the_lipid_option(tmp_path):
    grid = grid_from("small", n_frames=48, frame_spacing_mm=0.3, n_alines=64, n_samples=128)
    generate_cohort(tmp_path / "a", 2, 7, grid, progress=False)
    generate_cohort(tmp_path / "b", 2, 7, grid, lipid=False, progress=False)
    # the same cohort with the option absent and switched off, file for file and array for array
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert "lipids" not in json.loads((tmp_path / "a/synth-000/params.json").read_text())
    assert "lipid" not in json.loads((tmp_path / "a/synth.json").read_text())


@pytest.mark.parametrize("index", range(6))
def test_lipid_draws_leave_everything_else_as_drawn_without_it(index):
    plain = draw_pullback(grid_from("small"), 0, index).to_dict()
    with_lipid = draw_pullback(grid_from("small"), 0, index, lipid=True).to_dict()
    assert len(with_lipid.pop("lipids")) == 1
    assert with_lipid == plain


# --------------------------------------------------------------------------- fine grid
def _measure(s: PullbackSynth) -> tuple[list[dict], list[dict], dict, list[dict]]:
    """Product rows (the geometry on the lipid lesion's label frames), truth rows of the same
    frames, the truth summary and the product's lipid lesions."""
    les = s.p.lipids[0]
    frames = list(range(les.start_frame, les.end_frame + 1))
    lab = np.stack([rasterize(s.geometry(f), s.pg).labels for f in frames])
    m = measure_frames(
        lab,
        space="polar",
        pixel_spacing_mm=GRID.pixel_spacing_mm,
        frame_spacing_mm=GRID.frame_spacing_mm,
        frame_index=np.array(frames),
    )
    rows, _, summary = s.truth()
    truth = [r for r in rows if r["frame"] in set(frames)]
    return m.frames, truth, summary, m.summary["lipid_lesions"]


@pytest.fixture(scope="module")
def lipid_synths() -> dict[int, PullbackSynth]:
    # index % 2 == 0 thin cap (TCFA); index % 3: 0 away from the guidewire, 1 straddles angle 0,
    # 2 one end of the arc in the guidewire shadow
    return {i: PullbackSynth(draw_pullback(GRID, 0, i, lipid=True)) for i in range(3)}


@pytest.fixture(scope="module")
def measured(lipid_synths):
    return {i: _measure(s) for i, s in lipid_synths.items()}


@pytest.mark.parametrize("index", range(3))
def test_product_geometry_agrees_with_the_truth(measured, index):
    got, want, _, _ = measured[index]
    assert len(got) == len(want) >= 3
    for g, t in zip(got, want):
        assert g["frame"] == t["frame"]
        assert abs(g["lipid_arc_deg"] - t["lipid_arc_deg"]) <= ARC_TOL_DEG, g["frame"]
        assert abs(g["cap_min_thickness_um"] - t["cap_min_thickness_um"]) <= CAP_TOL_UM
        d_um = 1000 * (g["lipid_min_depth_mm"] - t["lipid_min_depth_mm"])
        assert -2 * PS_UM <= d_um <= PS_UM, g["frame"]
        assert abs(g["cap_min_angle_deg"] - t["cap_min_angle_deg"]) % 360 < 20 or (
            abs(g["cap_min_angle_deg"] - t["cap_min_angle_deg"]) % 360 > 340
        )


@pytest.mark.parametrize("index", range(3))
def test_tcfa_frames_agree(measured, index):
    got, want, _, _ = measured[index]
    s = GeometrySettings()
    clear = 0
    for g, t in zip(got, want):
        # frames whose cap or arc lies within the tolerance of a threshold may go either way
        if abs(t["cap_min_thickness_um"] - s.tcfa_cap_um) <= CAP_TOL_UM:
            continue
        if abs(t["lipid_arc_deg"] - s.tcfa_arc_deg) <= ARC_TOL_DEG:
            continue
        assert bool(g["tcfa"]) == t["tcfa"], g["frame"]
        clear += 1
    assert clear >= len(want) // 2
    thin = index % 2 == 0
    assert any(t["tcfa"] for t in want) == thin  # thin caps make TCFA frames, thick ones none


@pytest.mark.parametrize("index", range(3))
def test_lesion_truth_matches_the_parameters_and_the_product(lipid_synths, measured, index):
    les = lipid_synths[index].p.lipids[0]
    _, _, summary, product = measured[index]
    (truth,) = summary["lipid_lesions"]
    assert (truth["start_frame"], truth["end_frame"]) == (les.start_frame, les.end_frame)
    assert truth["min_cap_thickness_um"] >= les.cap_um - 1e-6
    if index % 3 != 2:  # nothing hidden by the guidewire: the arc and cap are the drawn ones
        assert abs(truth["max_lipid_arc_deg"] - les.arc_deg) < 0.2
        assert abs(truth["min_cap_thickness_um"] - les.cap_um) < 0.5
    (got,) = product
    assert (got["start_frame"], got["end_frame"]) == (truth["start_frame"], truth["end_frame"])
    assert abs(got["max_lipid_arc_deg"] - truth["max_lipid_arc_deg"]) <= ARC_TOL_DEG
    assert abs(got["min_cap_thickness_um"] - truth["min_cap_thickness_um"]) <= CAP_TOL_UM
    assert got["tcfa"] == truth["tcfa"]


def _mid(s: PullbackSynth) -> int:
    les = s.p.lipids[0]
    return (les.start_frame + les.end_frame) // 2


def _centroid_angles(s: PullbackSynth, lab: np.ndarray, cls: int, f: int) -> np.ndarray:
    a = np.arange(GRID.n_alines) * TWO_PI / GRID.n_alines
    r = np.arange(GRID.n_samples) * GRID.pixel_spacing_mm
    y, x = np.sin(a)[:, None] * r, np.cos(a)[:, None] * r
    c = s.geometry(f).centroid
    m = lab == cls
    return np.degrees(np.arctan2(y[m] - c[0], x[m] - c[1])) % 360


def test_lesion_straddling_angle_zero(lipid_synths, measured):
    s = lipid_synths[1]
    f = _mid(s)
    _, lab = s.frame(f)
    ang = _centroid_angles(s, lab, LIPID, f)
    assert (ang < 5).any() and (ang > 355).any()  # lipid on both sides of 0 deg
    got, want, _, _ = measured[1]
    g = next(r for r in got if r["frame"] == f)
    t = next(r for r in want if r["frame"] == f)
    assert abs(t["lipid_arc_deg"] - math.degrees(s.geometry(f).lipids[0].arc)) < 0.1
    assert abs(g["lipid_arc_deg"] - t["lipid_arc_deg"]) <= ARC_TOL_DEG


def test_lesion_ending_in_the_guidewire_shadow(lipid_synths, measured):
    s = lipid_synths[2]
    f = _mid(s)
    _, lab = s.frame(f)
    lip_lines = np.flatnonzero((lab == LIPID).any(1))
    gw_lines = np.flatnonzero((lab == GUIDEWIRE).any(1))
    gap = np.abs((lip_lines[:, None] - gw_lines[None, :] + 252) % 504 - 252).min()
    assert gap <= 1  # the lipid reaches the shadow
    got, want, _, _ = measured[2]
    t = next(r for r in want if r["frame"] == f)
    g = next(r for r in got if r["frame"] == f)
    full = math.degrees(s.geometry(f).lipids[0].arc)
    assert t["lipid_arc_deg"] < full - 3  # the hidden part is not counted (lipid on one side)
    assert abs(g["lipid_arc_deg"] - t["lipid_arc_deg"]) <= ARC_TOL_DEG


def test_lesion_across_the_guidewire_shadow_is_bridged(lipid_synths):
    base = lipid_synths[0].p
    les = base.lipids[0]
    f = (les.start_frame + les.end_frame) // 2
    gw = Anatomy(base).gw_angle_about_centroid(f, 0.1)
    p = dataclasses.replace(base, lipids=[dataclasses.replace(les, center_deg=gw + 20.0)])
    s = PullbackSynth(p)
    geo = s.geometry(f)
    lab = rasterize(geo, s.pg).labels
    t = frame_truth(geo, GRID.frame_spacing_mm, GRID.depth_mm, 0.2)[0]
    full = math.degrees(geo.lipids[0].arc)
    assert abs(t["lipid_arc_deg"] - full) < 0.2  # lipid on both sides: bridged
    g = measure_frames(
        lab[None], space="polar", pixel_spacing_mm=GRID.pixel_spacing_mm, frame_spacing_mm=0.3
    ).frames[0]
    assert abs(g["lipid_arc_deg"] - t["lipid_arc_deg"]) <= ARC_TOL_DEG
    assert abs(g["cap_min_thickness_um"] - t["cap_min_thickness_um"]) <= CAP_TOL_UM


def test_label_layout_and_precedence(lipid_synths):
    s = lipid_synths[0]
    les = s.p.lipids[0]
    r = np.arange(GRID.n_samples)[None, :] * GRID.pixel_spacing_mm
    for f in range(les.start_frame, les.end_frame + 1):
        geo = s.geometry(f)
        lab = rasterize(geo, s.pg).labels
        assert not np.isin(lab, (CALCIUM, STRUT)).any()  # lipid frames hold no calcium/stent
        inside = r < geo.rho_cat[:, None]
        assert np.isin(lab[inside], (LUMEN, GUIDEWIRE)).all()  # lumen > lipid > cap
        both = (lab == LIPID).any(1) & (lab == FIBROUS_CAP).any(1)
        # A-lines well inside the arc (an A-line at its lateral edge grazes a corner of the cap)
        inner = np.all([np.roll(both, k) for k in range(-3, 4)], axis=0)
        assert inner.sum() > 10
        for line in np.flatnonzero(inner):
            cap = np.flatnonzero(lab[line] == FIBROUS_CAP)
            lip = np.flatnonzero(lab[line] == LIPID)
            assert lab[line, cap.min() - 1] == LUMEN  # the cap starts at the lumen
            assert cap.max() < lip.min()  # ... and lies in front of the core
    outside = [f for f in range(GRID.n_frames) if not les.start_frame <= f <= les.end_frame]
    for f in outside[:: max(1, len(outside) // 6)]:
        lab = rasterize(s.geometry(f), s.pg).labels
        assert not np.isin(lab, (FIBROUS_CAP, LIPID)).any()


def test_image_signal_poor_core_bright_cap_dark_behind(lipid_synths):
    s = lipid_synths[0]
    f = _mid(s)
    img, lab = s.frame(f)
    geo = s.geometry(f)
    depth = np.arange(GRID.n_samples)[None, :] * GRID.pixel_spacing_mm - geo.rho_cat[:, None]
    core, cap = lab == LIPID, lab == FIBROUS_CAP
    lines = core.any(1)[:, None]
    d_core = depth[core]
    wall = (lab == 0) & ~lines & (depth >= d_core.min()) & (depth <= np.median(d_core))
    behind = (lab == 0) & lines & (depth > d_core.max()) & (depth < d_core.max() + 0.3)
    wall_behind = (lab == 0) & ~lines & (depth > d_core.max()) & (depth < d_core.max() + 0.3)
    assert img[cap].mean() > img[core].mean() + 60
    assert img[core].mean() + 40 < img[wall].mean()
    assert img[behind].mean() + 40 < img[wall_behind].mean()  # strong attenuation


def test_core_border_is_diffuse(lipid_synths):
    """The core's optics blend into the wall over ``border_mm``: just outside and just inside
    its deep border the attenuation lies strictly between the wall's and the core's (a sharp
    border, like calcium's, would give exactly one or the other)."""
    from octseg.datasets.synth.render import _lipid_optics

    s = lipid_synths[0]
    geo = s.geometry(_mid(s))
    ras = rasterize(geo, s.pg)
    shape = ras.labels.shape
    mu_wall = 2.0
    zero = np.zeros(shape)
    _, mu_t = _lipid_optics(geo, ras, s.pg, np.ones(shape), np.full(shape, mu_wall), zero, zero)
    w = (mu_t - mu_wall) / (geo.lipids[0].attenuation_per_mm - mu_wall)  # 0 wall .. 1 core
    lines = np.flatnonzero(ras.lipid.sum(1) > 10)
    assert lines.size > 10
    for line in lines[::5]:
        edge = np.flatnonzero(ras.lipid[line]).max()  # last core sample on the A-line
        assert 0.05 < w[line, edge + 2] < 0.5
        assert 0.5 < w[line, edge - 2] < 0.95


def test_truth_covers_tcfa_and_thick_caps():
    grid = grid_from("small")
    caps, tcfa = [], []
    for i in range(4):
        s = PullbackSynth(draw_pullback(grid, 5, i, lipid=True))
        les = s.p.lipids[0]
        for f in range(les.start_frame, les.end_frame + 1):
            row = frame_truth(s.geometry(f), grid.frame_spacing_mm, grid.depth_mm, 0.2)[0]
            caps.append(row["cap_min_thickness_um"])
            tcfa.append((i, row["tcfa"]))
    caps = [c for c in caps if c is not None]
    assert 45 <= min(caps) < 65 and max(caps) > 150  # 1.5 pixels (45 um) is the floor here
    assert {i for i, t in tcfa if t} <= {0, 2} and {i for i, t in tcfa if t}
    assert not any(t for i, t in tcfa if i % 2)


# --------------------------------------------------------------------------- files
def test_cli_lipid_writes_plaque_labels_and_truth(tmp_path, capsys):
    out = tmp_path / "c"
    args = ["--n", "2", "--seed", "3", "--n-alines", "96", "--n-samples", "128", "--lipid"]
    assert main(["synth", str(out), *args, *TINY]) == 0
    assert "lipid frames" in capsys.readouterr().out
    assert json.loads((out / "synth.json").read_text())["lipid"] is True
    for pid in ("synth-000", "synth-001"):
        d = out / pid
        p = PullbackParams.from_dict(json.loads((d / "params.json").read_text()))
        (les,) = p.lipids
        lab = load_labels(d / "labels.npz").labels
        has = np.isin(lab, (FIBROUS_CAP, LIPID)).any(axis=(1, 2))
        assert np.flatnonzero(has).tolist() == list(range(les.start_frame, les.end_frame + 1))
        rows = read_csv(d / "truth" / "frames.csv", required=FRAME_COLUMNS)
        filled = [int(r["frame"]) for r in rows if r["lipid_arc_deg"] not in (None, "")]
        assert filled == list(range(les.start_frame, les.end_frame + 1))
        (summ,) = read_summary(d / "truth" / "summary.json")["lipid_lesions"]
        assert summ["start_frame"] == les.start_frame
    mf = read_csv(out / "manual_frames.csv")
    assert any(r["lipid_arc_deg"] not in (None, "") for r in mf)


def test_params_json_roundtrip_with_lipid(lipid_synths):
    p = lipid_synths[2].p
    d = json.loads(json.dumps(p.to_dict()))
    assert PullbackParams.from_dict(d).to_dict() == p.to_dict()


def test_ensure_cohort_tells_lipid_cohorts_apart(tmp_path):
    from octseg.datasets.synth.cohort import cohort_spec, ensure_cohort

    grid = grid_from("small")
    assert cohort_spec(1, 0, grid, "npz", False, None) != cohort_spec(
        1, 0, grid, "npz", False, None, lipid=True
    )
    root = ensure_cohort(tmp_path / "c", 1, seed=3, lipid=True, progress=False, log=None)
    assert json.loads((root / "synth.json").read_text())["lipid"] is True
    messages = []
    ensure_cohort(root, 1, seed=3, progress=False, log=messages.append)
    assert "generating" in messages[0]  # a lipid cohort is not reused for a plain one
