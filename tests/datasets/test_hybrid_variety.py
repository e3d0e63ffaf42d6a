"""Hybrid calcium variety and distractors: the product geometry measures the generating truth.

Truth comes from the generating parameters / continuous shapes (octseg.datasets.hybrid.truth,
distractors.lipid_columns), never from measuring the painted labels; here the painted labels are
measured by octseg.geometry and compared with it. Tolerances: arc 2 degrees (720 geometry rays,
pixel-quantised borders), thickness / depth 2 pixels, cap thickness 1.5 pixels (15 um at
0.01 mm/px), areas 5%.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from octseg.core.classes import BACKGROUND, CALCIUM, FIBROUS_CAP, LIPID, LUMEN
from octseg.core.errors import InputError
from octseg.core.polar import wrap_pi
from octseg.datasets.hybrid import bins, cohort, draw
from octseg.datasets.hybrid.distractors import (
    BranchSpec,
    LipidSpec,
    MediaSpec,
    VasaSpec,
    draw_vasa,
    insert_branch,
    insert_lipid,
    insert_media_band,
    insert_vasa,
    lipid_columns,
)
from octseg.datasets.hybrid.insert import CalciumSpec, insert_calcium, lumen_geometry
from octseg.datasets.hybrid.truth import shape_calcium_columns, union_margin
from octseg.io.labels import LabelFile, load_labels
from tests.datasets.test_hybrid import PS, R, _as_trained, _recipe, stand_in

FIELD = (R - 0.5) * PS
ANGLE = "calcium_max_thickness_angle_deg"


def _measure(labels: np.ndarray) -> list[dict]:
    from octseg.geometry import measure_labels

    lf = LabelFile(labels=labels, space="polar", pixel_spacing_mm=PS, frame_spacing_mm=0.2)
    return measure_labels(lf).frames


def _truth(g_after, g0, specs) -> dict:
    m = union_margin([partial(cohort._shape_margin, g0, s) for s in specs])
    return shape_calcium_columns(g_after, m, FIELD, step_mm=PS / 2)


def _check_calcium(row: dict, t: dict, n_lesions: int = 1) -> None:
    """Arc within 2 degrees, or 1 degree per lesion (nearest-pixel rays over-read each end by
    up to half a pixel, ~0.3 degrees at 1 mm, plus the 0.5-degree ray quantisation)."""
    tol = max(2.0, 1.0 * n_lesions)
    assert row["calcium_arc_deg"] == pytest.approx(t["calcium_arc_deg"], abs=tol)
    assert row["calcium_max_thickness_mm"] == pytest.approx(
        t["calcium_max_thickness_mm"], abs=2 * PS
    )
    assert row["calcium_min_depth_mm"] == pytest.approx(t["calcium_min_depth_mm"], abs=2 * PS)
    assert row["calcium_area_mm2"] == pytest.approx(t["calcium_area_mm2"], rel=0.05)
    # where the maximum lies: the same rule on the exact shape's and the raster's rays
    from octseg.evaluate.angles import circular_difference

    da = circular_difference(row["calcium_max_thickness_angle_deg"], t[ANGLE])
    assert abs(float(da)) <= 3.0, (row["calcium_max_thickness_angle_deg"], t[ANGLE])


SHAPES = [
    CalciumSpec(60.0, 120.0, 0.08, 0.5, end_power=2.0, irregularity=0.45, shape_seed=3),
    CalciumSpec(200.0, 80.0, 0.3, 0.4, end_power=8.0, irregularity=0.3, shape_seed=7),
    CalciumSpec(300.0, 70.0, 0.7, 0.35, contrast=0.4, edge_px=2.0),  # deep, under thick intima
]


@pytest.mark.parametrize("spec", SHAPES)
def test_irregular_and_deep_calcium_measured_as_the_shape(spec):
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    new_img, new_lab = insert_calcium(img[0], lab[0], g, spec, np.random.default_rng(0))
    cal = new_lab == CALCIUM
    assert np.all(lab[0][cal] == BACKGROUND)
    t = _truth(g, g, [spec])
    # the truth is the shape, not the parameters: irregular borders move thickness and depth
    if spec.irregularity:
        assert t["calcium_min_depth_mm"] >= spec.depth_mm - 1e-3
    else:
        assert t["calcium_max_thickness_mm"] == pytest.approx(spec.thickness_mm, abs=PS / 2)
        assert t["calcium_min_depth_mm"] == pytest.approx(spec.depth_mm, abs=PS / 2)
    _check_calcium(_measure(new_lab[None])[0], t)
    assert new_img[cal].mean() < 0.8 * img[0][cal].mean()


def test_irregular_shape_is_not_the_plain_one():
    base = CalciumSpec(60.0, 120.0, 0.08, 0.5, end_power=2.0)
    irr = CalciumSpec(60.0, 120.0, 0.08, 0.5, end_power=2.0, irregularity=0.45, shape_seed=3)
    _, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    a = _truth(g, g, [base])
    b = _truth(g, g, [irr])
    assert abs(a["calcium_area_mm2"] - b["calcium_area_mm2"]) > 0.02 * a["calcium_area_mm2"]
    assert abs(a["calcium_max_thickness_mm"] - b["calcium_max_thickness_mm"]) > 2 * PS


def test_nodule_dents_the_lumen_and_is_measured_from_the_new_border():
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    spec = CalciumSpec(120.0, 70.0, 0.0, 0.5, end_power=2.0, bulge_mm=0.3, rim=0.6)
    assert cohort._nodule_fits(g, spec)
    _, new_lab = insert_calcium(img[0], lab[0], g, spec, np.random.default_rng(0))
    took = (lab[0] == LUMEN) & (new_lab == CALCIUM)
    assert took.sum() > 100  # the nodule covers lumen pixels
    # lumen lost = the analytic intrusion: 1/2 int rho_L^2 - (rho_L - b(u))^2 dphi
    phi = math.radians(spec.center_deg) + np.linspace(-1, 1, 4001) * math.radians(35.0)
    u = np.linspace(-1, 1, phi.size)
    rl = g.rho(phi)
    lost = 0.5 * np.trapezoid(rl**2 - (rl - spec.bulge_mm * (1 - u**2) ** 1.5) ** 2, phi)
    before, after = _measure(lab)[0], _measure(new_lab[None])[0]
    assert before["lumen_area_mm2"] - after["lumen_area_mm2"] == pytest.approx(lost, rel=0.1)
    # the truth path of make_hybrid: the lumen re-measured, the calcium about it, depth 0
    g2, cols = cohort._calcium_truth(new_lab, g, [spec], PS, 0.2, R)
    assert cols["lumen_area_mm2"] == pytest.approx(after["lumen_area_mm2"], rel=1e-6)
    assert cols["calcium_min_depth_mm"] == pytest.approx(0.0, abs=PS)
    assert cols["calcium_max_thickness_mm"] > spec.thickness_mm  # bulge + wall part
    _check_calcium(after, cols)


def test_nodule_surface_reads_as_tissue_not_lumen():
    # a nodule's bright surface is (1 + rim) x the tissue level in front of it, even at low
    # calcium contrast; it was a brightened *calcium* level (0.2 x tissue here), as dark as the
    # lumen, so low-contrast nodules read as lumen
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    spec = CalciumSpec(120.0, 70.0, 0.0, 0.5, end_power=2.0, bulge_mm=0.3, rim=0.6, contrast=0.2)
    out, new_lab = insert_calcium(img[0], lab[0], g, spec, np.random.default_rng(0))
    cal = new_lab == CALCIUM
    rows = np.nonzero(cal.any(axis=1))[0]
    first = np.argmax(cal, axis=1)[rows]
    surface = np.median([out[i, k : k + 2].mean() for i, k in zip(rows, first)])
    deep = np.median([out[i, k + 8 : k + 14].mean() for i, k in zip(rows, first)])
    border = np.argmax(lab[0] != LUMEN, axis=1)
    others = np.setdiff1d(np.arange(lab.shape[1]), rows)
    wall = np.median([img[0, i, border[i] : border[i] + 10].mean() for i in others])
    lumen = np.median(img[0][lab[0] == LUMEN])
    assert surface > 0.5 * wall and surface > 3 * lumen  # old: 0.15 x wall, about the lumen
    assert deep < 0.4 * surface  # signal-poor behind the surface


def test_several_lesions_per_frame_keep_apart_and_are_measured(tmp_path):
    img, lab = stand_in(n=4, seed=3, shadow=(40, 62))
    lesions = [
        draw.CalciumLesion(0, 4, 220.0, 80.0, 0.1, 0.4, irregularity=0.3, shape_seed=1),
        draw.CalciumLesion(0, 4, 320.0, 70.0, 0.5, 0.3, kind="deep"),
        draw.CalciumLesion(0, 4, 120.0, 50.0, 0.0, 0.4, kind="nodule", bulge_mm=0.25),
    ]
    record: list[dict] = []
    _, new_lab, rows, _ = cohort.make_hybrid(
        img, lab, PS, lesions, None, np.random.default_rng(0), frame_spacing_mm=0.2, record=record
    )
    from scipy import ndimage

    got = _measure(new_lab)
    for f in range(4):
        assert record[f]["calcium"] == 3 and record[f]["nodule"] == 1
        n = ndimage.label(new_lab[f] == CALCIUM, structure=np.ones((3, 3)))[1]
        assert n >= 3
        _check_calcium(got[f], rows[f], n_lesions=3)
        assert got[f]["lumen_area_mm2"] == pytest.approx(rows[f]["lumen_area_mm2"], rel=0.01)


LIPIDS = [
    LipidSpec(90.0, 140.0, 50.0, 180.0, 0.5, cap_min_deg=110.0),  # TCFA: thin cap, wide arc
    LipidSpec(250.0, 70.0, 120.0, 220.0, 0.4, flat_deg=5.0),
]


@pytest.mark.parametrize("spec", LIPIDS)
def test_lipid_and_cap_measured_as_generated(spec):
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    new_img, new_lab = insert_lipid(img[0], lab[0], g, spec)
    assert np.array_equal(new_lab[lab[0] == LUMEN], lab[0][lab[0] == LUMEN])
    assert (new_lab == LIPID).any() and (new_lab == FIBROUS_CAP).any()
    assert not (new_lab == CALCIUM).any()
    row = _measure(new_lab[None])[0]
    t = lipid_columns(spec)
    assert row["lipid_arc_deg"] == pytest.approx(t["lipid_arc_deg"], abs=2.0)
    assert row["cap_min_thickness_um"] == pytest.approx(
        t["cap_min_thickness_um"], abs=1.5 * PS * 1e3
    )
    assert row["lipid_min_depth_mm"] == pytest.approx(t["lipid_min_depth_mm"], abs=1.5 * PS)
    assert row["cap_min_angle_deg"] == pytest.approx(t["cap_min_angle_deg"], abs=spec.flat_deg + 2)
    tcfa = t["cap_min_thickness_um"] < 65 and t["lipid_arc_deg"] > 90
    assert bool(row["tcfa"]) == tcfa
    # look: bright cap, signal-poor core, attenuation behind it (the tissue beyond the core too)
    cap, core = new_lab == FIBROUS_CAP, new_lab == LIPID
    assert new_img[cap].mean() > img[0][cap].mean()
    assert new_img[core].mean() < 0.5 * img[0][core].mean()
    a = int(np.argmax(core.sum(axis=1)))  # the A-line through the thickest core
    j = np.nonzero(core[a])[0].max() + 5
    assert new_img[a, j:].mean() < 0.5 * img[0][a, j:].mean()


def test_lipid_border_is_diffuse_and_calcium_border_sharp():
    """Across the inner border, lipid darkens over several pixels, calcium within ~2."""
    img, lab = stand_in(shadow=None)
    flat = np.full_like(img[0], 0.5)
    flat[lab[0] == LUMEN] = 0.05
    g = lumen_geometry(lab[0], PS)
    lp = LipidSpec(90.0, 120.0, 100.0, 100.0, 0.6, diffuse_mm=0.12, attenuation_mm=0.5, floor=0.2)
    ca = CalciumSpec(90.0, 120.0, 0.1, 0.6, contrast=0.3, heterogeneity=0.0)
    li, llab = insert_lipid(flat, lab[0], g, lp)
    ci, _ = insert_calcium(flat, lab[0], g, ca, np.random.default_rng(0))

    def width(profile):  # pixels between 90% and 10% of the drop
        p = (profile - profile.min()) / (profile.max() - profile.min())
        return int(np.argmax(p < 0.1) - np.argmax(p < 0.9))

    a = int(np.argmax((llab == LIPID).sum(axis=1)))
    k = int(np.rint(g.edge_mm[a] / PS)) + 2
    assert width(li[a, k : k + 60]) >= 6
    assert width(ci[a, k : k + 60]) <= 3


def test_side_branch_changes_the_image_not_the_labels():
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    spec = BranchSpec(45.0, 0.6, offset=0.5)
    out = insert_branch(img[0], lab[0], g, spec, np.random.default_rng(0))
    c = g.point(math.radians(45.0), float(g.rho(math.radians(45.0))) + 0.3)
    from octseg.datasets.hybrid.insert import polar_xy

    yy, xx = polar_xy(*img[0].shape, PS)
    hole = (np.hypot(yy - c[0], xx - c[1]) < 0.55) & (lab[0] == BACKGROUND)
    assert hole.sum() > 200
    assert out[hole].mean() < 0.3 * img[0][hole].mean()
    far = ~(np.hypot(yy - c[0], xx - c[1]) < 0.9)
    assert np.array_equal(out[far], img[0][far])


def test_vas_vasorum_is_a_small_dark_sharp_disc_in_tissue_and_keeps_off_other_labels():
    from octseg.datasets.hybrid.insert import polar_xy

    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    spec = VasaSpec(120.0, depth_mm=0.4, radius_mm=0.12, darkness=0.7)
    out, placed = insert_vasa(img[0], lab[0], g, spec)
    assert placed
    yy, xx = polar_xy(*img[0].shape, PS)
    c = g.point(math.radians(120.0), float(g.rho(math.radians(120.0))) + 0.4)
    d = np.hypot(yy - c[0], xx - c[1]) - 0.12
    # sharp: full darkening 3 pixels inside the border, none 3 pixels outside (1% tolerance)
    inside, outside = d < -0.03, d > 0.03
    assert inside.sum() > 80 and (lab[0][d < 0.1] == BACKGROUND).all()
    assert out[inside] == pytest.approx(0.3 * img[0][inside], rel=0.01, abs=1e-6)
    assert out[outside] == pytest.approx(img[0][outside], rel=0.01, abs=1e-6)
    # the same disc beside calcium (or any label but background) is not placed
    near = lab[0].copy()
    near[(d > 0.03) & (d < 0.08)] = CALCIUM
    same, placed = insert_vasa(img[0], near, g, spec)
    assert not placed and np.array_equal(same, img[0])
    with pytest.raises(ValueError, match="vas vasorum"):
        VasaSpec(0.0, depth_mm=0.1, radius_mm=0.2)


def test_vasa_share_draws_channels_and_changes_only_their_frames_images():
    assert draw_vasa(3, 40, 0.0) == []
    chans = draw_vasa(3, 40, 0.4)
    covered = np.zeros(40, bool)
    for ch in chans:
        covered[ch.start : ch.stop] = True
        spec = ch.at(ch.start)
        assert 0.2 <= ch.depth_mm <= 0.85 and 0.065 <= ch.radius_mm <= 0.2
        assert spec is not None and spec.radius_mm <= ch.radius_mm and ch.at(ch.stop) is None
    assert covered.mean() >= 0.4 and draw_vasa(3, 40, 0.4) == chans
    img, lab = stand_in(n=12, seed=5, shadow=(40, 62))
    lesions = [draw.CalciumLesion(0, 5, 200.0, 100.0, 0.1, 0.4)]
    vasa = [cohort.VasaChannel(2, 9, 320.0, 0.35, 0.1, 0.7, 1.0)]  # off the shadow, calcium
    made = {}
    for key, v in (("plain", None), ("vasa", vasa)):
        record: list[dict] = []
        kw = dict(frame_spacing_mm=0.2, vasa=v, record=record)
        out = cohort.make_hybrid(img, lab, PS, lesions, None, np.random.default_rng(1), **kw)
        made[key] = (*out, record)
    (i0, l0, r0, _, _), (i1, l1, r1, _, rec) = made["plain"], made["vasa"]
    assert np.array_equal(l0, l1) and r0 == r1  # labels and truth: a vas vasorum is tissue
    with_vasa = [r["frame"] for r in rec if r["vasa"]]
    assert with_vasa == list(range(2, 9))  # placed on every frame of the channel
    changed = np.nonzero((i0 != i1).any(axis=(1, 2)))[0].tolist()
    assert changed == with_vasa


def test_count_inserts_counts_vasa_frames_and_reads_builds_from_before_them(tmp_path):
    import json

    old = {"frame": 0, "calcium": 1, "nodule": 0, "deep": 0, "lipid": False, "branch": 0}
    new = [dict(old, frame=1, vasa=2), dict(old, frame=2, calcium=0, vasa=0)]
    for name, frames in (("hyb-a-v0", [old]), ("hyb-a-v1", new)):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "train" / name / "params.json").write_text(json.dumps({"frames": frames}))
    got = cohort.count_inserts(tmp_path)["train"]
    assert (got["frames"], got["calcium"], got["vasa"]) == (3, 2, 1)


def test_count_inserts_counts_stent_frames_and_calcium_behind_struts(tmp_path):
    import json

    rec = {"calcium": 0, "nodule": 0, "deep": 0, "lipid": False, "branch": 0}
    frames = [dict(rec, frame=f, calcium=int(f >= 2)) for f in range(5)]
    for name, stent in (("hyb-a-v0", {"start": 1, "stop": 4}), ("hyb-a-v1", None)):
        (tmp_path / "val" / name).mkdir(parents=True)
        params = {"frames": frames, "stent": stent}
        (tmp_path / "val" / name / "params.json").write_text(json.dumps(params))
    got = cohort.count_inserts(tmp_path)["val"]
    assert (got["frames"], got["calcium"], got["stent"], got["stent_calcium"]) == (10, 6, 3, 2)


def test_count_inserts_counts_struts_and_malapposed_ones(tmp_path):
    import json

    rec = {"frame": 0, "calcium": 0, "nodule": 0, "deep": 0, "lipid": False, "branch": 0}
    rows = ["frame,angle_deg,x_mm,y_mm,distance_mm,malapposed", "0,1,0,0,0.01,0", "0,90,0,0,0.2,1"]
    for name, struts in (("hyb-a-v0", rows), ("hyb-a-v1", rows[:2]), ("hyb-a-v2", None)):
        (tmp_path / "train" / name / "truth").mkdir(parents=True)
        params = {"frames": [rec], "stent": None}
        (tmp_path / "train" / name / "params.json").write_text(json.dumps(params))
        if struts:
            (tmp_path / "train" / name / "truth/struts.csv").write_text("\n".join(struts) + "\n")
    got = cohort.count_inserts(tmp_path)["train"]
    assert (got["frames"], got["struts"], got["malapposed"]) == (3, 3, 1)


def test_count_inserts_counts_truth_lesions_and_one_frame_ones(tmp_path):
    import json

    rec = {"frame": 0, "calcium": 1, "nodule": 0, "deep": 0, "lipid": False, "branch": 0}
    long, one = {"start_frame": 2, "end_frame": 9}, {"start_frame": 4, "end_frame": 4}
    for name, lesions in (("hyb-a-v0", [long, one]), ("hyb-a-v1", [one]), ("hyb-a-v2", None)):
        (tmp_path / "val" / name / "truth").mkdir(parents=True)
        (tmp_path / "val" / name / "params.json").write_text(json.dumps({"frames": [rec]}))
        if lesions is not None:
            summary = {"calcium_lesions": lesions}
            (tmp_path / "val" / name / "truth/summary.json").write_text(json.dumps(summary))
    got = cohort.count_inserts(tmp_path)["val"]
    assert (got["lesions"], got["lesions_one_frame"]) == (3, 2)


MAL_FIELDS = ("mal_center_deg", "mal_arc_deg", "mal_start", "mal_stop", "malapposition_mm")


def test_malapposition_share_draws_a_window_inside_the_stent_from_its_own_stream():
    windows, stents = 0, 0
    for seed in range(40):
        lesions, stent, distractors = _draws(seed)
        assert draw.malappose(stent, seed, 0.0) is stent
        assert draw.malappose(None, seed, 1.0) is None
        if stent is None:
            continue
        stents += 1
        windows += stent.mal_center_deg is not None
        got = draw.malappose(stent, seed, 1.0)
        assert _draws(seed) == (lesions, stent, distractors)  # nothing else drawn moves
        assert replace(got, **{k: getattr(stent, k) for k in MAL_FIELDS}) == stent
        assert got.mal_center_deg is not None and 0.15 <= got.malapposition_mm <= 0.6
        assert stent.start <= got.mal_start and got.mal_start + 3 <= got.mal_stop <= stent.stop
    assert windows < stents  # the default draw leaves some stents without a window
    half = [draw.malappose(_draws(s)[1], s, 0.5) != _draws(s)[1] for s in range(60)]
    assert 0.3 < np.mean(half) < 0.7


def test_malapposition_share_through_a_build_stands_struts_off(tmp_path):
    import json

    import pandas as pd

    real = _stand_in_real(tmp_path)
    got = {}
    for share in (0.0, 1.0):
        mix = draw.LesionMix(stent_share=1.0, malapposition_share=share)
        p = cohort.hybrid_from_real(real, tmp_path / f"m{share}", seed=3, mix=mix)
        got[share] = (p, pd.read_csv(tmp_path / f"m{share}" / "truth/struts.csv"))
    (p0, _), (p1, s1) = got[0.0], got[1.0]
    params = json.loads((tmp_path / "m1.0/params.json").read_text())
    assert params["malapposition_share"] == 1.0
    for key in ("lesions", "lipid_lesions", "branches"):
        assert p0[key] == p1[key]
    assert (p1["stent"]["start"], p1["stent"]["stop"]) == (
        p0["stent"]["start"],
        p0["stent"]["stop"],
    )
    window = s1[(s1.frame >= p1["stent"]["mal_start"]) & (s1.frame < p1["stent"]["mal_stop"])]
    assert window.distance_mm.max() > 0.1  # struts stand off the wall inside the window
    assert s1.malapposed.sum() == (s1.distance_mm > 0.09).sum() > 0
    outside = s1.drop(window.index)
    assert (outside.distance_mm < 0.05).all()  # and lie on it elsewhere


def _draws(seed: int, n: int = 137):
    rng = np.random.default_rng(seed)
    lesions = draw.draw_lesions(rng, n)
    stent = draw.draw_stent(rng, n)
    return lesions, stent, draw.draw_distractors(rng, n, lesions)


def test_stent_share_puts_a_stent_over_a_lesion_and_keeps_every_other_draw():
    moved = 0
    for seed in range(40):
        lesions, stent, distractors = _draws(seed)
        assert draw.place_stent(stent, lesions, seed, 137, 0.0) is stent
        assert draw.place_stent(stent, [], seed, 137, 1.0) is stent
        placed = draw.place_stent(stent, lesions, seed, 137, 1.0)
        assert _draws(seed)[0::2] == (lesions, distractors)  # its own stream: nothing else moves
        mids = [(les.start + les.stop - 1) // 2 for les in lesions]
        assert placed is not None and any(placed.start <= m < placed.stop for m in mids)
        assert 0 <= placed.start and placed.stop <= 137
        if stent is None:
            continue
        moved += placed != stent
        shift = placed.start - stent.start
        assert placed.stop - placed.start == stent.stop - stent.start
        if stent.mal_center_deg is None:
            assert replace(placed, start=stent.start, stop=stent.stop) == stent
        else:  # the malapposition window moves with the stent
            assert (placed.mal_start, placed.mal_stop) == (
                stent.mal_start + shift,
                stent.mal_stop + shift,
            )
            assert placed.start <= placed.mal_start and placed.mal_stop <= placed.stop
    assert moved > 20  # most drawn stents lie elsewhere than over a lesion's middle
    half = [
        draw.place_stent(_draws(s)[1], _draws(s)[0], s, 137, 0.5) != _draws(s)[1] for s in range(40)
    ]
    assert 0.3 < np.mean(half) < 0.7


def _stand_in_real(tmp_path):
    """A 16-frame real-like pseudo-pullback folder (polar image and lumen labels)."""
    from octseg.core import atomic
    from octseg.io.labels import save_labels

    img, lab = stand_in(n=16, seed=4, shadow=(40, 62))
    (tmp_path / "real").mkdir()
    atomic.save_npz(
        tmp_path / "real/image.npz",
        frames=np.rint(img * 255).astype(np.uint8),
        space=np.array("polar"),
        pixel_spacing_mm=np.float64(PS),
        frame_spacing_mm=np.float64(0.2),
    )
    lf = LabelFile(labels=lab, space="polar", pixel_spacing_mm=PS, frame_spacing_mm=0.2)
    save_labels(tmp_path / "real/labels.npz", lf)
    return tmp_path / "real"


def test_stent_share_through_a_build_moves_only_the_stent(tmp_path):
    import json

    import pandas as pd

    real = _stand_in_real(tmp_path)
    got = {}
    for share in (0.0, 1.0):
        out = tmp_path / f"s{share}"
        mix = draw.LesionMix(stent_share=share)
        got[share] = (cohort.hybrid_from_real(real, out, seed=3, mix=mix), out)
    (p0, out0), (p1, out1) = got[0.0], got[1.0]
    assert json.loads((out1 / "params.json").read_text())["stent_share"] == 1.0
    for key in ("lesions", "lipid_lesions", "branches"):
        assert p0[key] == p1[key]
    mids = [(les["start"] + les["stop"] - 1) // 2 for les in p1["lesions"]]
    assert any(p1["stent"]["start"] <= m < p1["stent"]["stop"] for m in mids)
    calcium = [c for c in pd.read_csv(out0 / "truth/frames.csv").columns if "calcium" in c]
    truth = [pd.read_csv(o / "truth/frames.csv")[calcium] for o in (out0, out1)]
    pd.testing.assert_frame_equal(*truth)  # the calcium truth does not see the struts
    stented = {r["frame"] for r in pd.read_csv(out1 / "truth/struts.csv").to_dict("records")}
    assert stented and stented <= set(range(p1["stent"]["start"], p1["stent"]["stop"]))


def test_distractor_frames_hold_no_calcium_and_their_truth_matches():
    img, lab = stand_in(n=30, seed=5, shadow=(40, 62))
    rng = np.random.default_rng(2)
    lesions = [draw.CalciumLesion(0, 8, 200.0, 100.0, 0.1, 0.4)]
    lipids, branches = draw.draw_distractors(rng, 30, lesions)
    lipids = lipids or [draw.LipidLesion(10, 18, 150.0, 160.0, 50.0, 150.0, 0.5)]
    branches = branches or [draw.SideBranch(22, 27, 300.0, 0.6)]
    record: list[dict] = []
    _, new_lab, rows, _ = cohort.make_hybrid(
        img,
        lab,
        PS,
        lesions,
        None,
        rng,
        frame_spacing_mm=0.2,
        lipids=lipids,
        branches=branches,
        record=record,
    )
    distract = [r["frame"] for r in record if r["lipid"] or r["branch"]]
    assert distract
    got = _measure(new_lab)
    for f in distract:
        assert not (new_lab[f] == CALCIUM).any()
        assert rows[f].get("calcium_arc_deg") is None
        assert not got[f].get("calcium_arc_deg")
    for f in [r["frame"] for r in record if r["lipid"]]:
        assert got[f]["lipid_arc_deg"] == pytest.approx(rows[f]["lipid_arc_deg"], abs=2.0)
        assert got[f]["cap_min_thickness_um"] == pytest.approx(
            rows[f]["cap_min_thickness_um"], abs=15.0
        )
        assert bool(got[f]["tcfa"]) == bool(rows[f]["tcfa"])
    for f in [r["frame"] for r in record if r["branch"]]:  # the lumen is closed across it
        assert got[f]["lumen_area_mm2"] == pytest.approx(rows[f]["lumen_area_mm2"], rel=0.02)


def test_hybrid_recipe_maps_plaque_classes_to_background():
    _, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    _, new_lab = insert_lipid(np.zeros(lab[0].shape, np.float32), lab[0], g, LIPIDS[0])
    classes, remap = _recipe(["experiment=hybrid"])
    assert FIBROUS_CAP not in classes and LIPID not in classes
    trained = _as_trained(new_lab, classes, remap)
    assert np.array_equal(
        trained[np.isin(new_lab, (FIBROUS_CAP, LIPID))],
        [BACKGROUND] * int(np.isin(new_lab, (FIBROUS_CAP, LIPID)).sum()),
    )
    assert np.array_equal(
        trained[~np.isin(new_lab, (FIBROUS_CAP, LIPID))],
        new_lab[~np.isin(new_lab, (FIBROUS_CAP, LIPID))],
    )


def test_draws_cover_every_kind_and_keep_distractors_off_calcium_frames():
    kinds, n_lipid, n_branch, several = set(), 0, 0, 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        lesions = draw.draw_lesions(rng, 137)
        lipids, branches = draw.draw_distractors(rng, 137, lesions)
        kinds |= {les.kind for les in lesions}
        calcium = np.zeros(137, dtype=bool)
        per_frame = np.zeros(137, dtype=int)
        for les in lesions:
            calcium[les.start : les.stop] = True
            per_frame[les.start : les.stop] += 1
        several += int((per_frame > 1).any())
        for d in [*lipids, *branches]:
            assert not calcium[max(d.start - 2, 0) : d.stop + 2].any()
        n_lipid += bool(lipids)
        n_branch += bool(branches)
    assert kinds == set(draw.CALCIUM_KINDS)
    assert n_lipid >= 25 and n_branch >= 25 and several >= 8


def test_faint_share_draws_faint_lesions_and_leaves_the_default_draws_alone():
    def contrasts(seed, share):
        rng = np.random.default_rng(seed)
        mix = draw.LesionMix(faint_share=share)
        return [les.contrast for les in draw.draw_lesions(rng, 137, mix=mix)]

    default = [c for seed in range(40) for c in contrasts(seed, 0.0)]
    faint = [c for seed in range(40) for c in contrasts(seed, 0.5)]
    assert all(draw.CONTRAST[0] <= c <= draw.CONTRAST[1] for c in default)
    # the default draws are those of a build without the option (no extra random draw)
    old = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        old += [les.contrast for les in draw.draw_lesions(rng, 137)]
    assert default == old
    lo = draw.FAINT_CONTRAST[0]
    share_default = np.mean(np.array(default) >= lo)  # 0.15 / 0.5 = 0.3 expected
    share_faint = np.mean(np.array(faint) >= lo)  # 0.5 + 0.5 * 0.3 = 0.65 expected
    assert len(default) > 150 and len(faint) > 150
    assert 0.2 < share_default < 0.4 and 0.55 < share_faint < 0.75
    assert max(faint) > draw.CONTRAST[1]  # up to 0.7: fainter than any default lesion


def test_thin_share_draws_thin_superficial_and_deep_lesions():
    def lesions(seed, share):
        rng = np.random.default_rng(seed)
        return draw.draw_lesions(rng, 137, mix=draw.LesionMix(thin_share=share))

    default = [les for seed in range(40) for les in lesions(seed, 0.0)]
    thin = [les for seed in range(40) for les in lesions(seed, 0.6)]
    hi = draw.THIN_THICKNESS_MM[1]

    def share_thin(ls):
        walls = [les for les in ls if les.kind != "nodule"]
        return np.mean([les.thickness_mm <= hi for les in walls])

    # default: superficial 0.2-0.9 (1/7 <= 0.3), deep 0.2-0.6 (1/4): about 0.17
    assert 0.08 < share_thin(default) < 0.28
    assert 0.55 < share_thin(thin) < 0.8  # 0.6 + 0.4 * 0.17 = 0.67 expected
    assert min(les.thickness_mm for les in thin) < 0.2  # thinner than any default lesion
    nodules = [les.thickness_mm for les in thin if les.kind == "nodule"]
    assert nodules and min(nodules) >= 0.3  # nodules keep their draw


def _recorded_builds(tmp_path, monkeypatch) -> tuple[list, Path]:
    """A real root with one training and one val block, and the list each build's mix is
    recorded in (``hybrid_from_real`` replaced: nothing is built)."""
    seen: list = []
    monkeypatch.setattr(
        cohort,
        "hybrid_from_real",
        lambda src, out, seed, mix, calcium_look: seen.append((mix, calcium_look)),
    )
    real = tmp_path / "real"
    real.mkdir()
    (real / "split.json").write_text('{"train": ["t"], "val": ["v"]}')
    return seen, real


def test_lesion_mix_applies_to_training_hybrids_only(tmp_path, monkeypatch):
    seen, real = _recorded_builds(tmp_path, monkeypatch)
    mix = draw.LesionMix(faint_share=0.4, thin_share=0.2)
    cohort.build_hybrid_dataset(real, tmp_path / "out", variants=2, mix=mix, progress=False)
    assert [m for m, _ in seen] == [mix, mix, draw.DEFAULT_MIX, draw.DEFAULT_MIX]
    with pytest.raises(ValueError, match="faint_share"):
        draw.LesionMix(faint_share=1.5)
    with pytest.raises(ValueError, match="thin_share"):
        draw.LesionMix(thin_share=-0.1)
    with pytest.raises(ValueError, match="media_share"):
        draw.LesionMix(media_share=2.0)
    with pytest.raises(ValueError, match="deep_share"):
        draw.LesionMix(deep_share=-0.5)
    with pytest.raises(ValueError, match="vasa_share"):
        draw.LesionMix(vasa_share=1.2)
    with pytest.raises(ValueError, match="stent_share"):
        draw.LesionMix(stent_share=1.01)
    with pytest.raises(ValueError, match="malapposition_share"):
        draw.LesionMix(malapposition_share=-0.01)


def test_build_command_passes_the_far_wall_and_past_field_shares_to_training(tmp_path, monkeypatch):
    seen, real = _recorded_builds(tmp_path, monkeypatch)
    argv = ["build", str(real), str(tmp_path / "out"), "--variants", "1"]
    assert cohort.main([*argv, "--far-wall-share", "0.5", "--past-field-share", "1"]) == 0
    train = draw.LesionMix(far_wall_share=0.5, past_field_share=1.0)
    assert [m for m, _ in seen] == [train, draw.DEFAULT_MIX]


def test_build_command_gives_the_calcium_look_to_training_and_val_hybrids(tmp_path, monkeypatch):
    seen, real = _recorded_builds(tmp_path, monkeypatch)
    argv = ["build", str(real), str(tmp_path / "out"), "--variants", "1"]
    assert cohort.main(argv) == 0
    assert [look for _, look in seen] == ["fade", "fade"]  # the default look
    seen.clear()
    assert cohort.main([*argv, "--calcium-look", "flat"]) == 0
    assert [look for _, look in seen] == ["flat", "flat"]
    with pytest.raises(SystemExit):
        cohort.main([*argv, "--calcium-look", "glossy"])


def test_media_band_darkens_tissue_behind_the_lesion_and_runs_past_its_ends():
    a, r, ps = 360, 200, 0.01  # one A-line per degree
    img = np.full((a, r), 0.6, np.float32)
    lab = np.zeros((a, r), np.uint8)
    lesion = np.zeros((a, r), bool)
    lesion[100:140, 60:80] = True  # far border at sample 79 (0.79 mm) on A-lines 100-139
    lab[lesion] = CALCIUM
    lab[120, 110:115] = 3  # a strut-like non-background pixel run in the band: left alone
    spec = MediaSpec(gap_mm=0.05, width_mm=0.2, darkness=0.8, extra_deg=20.0, edge_mm=0.01)
    out = insert_media_band(img, lab, lesion, spec, ps)
    # band from 79 + 1 + 5 = sample 85 to 105: dark (0.6 x 0.2) in its middle, gap kept bright
    assert out[110, 95] == pytest.approx(0.12, abs=0.01)
    assert out[110, 81] == pytest.approx(0.6, abs=0.01)  # the tissue between lesion and band
    assert np.allclose(out[110, :80], 0.6) and np.allclose(out[110, 115:], 0.6, atol=1e-3)
    assert np.allclose(out[120, 110:115], 0.6)  # not background: unchanged
    # past the lesion's end at A-line 139 the band fades over 20 A-lines at the same depth
    assert out[145, 95] < 0.4 and out[155, 95] > out[145, 95]
    assert np.allclose(out[165:, :], 0.6) and np.allclose(out[:75, :], 0.6)
    assert out.dtype == np.float32 and np.array_equal(
        insert_media_band(img, lab, np.zeros_like(lesion), spec, ps), img
    )
    with pytest.raises(ValueError, match="media band"):
        MediaSpec(darkness=0.0)


def _composed(*lesions):
    """Each lesion alone inserted into the stand-in frame at the first one's middle frame, with
    the same random stream: ``cohort._insert_calcium_all``'s (image, labels, specs) for each."""
    img, lab = (x[0] for x in stand_in())
    g = lumen_geometry(lab, PS)
    f = (lesions[0].start + lesions[0].stop) // 2
    forbidden = np.zeros(720, bool)
    return [
        cohort._insert_calcium_all(
            img, lab, g, [x], f, forbidden, PS, np.random.default_rng(0), fade=True
        )
        for x in lesions
    ]


def test_media_share_gives_bands_to_wall_lesions_and_keeps_the_labels():
    def lesions(seed, share):
        ls = draw.draw_lesions(np.random.default_rng(seed), 137)
        draw.add_media(ls, seed, share)
        return ls

    assert all(les.media is None for seed in range(30) for les in lesions(seed, 0.0))
    banded = [les for seed in range(30) for les in lesions(seed, 1.0)]
    assert all((les.media is not None) == (les.kind != "nodule") for les in banded)
    specs = [les.media for les in banded if les.media is not None]
    # diffuse inner border (calcium's are 1-2 px), bright tissue before it, only behind
    assert all(0.03 <= m.edge_mm <= 0.08 and m.gap_mm >= m.edge_mm + 0.02 for m in specs)
    assert all(m.extra_deg == 0 and 0.5 <= m.darkness <= 0.85 for m in specs)
    half = [les for seed in range(30) for les in lesions(seed, 0.5) if les.kind != "nodule"]
    assert 0.35 < np.mean([les.media is not None for les in half]) < 0.65
    # the lesions themselves are those of the build without bands
    plain_draw = [
        les for seed in range(30) for les in draw.draw_lesions(np.random.default_rng(seed), 137)
    ]
    assert [replace(les, media=None) for les in banded] == plain_draw
    # through the frame composition: same labels with and without the band, darker image
    les = next(x for x in banded if x.media is not None)
    outs = _composed(replace(les, media=None), les)
    assert np.array_equal(outs[0][1], outs[1][1])
    diff = outs[0][0] - outs[1][0]
    assert diff.min() >= 0 and diff.max() > 0.05
    assert not diff[outs[1][1] != BACKGROUND].any()


def test_deep_share_moves_superficial_lesions_deep_and_keeps_every_other_draw():
    def lesions(seed, share):
        ls = draw.draw_lesions(np.random.default_rng(seed), 137)
        draw.make_deep(ls, seed, share)
        return ls

    plain = [les for seed in range(40) for les in lesions(seed, 0.0)]
    assert plain == [
        les for seed in range(40) for les in draw.draw_lesions(np.random.default_rng(seed), 137)
    ]
    half = [les for seed in range(40) for les in lesions(seed, 0.5)]
    moved = [b for a, b in zip(plain, half, strict=True) if a.kind != b.kind]
    superficial = [a for a in plain if a.kind == "superficial"]
    assert len(superficial) > 60 and 0.35 < len(moved) / len(superficial) < 0.65
    for a, b in zip(plain, half, strict=True):
        if a.kind == b.kind:
            assert a == b  # nodules, deep and the superficial ones left keep every draw
        else:
            assert (a.kind, b.kind) == ("superficial", "deep")
            assert 0.4 <= b.depth_mm <= 0.9 and 0.2 <= b.thickness_mm <= 0.6
            assert replace(b, kind=a.kind, depth_mm=a.depth_mm, thickness_mm=a.thickness_mm) == a
    # through the frame composition: the same lesion moved deep has its truth further out
    a, b = next((a, b) for a, b in zip(plain, half, strict=True) if a.kind != b.kind)
    first = []
    for _, out, _ in _composed(a, b):
        ca = out == CALCIUM
        first.append(np.argmax(ca, axis=1)[ca.any(1)].mean() * PS)  # first calcium sample
    # at least half the depth added (the stand-in lumen is not round; here 0.21 of 0.28 mm)
    assert first[1] - first[0] > 0.5 * (b.depth_mm - a.depth_mm) > 0.02


def _shared(make, deep: float, share: float) -> list:
    """The lesions of 40 seeds' default draws (137 frames) after ``make_deep(deep)`` and then
    ``make(share)``: a share applied on top of the deep share, as in
    ``cohort.hybrid_from_real``."""
    out = []
    for seed in range(40):
        ls = draw.draw_lesions(np.random.default_rng(seed), 137)
        draw.make_deep(ls, seed, deep)
        make(ls, seed, share)
        out += ls
    return out


def test_nodule_share_makes_superficial_lesions_nodules_and_keeps_every_other_draw():
    plain = _shared(draw.make_nodules, 0.0, 0.0)
    half = _shared(draw.make_nodules, 0.0, 0.5)
    moved = [b for a, b in zip(plain, half, strict=True) if a.kind != b.kind]
    superficial = [a for a in plain if a.kind == "superficial"]
    assert len(superficial) > 60 and 0.35 < len(moved) / len(superficial) < 0.65
    drawn = [a for a in plain if a.kind == "nodule"]
    for a, b in zip(plain, half, strict=True):
        if a.kind == b.kind:
            assert a == b  # deep lesions, drawn nodules and the superficial ones left
        else:
            assert (a.kind, b.kind) == ("superficial", "nodule")
            assert b.depth_mm == 0 and 30 <= b.arc_deg <= 100 and 0.15 <= b.bulge_mm <= 0.45
            assert 0.3 <= b.rim <= 1.0 and b.end_power == 2.0
            shape = {"arc_deg", "bulge_mm", "thickness_mm", "rim", "end_power", "depth_mm"}
            assert replace(b, kind="superficial", **{k: getattr(a, k) for k in shape}) == a
    # the same ranges as the nodules the default draw makes
    for name in ("arc_deg", "bulge_mm", "thickness_mm", "rim"):
        lo, hi = min(getattr(x, name) for x in drawn), max(getattr(x, name) for x in drawn)
        assert all(lo - 0.1 * (hi - lo) <= getattr(b, name) <= hi + 0.1 * (hi - lo) for b in moved)
    # after the deep share: only the superficial lesions it left become nodules
    both = _shared(draw.make_nodules, 0.5, 1.0)
    deep_only = _shared(draw.make_nodules, 0.5, 0.0)
    for a, b in zip(deep_only, both, strict=True):
        assert b.kind == ("nodule" if a.kind == "superficial" else a.kind)
    # through the frame composition: a made nodule bulges into the lumen (calcium where the
    # same lesion without bulge leaves lumen); one whose top would near the catheter is left out
    inserted = 0
    for b in moved[:6]:
        (_, nod, specs), (_, flat, _) = _composed(b)[0], _composed(replace(b, bulge_mm=0.0))[0]
        if specs:
            inserted += 1
            assert ((nod == CALCIUM) & (flat == LUMEN)).sum() > 100
    assert inserted >= 3


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--faint-share", "-1"),
        ("--thin-share", "2"),
        ("--media-share", "1.01"),
        ("--deep-share", "1.5"),
        ("--nodule-share", "-0.1"),
        ("--vasa-share", "3"),
        ("--stent-share", "1.5"),
        ("--malapposition-share", "2"),
        ("--past-field-share", "1.2"),
        ("--far-wall-share", "-0.5"),
    ],
)
def test_share_options_are_checked_on_the_command_line(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as e:
        cohort.main(["build", str(tmp_path), str(tmp_path / "out"), option, value])
    assert e.value.code == 2
    assert f"{option}: a share must be in [0, 1], got {value}" in capsys.readouterr().err


def test_inserts_keep_off_real_lumen_beyond_the_contour():
    """A lumen island the expert labelled beyond the wall (a branch) is not the measured lumen;
    calcium there would get a hole (only background is relabelled), so inserts keep off it."""
    from octseg.datasets.hybrid.insert import polar_xy

    img, lab = stand_in(n=1, seed=6, shadow=None)
    yy, xx = polar_xy(*lab[0].shape, PS)
    c = lumen_geometry(lab[0], PS).point(math.radians(200.0), 1.35)
    lab[0][np.hypot(yy - c[0], xx - c[1]) < 0.15] = LUMEN  # island 0.3 mm behind the wall
    g = lumen_geometry(lab[0], PS)
    beyond = bins.lumen_beyond_bins(lab[0], g)
    assert beyond[400] and not beyond[0] and not beyond[200]  # 200 degrees covered, 0 and 100 not
    lesion = draw.CalciumLesion(0, 1, 200.0, 120.0, 0.1, 0.5)
    _, new_lab, rows, _ = cohort.make_hybrid(
        img, lab, PS, [lesion], None, np.random.default_rng(0), frame_spacing_mm=0.2
    )
    assert rows[0]["calcium_arc_deg"] < 60.0  # trimmed to one side of the island
    _check_calcium(_measure(new_lab)[0], rows[0])


def test_hybrid_from_real_refuses_real_plaque_labels(tmp_path):
    """A real dataset built with --plaque holds expert cap/lipid labels: inserts would leave
    holes in calcium there and the truth would miss them, so the build stops, naming the file."""
    img, lab = stand_in(n=2, seed=3, shadow=None)
    ok = tmp_path / "real-ok"
    cohort.write_pullback(ok, img, lab, PS, 0.2, [], [], {})
    cohort.hybrid_from_real(ok, tmp_path / "hyb-ok", seed=0)  # lumen-only labels: built
    assert (tmp_path / "hyb-ok" / "truth" / "frames.csv").is_file()
    lab = lab.copy()
    lab[1, 100:110, 120:130] = LIPID
    bad = tmp_path / "real-plaque"
    cohort.write_pullback(bad, img, lab, PS, 0.2, [], [], {})
    with pytest.raises(InputError, match=r"label classes \[6\] besides background and lumen") as e:
        cohort.hybrid_from_real(bad, tmp_path / "hyb-bad", seed=0)
    assert str(bad / "labels.npz") in str(e.value)
    assert not (tmp_path / "hyb-bad").exists()


def test_irregular_outline_changes_slowly_along_a_lesion():
    """One outline per lesion whose harmonics drift slowly: neighbouring frames (the 2.5D
    context) show nearly the same irregular shape, frames far apart a different one."""
    lesion = draw.CalciumLesion(0, 40, 60.0, 120.0, 0.08, 0.5, irregularity=0.45, shape_seed=3)
    _, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    phi = np.radians(np.linspace(15.0, 105.0, 181))

    def outer(frame: int) -> np.ndarray:
        spec = lesion.at(frame)
        spec = CalciumSpec(**{**spec.__dict__, "arc_deg": 120.0, "thickness_mm": 0.5})
        r = np.linspace(0.1, 3.0, 2901)[:, None]
        y, x = g.centroid[0] + r * np.sin(phi), g.centroid[1] + r * np.cos(phi)
        from octseg.datasets.hybrid.insert import calcium_margin

        inside = calcium_margin(g, spec, y, x)[0] >= 0
        return np.where(inside.any(0), r[::-1][np.argmax(inside[::-1], 0), 0], np.nan)

    a, b, far = outer(20), outer(21), outer(39)
    step = np.nanmax(np.abs(b - a))
    assert step < 0.1 * 0.5  # one frame apart: the outer border moves < 10% of the thickness
    assert np.nanmax(np.abs(far - a)) > 3 * step  # 19 frames apart: visibly another outline


def test_a_lesion_past_the_field_is_cut_by_its_edge_not_trimmed_away():
    img, lab = stand_in(n=1, shadow=None)
    img, lab = img[0], lab[0]
    g = lumen_geometry(lab, PS)
    field = (R - 1) * PS  # 2.19 mm; the lumen reaches about 1 mm
    les = draw.CalciumLesion(0, 1, center_deg=90.0, arc_deg=80.0, depth_mm=0.3, thickness_mm=1.6)
    spec = les.at(0)
    full = bins.field_bins(g, spec, field)
    front = bins.field_bins(g, spec, field, past_field=True)
    assert full.all() and not front.all() and (front <= full).all()
    rng = np.random.default_rng(0)
    free = np.zeros(720, bool)
    _, inside, done = cohort._insert_calcium_all(img, lab, g, [les], 0, free, PS, rng, True)
    assert done == [] and not (inside == CALCIUM).any()  # trimmed away: it does not fit
    les.past_field = True
    _, cut, done = cohort._insert_calcium_all(img, lab, g, [les], 0, free, PS, rng, True)
    assert len(done) == 1
    ca = cut == CALCIUM
    assert ca[:, -1].any()  # the calcium runs to the field's last sample: cut there
    assert ca.sum(axis=1).max() < R  # and starts behind the lumen border


def _params_without_and_with(tmp_path, share: str) -> tuple[dict, dict, Path]:
    """The params.json of the stand-in real block's seed-2 hybrid built with ``share`` 0 and 1
    (and the real folder)."""
    import json

    real = _stand_in_real(tmp_path)
    got = {}
    for v in (0.0, 1.0):
        cohort.hybrid_from_real(real, tmp_path / f"p{v}", seed=2, mix=draw.LesionMix(**{share: v}))
        got[v] = json.loads((tmp_path / f"p{v}/params.json").read_text())
    return got[0.0], got[1.0], real


def test_past_field_share_flags_lesions_from_its_own_stream(tmp_path):
    p0, p1, _ = _params_without_and_with(tmp_path, "past_field_share")
    assert p1["past_field_share"] == 1.0
    flags = [les.pop("past_field") for les in p1["lesions"]]
    kinds = [les["kind"] for les in p1["lesions"]]
    assert flags == [k != "nodule" for k in kinds] and any(flags)
    assert not any(les.pop("past_field") for les in p0["lesions"])
    assert p0["lesions"] == p1["lesions"]  # every other draw as without the share
    for key in ("lipid_lesions", "branches", "stent"):
        assert p0[key] == p1[key]


def test_thick_share_thickens_every_lesion_of_a_build_and_keeps_its_plan(tmp_path):
    p0, p1, _ = _params_without_and_with(tmp_path, "thick_share")
    assert p1["thick_share"] == 1.0 and p0["thick_share"] == 0.0
    thick = [les.pop("thickness_mm") for les in p1["lesions"]]
    assert thick and all(0.9 <= t <= 1.5 for t in thick)
    assert all(les.pop("thickness_mm") <= 0.9 for les in p0["lesions"])
    assert p0["lesions"] == p1["lesions"]  # the plan's other draws as without the share
    for key in ("lipid_lesions", "branches", "stent"):
        assert p0[key] == p1[key]


def test_farthest_wall_is_the_lumen_point_farthest_from_the_catheter():
    _, lab = stand_in(n=1, shadow=None)
    g = lumen_geometry(lab[0], PS)
    phi = math.radians(draw.farthest_wall_deg(g))
    y, x = g.point(phi, float(g.rho(phi)))
    deepest = (np.nonzero(lab[0] == LUMEN)[1].max() + 0.5) * PS  # polar: sample = distance
    assert abs(math.hypot(y, x) - deepest) < 1.5 * PS
    away = math.atan2(g.centroid[0], g.centroid[1])  # catheter -> centroid
    assert abs(wrap_pi(phi - away)) < math.radians(45)  # the side away from the catheter


def _moved_to_far_wall(before: list, after: list, labels, nodules: bool) -> int:
    """Asserts that of the lesions ``after`` exactly the nodules (``nodules``) or exactly the
    others were centred on their middle frame's farthest wall, and that nothing else changed
    from ``before``; returns how many moved."""
    moved = 0
    for a, b in zip(before, after, strict=True):
        centre0, centre1 = a.pop("center_deg"), b.pop("center_deg")
        chosen = (b["kind"] == "nodule") == nodules
        assert not a.pop("far_wall") and b.pop("far_wall") == chosen
        assert a == b  # every other draw as without the share
        if not chosen:
            assert centre1 == centre0
            continue
        mid = (b["start"] + b["stop"] - 1) // 2
        far = draw.farthest_wall_deg(lumen_geometry(labels[mid], PS))
        at_mid = centre1 + b["drift_deg_per_frame"] * (mid - b["start"])
        assert abs((at_mid - far + 180) % 360 - 180) <= draw.FAR_WALL_JITTER_DEG + 1e-6
        moved += 1
    return moved


def test_far_wall_share_centres_lesions_there_from_its_own_stream(tmp_path):
    p0, p1, real = _params_without_and_with(tmp_path, "far_wall_share")
    assert p1["far_wall_share"] == 1.0
    labels = load_labels(real / "labels.npz").labels
    assert _moved_to_far_wall(p0["lesions"], p1["lesions"], labels, nodules=False) > 0
    for key in ("lipid_lesions", "branches"):
        assert p0[key] == p1[key]


def test_far_wall_nodule_share_centres_only_nodules_from_a_stream_of_their_own(tmp_path):
    import json

    real = _stand_in_real(tmp_path)
    labels = load_labels(real / "labels.npz").labels
    got = {}
    for name, mix in (
        ("n", draw.LesionMix(nodule_share=1.0)),
        ("nf", draw.LesionMix(nodule_share=1.0, far_wall_nodule_share=1.0)),
    ):
        cohort.hybrid_from_real(real, tmp_path / name, seed=2, mix=mix)
        got[name] = json.loads((tmp_path / name / "params.json").read_text())
    assert got["nf"]["far_wall_nodule_share"] == 1.0
    for key in ("lipid_lesions", "branches", "stent"):
        assert got["n"][key] == got["nf"][key]
    assert _moved_to_far_wall(got["n"]["lesions"], got["nf"]["lesions"], labels, nodules=True) > 0


def test_far_wall_nodule_share_leaves_the_far_wall_share_draws_as_they_were(tmp_path):
    import json

    real = _stand_in_real(tmp_path)
    got = {}
    for name, extra in (("f", {}), ("fn", {"far_wall_nodule_share": 1.0})):
        mix = draw.LesionMix(nodule_share=0.3, far_wall_share=1.0, **extra)
        cohort.hybrid_from_real(real, tmp_path / name, seed=2, mix=mix)
        got[name] = json.loads((tmp_path / name / "params.json").read_text())
    pairs = list(zip(got["f"]["lesions"], got["fn"]["lesions"], strict=True))
    kinds = {b["kind"] for _, b in pairs}
    assert {"nodule"} < kinds  # nodules and other lesions both drawn
    for a, b in pairs:
        if b["kind"] != "nodule":
            assert a == b  # stream [seed, 8] as before: the same centres, the same flags
        else:
            assert b["far_wall"] and not a["far_wall"]


def test_thick_share_draws_lesions_thick_and_keeps_every_other_draw():
    plain = _shared(draw.make_thick, 0.0, 0.0)
    half = _shared(draw.make_thick, 0.0, 0.5)
    assert max(a.thickness_mm for a in plain) <= 0.9  # the default draw's cap
    thick = [b for a, b in zip(plain, half, strict=True) if a != b]
    assert 0.35 < len(thick) / len(plain) < 0.65
    assert {b.kind for b in thick} == {"superficial", "deep", "nodule"}
    for a, b in zip(plain, half, strict=True):
        if a != b:  # only the thickness changes
            assert 0.9 <= b.thickness_mm <= 1.5
            assert replace(b, thickness_mm=a.thickness_mm) == a
    # after the deep share: the same lesions, moved deep or not, are drawn thick
    both = _shared(draw.make_thick, 0.5, 0.5)
    deep_only = _shared(draw.make_thick, 0.5, 0.0)
    for a, b, c in zip(plain, half, both, strict=True):
        assert (c.thickness_mm >= 0.9) == (a != b)
    assert [replace(c, thickness_mm=0) for c in both] == [
        replace(d, thickness_mm=0) for d in deep_only
    ]
    # through the frame composition: a thick lesion's truth reaches further behind the lumen
    # (where it fits in the small stand-in's field: most would leave it and are not inserted)
    grown = []
    for a, b in [(a, b) for a, b in zip(plain, half, strict=True) if a != b]:
        extents = [(out == CALCIUM).sum(axis=1).max() * PS for _, out, _ in _composed(a, b)]
        if extents[1] > 0:
            grown.append(extents[1] - extents[0] > 0.3 * (b.thickness_mm - a.thickness_mm) > 0)
    assert grown and all(grown)


def test_fading_calcium_build_keeps_every_draw_and_the_truth(tmp_path):
    """The two calcium looks of one seed: same labels, truth and draws; only calcium pixels
    (and their anti-aliased ring) differ, and the look is recorded."""
    import json

    real = _stand_in_real(tmp_path)
    out = {look: tmp_path / look for look in ("flat", "fade")}
    params = {
        look: cohort.hybrid_from_real(real, path, seed=5, calcium_look=look)
        for look, path in out.items()
    }
    saved = json.loads((out["fade"] / "params.json").read_text())
    assert saved["calcium_look"] == "fade" and params["flat"]["calcium_look"] == "flat"
    for key in ("lesions", "lipid_lesions", "branches", "vasa_vasorum", "stent", "frames"):
        assert params["flat"][key] == params["fade"][key]
    for name in ("truth/frames.csv", "truth/struts.csv"):
        assert (out["flat"] / name).read_text() == (out["fade"] / name).read_text()
    lab = load_labels(out["flat"] / "labels.npz").labels
    assert np.array_equal(lab, load_labels(out["fade"] / "labels.npz").labels)
    img = {look: np.load(path / "image.npz")["frames"] for look, path in out.items()}
    changed = img["flat"] != img["fade"]
    calcium = lab == CALCIUM
    assert changed[calcium].mean() > 0.5
    ring = ndimage.binary_dilation(calcium, np.ones((1, 3, 3), bool), iterations=2)
    assert not changed[~ring].any()
