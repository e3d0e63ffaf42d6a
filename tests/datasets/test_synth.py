"""The synthetic generator: labels agree with the parameters, truth tables, CLI layout,
determinism and plausible image statistics. Tiny grids only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from octseg.cli import main
from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.datasets.synth import Grid, PullbackParams, PullbackSynth, draw_pullback
from octseg.datasets.synth.anatomy import TWO_PI
from octseg.geometry.tables import (
    FRAME_COLUMNS,
    MANUAL_FRAME_COLUMNS,
    MANUAL_LESION_COLUMNS,
    MANUAL_STRUT_COLUMNS,
    STRUT_COLUMNS,
    read_csv,
    read_summary,
)
from octseg.io.labels import load_labels

# fine angular sampling (like a real system), short A-lines, a short pullback
GRID = Grid(n_alines=504, n_samples=200, pixel_spacing_mm=0.025, n_frames=64, frame_spacing_mm=0.3)
TINY = ["--preset", "small", "--n-frames", "48", "--frame-spacing", "0.3", "--quiet"]


@pytest.fixture(scope="module")
def synths() -> dict[int, PullbackSynth]:
    # index % 3: 0 lesion away from the guidewire, 1 straddles angle 0, 2 interrupted by it
    return {i: PullbackSynth(draw_pullback(GRID, 3, i)) for i in range(3)}


def _macro(s: PullbackSynth):
    return next(x for x in s.p.lesions if x.kind == "macro")


def _mid(les) -> int:
    return (les.start_frame + les.end_frame) // 2


def _pixel_xy(n_alines: int, n_samples: int, ps: float) -> tuple[np.ndarray, np.ndarray]:
    th = np.arange(n_alines) * TWO_PI / n_alines
    r = np.arange(n_samples) * ps
    return np.sin(th)[:, None] * r, np.cos(th)[:, None] * r


def _sample(lab: np.ndarray, y: np.ndarray, x: np.ndarray, ps: float) -> np.ndarray:
    a = lab.shape[0]
    th = np.remainder(np.arctan2(y, x), TWO_PI)
    i = np.round(th / TWO_PI * a).astype(int) % a
    j = np.round(np.hypot(y, x) / ps).astype(int)
    return lab[i, np.clip(j, 0, lab.shape[1] - 1)]


def _arc_span_deg(angles: np.ndarray) -> float:
    """Angular measure covered by a set of angles: 360 minus the largest circular gap."""
    a = np.sort(np.remainder(angles, TWO_PI))
    gaps = np.diff(np.r_[a, a[0] + TWO_PI])
    return math.degrees(TWO_PI - gaps.max())


@pytest.mark.parametrize("index", [0, 1])
def test_calcium_pixels_span_the_requested_arc(synths, index):
    s = synths[index]
    les = _macro(s)
    f = _mid(les)
    geo = s.geometry(f)
    _, lab = s.frame(f)
    y, x = _pixel_xy(GRID.n_alines, GRID.n_samples, GRID.pixel_spacing_mm)
    ca = lab == CALCIUM
    ang = np.arctan2(y[ca] - geo.centroid[0], x[ca] - geo.centroid[1])
    want = les.per_frame(np.array([f]))["arc_deg"][0]
    assert abs(_arc_span_deg(ang) - want) < 1.5
    # every calcium pixel lies inside the stated arc about the TRUE lumen centroid
    act = geo.lesions[0]
    u = act.arc_position(np.remainder(ang, TWO_PI))
    assert np.all((u <= 1.0) | (u * act.arc - TWO_PI > -math.radians(0.1)))
    if index == 1:  # this lesion straddles angle 0
        deg = np.degrees(np.remainder(ang, TWO_PI))
        assert (deg < 5).any() and (deg > 355).any()


def test_calcium_thickness_and_depth_within_two_pixels(synths):
    s = synths[0]
    les = _macro(s)
    ps = GRID.pixel_spacing_mm
    for f in (les.start_frame + 2, _mid(les)):
        geo = s.geometry(f)
        _, lab = s.frame(f)
        act = geo.lesions[0]
        for u in (0.15, 0.5, 0.85):
            phi = act.start + u * act.arc
            rl = float(geo.rho_lumen(np.array([phi]))[0])
            rho = np.arange(0, 5.0, ps / 8)
            y = geo.centroid[0] + rho * math.sin(phi)
            x = geo.centroid[1] + rho * math.cos(phi)
            on = _sample(lab, y, x, ps) == CALCIUM
            assert on.any()
            first, last = rho[on][0], rho[on][-1]
            assert abs((first - rl) - float(act.depth_at(u))) <= 2 * ps
            assert abs((last - first) - float(act.thickness_at(u))) <= 2 * ps


def test_struts_blobs_at_true_positions(synths):
    s = synths[0]
    st = s.p.stent
    ps = GRID.pixel_spacing_mm
    a = GRID.n_alines
    checked = 0
    for f in (st.start_frame + 1, (st.start_frame + st.end_frame) // 2, st.end_frame - 1):
        geo = s.geometry(f)
        _, lab = s.frame(f)
        # roll so that no blob straddles the A-line seam
        shift = -int(np.argmin((lab == STRUT).any(axis=1)))  # a strut-free A-line first
        comp, n = ndimage.label(np.roll(lab == STRUT, shift, axis=0), np.ones((3, 3)))
        assert n == len(geo.struts) >= 3
        cents = np.array(ndimage.center_of_mass(np.ones_like(comp), comp, range(1, n + 1)))
        th = np.remainder(np.arctan2(geo.struts[:, 0], geo.struts[:, 1]), TWO_PI)
        want_rows = np.remainder(th / TWO_PI * a + shift, a)
        want_cols = np.hypot(geo.struts[:, 0], geo.struts[:, 1]) / ps
        for row, col in zip(want_rows, want_cols):
            d = np.hypot(cents[:, 0] - row, cents[:, 1] - col)
            assert d.min() <= 2.0
            checked += 1
    assert checked >= 9


def test_malapposed_struts_sit_inside_the_lumen_by_their_distance(synths):
    s = next(x for x in synths.values() if x.p.stent.malapposition is not None)
    mal = s.p.stent.malapposition
    f = (mal.start_frame + mal.end_frame) // 2
    geo = s.geometry(f)
    assert geo.strut_distance.max() > 0.09  # some struts are malapposed
    rl = geo.rho_lumen(geo.strut_angles)
    r = np.hypot(*(geo.struts - geo.centroid).T)
    np.testing.assert_allclose(rl - r, geo.strut_distance, atol=1e-9)
    _, lab = s.frame(f)
    ps = GRID.pixel_spacing_mm
    # the lumen contour lies beyond a malapposed strut along its ray: lumen pixels in between
    k = int(np.argmax(geo.strut_distance))
    phi = geo.strut_angles[k]
    rho = np.linspace(r[k] + 0.05, rl[k] - 2 * ps, 5)
    y = geo.centroid[0] + rho * math.sin(phi)
    x = geo.centroid[1] + rho * math.cos(phi)
    assert np.all(np.isin(_sample(lab, y, x, ps), (LUMEN, STRUT, GUIDEWIRE)))


def test_guidewire_sector_and_catheter_inside_lumen(synths):
    s = synths[2]
    cath = int(s.p.lumen.catheter_radius_mm / GRID.pixel_spacing_mm)
    for f in (0, GRID.n_frames // 2, GRID.n_frames - 1):
        geo = s.geometry(f)
        _, lab = s.frame(f)
        assert np.all(lab[:, :cath] == LUMEN)
        gw_rows = np.nonzero((lab == GUIDEWIRE).any(axis=1))[0]
        assert 3 <= gw_rows.size < GRID.n_alines // 4
        # class 4 runs from the guidewire to the end of the A-line
        assert np.all(lab[gw_rows, -1] == GUIDEWIRE)
        row = int(round(geo.gw_angle % TWO_PI / TWO_PI * GRID.n_alines)) % GRID.n_alines
        assert row in gw_rows
        # the lumen label matches the exact lumen area (polar pixel areas r dr dtheta)
        r = np.arange(GRID.n_samples) * GRID.pixel_spacing_mm
        inside = r[None, :] < geo.rho_cat[:, None]
        area = (inside * r[None, :]).sum() * GRID.pixel_spacing_mm * TWO_PI / GRID.n_alines
        assert abs(area - geo.area) / geo.area < 0.02


def test_truth_arc_is_bridged_across_the_guidewire_shadow(synths):
    from octseg.datasets.synth.truth import calcium_truth

    s = synths[2]
    les = _macro(s)
    bridged = 0
    for f in range(les.start_frame, les.end_frame + 1):
        geo = s.geometry(f)
        t = calcium_truth(geo, GRID.depth_mm, GRID.pixel_spacing_mm)
        want = les.per_frame(np.array([f]))["arc_deg"][0]
        assert t["calcium_arc_deg"] <= want + 0.1
        _, lab = s.frame(f)
        gw_behind = (lab[:, -1] == GUIDEWIRE).sum()
        if abs(t["calcium_arc_deg"] - want) < 0.1:
            bridged += 1
        assert t["calcium_max_thickness_mm"] <= geo.lesions[0].thickness + 1e-6
        assert gw_behind > 0
    # the shadow interrupts the calcium in the middle, and bridging restores the full arc
    assert bridged >= (les.end_frame - les.start_frame + 1) // 2


def test_truth_tables_and_summary(synths):
    s = synths[0]
    rows, struts, summary = s.truth()
    assert len(rows) == GRID.n_frames
    assert all(set(r) == set(FRAME_COLUMNS) for r in rows)
    assert all(set(t) == set(STRUT_COLUMNS) for t in struts)
    kinds = sorted(x["kind"] for x in summary["calcium_lesions"])
    assert kinds == ["macro", "spotty"]
    macro = next(x for x in summary["calcium_lesions"] if x["kind"] == "macro")
    les = _macro(s)
    assert macro["start_frame"] == les.start_frame and macro["end_frame"] == les.end_frame
    assert abs(macro["max_arc_deg"] - les.arc_deg) < 0.2
    assert abs(macro["max_thickness_mm"] - les.thickness_mm) < 0.01
    st = summary["stent"]
    assert (st["start_frame"], st["end_frame"]) == (s.p.stent.start_frame, s.p.stent.end_frame)
    assert st["msa_mm2"] < min(st["reference_proximal_area_mm2"], st["reference_distal_area_mm2"])
    assert st["n_struts"] == len(struts)
    # stent area close to the lumen area where all struts are apposed and none hidden
    no_mal = [r for r in rows if r["n_struts"] >= 12 and r["n_malapposed"] == 0]
    for r in no_mal:
        assert abs(r["stent_area_mm2"] - r["lumen_area_mm2"]) / r["lumen_area_mm2"] < 0.08


def test_cohort_covers_every_calcium_score():
    scores = set()
    grid = Grid(n_alines=64, n_samples=64, pixel_spacing_mm=0.07, n_frames=64, frame_spacing_mm=0.3)
    for i in range(4):
        _, _, summary = PullbackSynth(draw_pullback(grid, 11, i)).truth()
        scores |= {x["calcium_score"] for x in summary["calcium_lesions"]}
    assert scores == {0, 1, 2, 3, 4}


def test_image_statistics(synths):
    s = synths[0]
    les = _macro(s)
    img, lab = s.frame(_mid(les))
    assert img.dtype == np.uint8 and img.shape == (GRID.n_alines, GRID.n_samples)
    ps = GRID.pixel_spacing_mm
    r = np.arange(GRID.n_samples)[None, :] * ps
    geo = s.geometry(_mid(les))
    depth = r - geo.rho_cat[:, None]
    lumen = (lab == LUMEN) & (r > s.p.lumen.catheter_radius_mm + 0.1)
    ca = lab == CALCIUM
    wall = (lab == BACKGROUND) & (depth > 0) & (depth < 0.3)
    # surrounding wall at the same depths as the calcium, away from strut shadows
    ca_depth = depth[ca]
    wall_same = (lab == BACKGROUND) & (depth >= ca_depth.min()) & (depth <= np.median(ca_depth))
    assert img[lumen].mean() + 60 < img[wall].mean()
    assert img[ca].mean() + 25 < img[wall_same].mean()
    assert img[lab == STRUT].mean() > np.percentile(img, 99)
    assert np.median(img[lab == GUIDEWIRE]) < 15  # the shadow is dark


def test_params_json_roundtrip(synths):
    p = synths[1].p
    d = json.loads(json.dumps(p.to_dict()))
    assert PullbackParams.from_dict(d).to_dict() == p.to_dict()


def test_cli_writes_the_dataset_layout(tmp_path, capsys):
    out = tmp_path / "cohort"
    small = ["--n-alines", "96", "--n-samples", "128", "--cartesian-size", "160"]
    assert main(["synth", str(out), "--n", "2", "--seed", "5", "--cartesian", *small, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "synth-000" in printed and "synth-001" in printed
    assert json.loads((out / "dataset.json").read_text())["name"]
    for pid in ("synth-000", "synth-001"):
        d = out / pid
        with np.load(d / "image.npz") as z:
            frames = z["frames"]
            assert str(z["space"]) == "polar" and float(z["pixel_spacing_mm"]) == 0.03
            assert float(z["frame_spacing_mm"]) == 0.3
        assert frames.dtype == np.uint8 and frames.shape == (48, 96, 128)
        lf = load_labels(d / "labels.npz")
        assert lf.space == "polar" and lf.labels.shape == frames.shape
        assert set(np.unique(lf.labels)) == {0, 1, 2, 3, 4}
        lc = load_labels(d / "labels_cartesian.npz")
        assert lc.space == "cartesian" and lc.labels.shape == (48, 160, 160)
        with np.load(d / "image_cartesian.npz") as z:
            assert z["frames"].shape == (48, 160, 160) and str(z["space"]) == "cartesian"
        assert PullbackParams.from_dict(json.loads((d / "params.json").read_text()))
        rows = read_csv(d / "truth" / "frames.csv", required=FRAME_COLUMNS)
        assert len(rows) == 48
        read_csv(d / "truth" / "struts.csv", required=STRUT_COLUMNS)
        summary = read_summary(d / "truth" / "summary.json")
        assert summary["calcium_lesions"] and summary["stent"]
    mf = read_csv(out / "manual_frames.csv", required=MANUAL_FRAME_COLUMNS)
    assert {r["frame"] % 3 for r in mf} == {0}  # every 1 mm at 0.3 mm/frame -> every 3rd
    assert len(mf) == 2 * 16
    ml = read_csv(out / "manual_lesions.csv", required=MANUAL_LESION_COLUMNS)
    assert {r["kind"] for r in ml} <= {"macro", "spotty"} and len(ml) >= 2
    ms = read_csv(out / "manual_struts.csv", required=MANUAL_STRUT_COLUMNS)
    assert ms and {r["frame"] % 3 for r in ms} == {0}
    assert not list(out.rglob(".tmp-*"))


def test_same_seed_same_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    args = ["--n", "1", "--n-frames", "40", "--n-alines", "64", "--n-samples", "128"]
    for out, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert main(["synth", str(out), "--seed", seed, *args, *TINY]) == 0
    d = "synth-000"
    for name in ("image.npz", "params.json", "truth/frames.csv", "truth/struts.csv"):
        assert (a / d / name).read_bytes() == (b / d / name).read_bytes(), name
    for name in ("manual_frames.csv", "manual_lesions.csv", "dataset.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    np.testing.assert_array_equal(
        load_labels(a / d / "labels.npz").labels, load_labels(b / d / "labels.npz").labels
    )
    assert (a / d / "image.npz").read_bytes() != (c / d / "image.npz").read_bytes()


def test_bad_grid_is_a_clear_error(tmp_path, capsys):
    rc = main(["synth", str(tmp_path / "x"), "--n-samples", "40", *TINY])
    assert rc == 1
    assert "reach only" in capsys.readouterr().err


def test_ensure_cohort_reuses_a_matching_cohort(tmp_path):
    from octseg.datasets.synth.cohort import ensure_cohort

    root = ensure_cohort(tmp_path / "c", 1, seed=3, progress=False, log=None)
    stamp = (root / "synth-000" / "labels.npz").stat().st_mtime_ns
    messages = []
    ensure_cohort(root, 1, seed=3, progress=False, log=messages.append)
    assert "reusing" in messages[0]
    assert (root / "synth-000" / "labels.npz").stat().st_mtime_ns == stamp
    ensure_cohort(root, 1, seed=4, progress=False, log=messages.append)  # other seed: regenerated
    assert "generating" in messages[1]


def test_ensure_cohort_never_deletes_a_foreign_folder(tmp_path):
    from octseg.core.errors import InputError
    from octseg.datasets.synth.cohort import ensure_cohort

    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(InputError, match="not an octseg synthetic cohort"):
        ensure_cohort(mine, 1, seed=0, progress=False, log=None)
    assert (mine / "notes.txt").read_text() == "precious"
