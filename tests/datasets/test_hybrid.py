"""Hybrid frames: synthetic calcium and struts inserted into (real or stand-in) polar frames."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.datasets.hybrid import bins, cohort, draw
from octseg.datasets.hybrid.insert import (
    CalciumSpec,
    StrutSpec,
    calcium_columns,
    guidewire_sector,
    insert_calcium,
    insert_strut,
    lumen_geometry,
    polar_xy,
    strut_point,
)
from octseg.io.labels import LabelFile, load_labels

PS = 0.01
A, R = 360, 220


def stand_in(
    n: int = 1, seed: int = 0, shadow: tuple[int, int] | None = (40, 62)
) -> tuple[np.ndarray, np.ndarray]:
    """Polar frames like a real one: an off-centre, slightly wavy lumen (class 1) that is dark,
    speckled tissue whose signal decays with depth, and a guidewire shadow sector."""
    rng = np.random.default_rng(seed)
    yy, xx = polar_xy(A, R, PS)
    imgs, labs = [], []
    for f in range(n):
        cy, cx = 0.15 + 0.002 * f, -0.1
        phi = np.arctan2(yy - cy, xx - cx)
        rad = 0.9 + 0.08 * np.cos(2 * phi + 0.05 * f)
        lum = np.hypot(yy - cy, xx - cx) <= rad
        depth = np.clip(np.hypot(yy - cy, xx - cx) - rad, 0, None)
        tissue = 0.75 * np.exp(-depth / 0.7)
        img = np.where(lum, 0.04, tissue) * rng.gamma(4.0, 0.25, (A, R))
        if shadow is not None:
            img[shadow[0] : shadow[1]] *= np.where(lum[shadow[0] : shadow[1]], 1.0, 0.1)
        imgs.append(np.clip(img, 0, 1).astype(np.float32))
        labs.append(lum.astype(np.uint8) * LUMEN)
    return np.stack(imgs), np.stack(labs)


def real_block(path, n: int = 3, seed: int = 2):
    """A stand-in real polar block written as a hybrid pullback folder with nothing inserted
    (``image.npz``, ``labels.npz``, truth), as the probes in ``benchmarks/`` read one."""
    from octseg.datasets.hybrid import cohort

    img, lab = stand_in(n=n, seed=seed)
    im, lb, rows, struts = cohort.make_hybrid(
        img, lab, PS, [], None, np.random.default_rng(0), frame_spacing_mm=0.2
    )
    cohort.write_pullback(path, im, lb, PS, 0.2, rows, struts, {})
    return path


def test_lumen_geometry_of_an_off_centre_circle():
    yy, xx = polar_xy(A, R, PS)
    lab = (np.hypot(yy - 0.2, xx + 0.1) <= 1.0).astype(np.uint8)
    g = lumen_geometry(lab, PS)
    assert g.centroid == pytest.approx([0.2, -0.1], abs=0.01)
    assert np.allclose(g.rho(np.linspace(0, 6, 13)), 1.0, atol=0.012)


def _measure(labels: np.ndarray):
    from octseg.geometry import measure_labels

    lf = LabelFile(labels=labels, space="polar", pixel_spacing_mm=PS, frame_spacing_mm=0.2)
    return measure_labels(lf)


@pytest.mark.parametrize(
    "spec",
    [
        CalciumSpec(center_deg=200.0, arc_deg=90.0, depth_mm=0.1, thickness_mm=0.4),
        CalciumSpec(center_deg=10.0, arc_deg=150.0, depth_mm=0.25, thickness_mm=0.6),
        CalciumSpec(center_deg=300.0, arc_deg=40.0, depth_mm=0.05, thickness_mm=0.2),
    ],
)
def test_calcium_labels_match_parameters(spec):
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    new_img, new_lab = insert_calcium(img[0], lab[0], g, spec, np.random.default_rng(1))
    cal = new_lab == CALCIUM
    assert cal.any()
    # real lumen labels untouched; only background became calcium
    assert np.array_equal(new_lab[~cal], lab[0][~cal])
    assert np.all(lab[0][cal] == BACKGROUND)
    # image untouched away from the insert (one-pixel anti-aliased border)
    from scipy import ndimage

    near = ndimage.binary_dilation(cal, iterations=2)
    assert np.array_equal(new_img[~near], img[0][~near])
    # signal-poor inside
    assert new_img[cal].mean() < 0.6 * img[0][cal].mean()
    # the geometry module measures the parameters back (arc about the lumen centroid)
    row = _measure(new_lab[None]).frames[0]
    truth = calcium_columns(g, spec)
    assert row["calcium_arc_deg"] == pytest.approx(spec.arc_deg, abs=2.0)
    assert row["calcium_max_thickness_mm"] == pytest.approx(spec.thickness_mm, abs=2 * PS)
    assert row["calcium_min_depth_mm"] == pytest.approx(spec.depth_mm, abs=2 * PS)
    assert row["calcium_area_mm2"] == pytest.approx(truth["calcium_area_mm2"], rel=0.05)
    # the insert leaves the lumen the geometry measures as it was
    assert row["lumen_area_mm2"] == pytest.approx(
        _measure(lab).frames[0]["lumen_area_mm2"], rel=1e-3
    )


def test_strut_label_centroid_distance_and_shadow():
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    specs = [StrutSpec(30.0, 0.3), StrutSpec(150.0, 0.0), StrutSpec(260.0, -0.03)]
    im, lb = img[0], lab[0]
    pts = []
    for s in specs:
        im2, lb2, p = insert_strut(im, lb, g, s, np.random.default_rng(0))
        changed = lb2 != lb
        assert np.all(lb2[changed] == STRUT)
        # shadow: the tissue behind the strut along its A-line is much darker
        i = int(round(math.atan2(p[0], p[1]) % (2 * math.pi) / (2 * math.pi) * A)) % A
        j = int(np.hypot(*p) / PS) + 12
        assert im2[i, j:].mean() < 0.2 * max(im[i, j:].mean(), 1e-6)
        im, lb = im2, lb2
        pts.append(p)
        assert np.allclose(p, strut_point(g, s))
    m = _measure(lb[None])
    got = sorted(m.struts, key=lambda r: r["angle_deg"])
    assert len(got) == 3
    for row, s, p in zip(got, specs, pts, strict=True):
        assert row["x_mm"] == pytest.approx(p[1], abs=1.5 * PS)
        assert row["y_mm"] == pytest.approx(p[0], abs=1.5 * PS)
        assert row["distance_mm"] == pytest.approx(s.distance_mm, abs=2 * PS)
        assert row["angle_deg"] == pytest.approx(s.angle_deg, abs=2.0)
    # lumen labels outside the struts are the originals
    assert np.array_equal(lb[lb != STRUT], lab[0][lb != STRUT])


def test_guidewire_sector_is_detected():
    img, lab = stand_in(shadow=(40, 62))
    sec = guidewire_sector(img[0], lab[0], PS, margin_alines=0)
    assert sec[45:57].all()
    assert sec.sum() <= 30
    img2, lab2 = stand_in(shadow=None)
    assert guidewire_sector(img2[0], lab2[0], PS).sum() <= 3


def test_trim_arc_avoids_forbidden_bins():
    forb = np.zeros(720, dtype=bool)
    forb[200:240] = True  # 100..120 degrees
    spec = CalciumSpec(center_deg=100.0, arc_deg=120.0, depth_mm=0.1, thickness_mm=0.3)
    out = bins.trim_arc(spec, forb)
    lo, hi = out.center_deg - out.arc_deg / 2, out.center_deg + out.arc_deg / 2
    assert lo >= 40.0 - 1e-6 and hi <= 100.0 + 1e-6
    assert out.arc_deg == pytest.approx(59.5, abs=0.6)
    assert bins.trim_arc(spec, np.zeros(720, dtype=bool)) == spec


def test_lesion_is_consistent_across_frames():
    les = draw.CalciumLesion(10, 20, 90.0, 120.0, 0.1, 0.5, drift_deg_per_frame=1.0)
    specs = [les.at(f) for f in range(8, 22)]
    assert specs[0] is None and specs[1] is None and specs[-1] is None
    mid = [s for s in specs if s is not None]
    assert len(mid) == 10
    arcs = [s.arc_deg for s in mid]
    assert max(arcs) <= 120.0 and max(np.abs(np.diff(arcs))) < 25
    assert all(s.depth_mm == 0.1 for s in mid)


def test_depth_fade_follows_the_tissue_down_and_never_rises():
    from octseg.datasets.hybrid.insert import depth_fade

    a, r = 40, 100
    local = np.tile(np.exp(-np.arange(r) / 30.0), (a, 1))
    local[:, 60:66] = 0.9  # a bright band deep in the region
    ref = np.full(a, 10)
    fade = depth_fade(local, ref)
    assert np.all(fade[:, :11] == pytest.approx(1.0))  # up to the reference sample
    assert np.all(np.diff(fade, axis=1) <= 1e-12)  # falls or holds, never rises
    want = np.exp(-(np.arange(r) - 10) / 30.0)
    assert fade[0, 30] == pytest.approx(want[30], rel=1e-6)  # the tissue's own fall
    assert fade[0, 63] == pytest.approx(want[59], rel=1e-6)  # the band does not lift it


def test_depth_fade_counts_from_each_a_lines_own_reference_and_smooths_across():
    from octseg.datasets.hybrid.insert import depth_fade

    a, r = 60, 80
    local = np.tile(np.exp(-np.arange(r) / 20.0), (a, 1))
    ref = np.where(np.arange(a) < 30, 5, 25)  # two halves read at different depths
    fade = depth_fade(local, ref)
    assert fade[15, 5] == pytest.approx(1.0) and fade[15, 25] == pytest.approx(np.exp(-1.0))
    assert fade[45, 25] == pytest.approx(1.0) and fade[45, 45] == pytest.approx(np.exp(-1.0))
    # near the change of reference the two falls mix (gaussian across A-lines, sigma 3)
    assert np.exp(-1.0) < fade[29, 25] < 1.0 and np.exp(-1.0) < fade[30, 25] < 1.0
    dark = local.copy()
    dark[:, :] = 0.0  # no light at all: the calcium stays black
    assert np.all(depth_fade(dark, ref) == 0.0)


def _back_step(img: np.ndarray, cal: np.ndarray, n: int = 6) -> float:
    """Mean grey of the ``n`` samples behind the calcium minus the ``n`` inside its back
    border, over the A-lines through it."""
    steps = []
    for a in np.flatnonzero(cal.any(axis=1)):
        back = np.flatnonzero(cal[a]).max()
        steps.append(
            img[a, back + 1 : back + 1 + n].mean() - img[a, back - n + 1 : back + 1].mean()
        )
    return float(np.mean(steps))


def test_fading_calcium_shows_its_back_border_with_the_same_labels():
    """Deep, thick calcium in tissue that fades with depth: painted flat it is as bright as the
    tissue behind it (no back border in the image); faded, the tissue behind is brighter, the
    labels and the front of the calcium are those of the flat paint."""
    img, lab = stand_in(shadow=None)
    g = lumen_geometry(lab[0], PS)
    spec = CalciumSpec(
        center_deg=300.0, arc_deg=80.0, depth_mm=0.3, thickness_mm=0.9, contrast=0.45
    )
    flat_img, flat_lab = insert_calcium(
        img[0], lab[0], g, spec, np.random.default_rng(1), fade=False
    )
    fade_img, fade_lab = insert_calcium(img[0], lab[0], g, spec, np.random.default_rng(1))
    assert np.array_equal(flat_lab, fade_lab)
    cal = fade_lab == CALCIUM
    assert _back_step(flat_img, cal) < -0.02  # flat: darker behind, no back border to see
    assert _back_step(fade_img, cal) > 0.05  # faded: it is there
    first = np.zeros_like(cal)  # the calcium's first 3 samples on each A-line
    for a in np.flatnonzero(cal.any(axis=1)):
        j = np.flatnonzero(cal[a]).min()
        first[a, j : j + 3] = True
    front = fade_img[first].mean() / flat_img[first].mean()
    assert 0.9 < front <= 1.0  # the front keeps its look
    assert fade_img[cal].mean() < flat_img[cal].mean()


def test_make_hybrid_refuses_an_unknown_calcium_look():
    img, lab = stand_in(shadow=None)
    with pytest.raises(ValueError, match="calcium_look"):
        cohort.make_hybrid(
            img, lab, PS, [], None, np.random.default_rng(0), frame_spacing_mm=0.2,
            calcium_look="glossy",
        )  # fmt: skip


def test_make_hybrid_truth_matches_labels(tmp_path):
    img, lab = stand_in(n=8, seed=2)
    lesion = draw.CalciumLesion(1, 7, 250.0, 140.0, 0.12, 0.45)
    stent = draw.Stent(
        2,
        8,
        n_struts=8,
        mal_center_deg=200.0,
        mal_arc_deg=120.0,
        mal_start=3,
        mal_stop=7,
        malapposition_mm=0.35,
    )
    rng = np.random.default_rng(0)
    new_img, new_lab, rows, struts = cohort.make_hybrid(
        img, lab, PS, [lesion], stent, rng, frame_spacing_mm=0.2
    )
    # guidewire shadow A-lines (40..61) get neither calcium nor struts
    assert not np.isin(new_lab[:, 42:60], (CALCIUM, STRUT)).any()
    # real lumen untouched outside the inserts and the guidewire sector (class 4)
    ins = np.isin(new_lab, (CALCIUM, STRUT, GUIDEWIRE))
    assert np.array_equal(new_lab[~ins], lab[~ins])
    assert not (lab[new_lab == GUIDEWIRE] == LUMEN).any()  # class 4 only behind the lumen
    cohort.write_pullback(tmp_path / "p", new_img, new_lab, PS, 0.2, rows, struts, {"x": 1})
    lf = load_labels(tmp_path / "p" / "labels.npz")
    assert lf.space == "polar" and lf.labels.shape == lab.shape
    summary = json.loads((tmp_path / "p" / "truth" / "summary.json").read_text())
    assert len(summary["calcium_lesions"]) == 1
    assert summary["calcium_lesions"][0]["start_frame"] == 1
    assert summary["calcium_lesions"][0]["end_frame"] == 6
    assert summary["stent"] is not None
    m = _measure(new_lab)
    for t, got in zip(rows, m.frames, strict=True):
        if t.get("calcium_arc_deg") is not None:
            assert got["calcium_arc_deg"] == pytest.approx(t["calcium_arc_deg"], abs=2.0)
            assert got["calcium_max_thickness_mm"] == pytest.approx(
                t["calcium_max_thickness_mm"], abs=2 * PS
            )
            assert got["calcium_min_depth_mm"] == pytest.approx(
                t["calcium_min_depth_mm"], abs=2 * PS
            )
        else:
            assert not got.get("calcium_arc_deg")
        assert (got.get("n_struts") or 0) == (t.get("n_struts") or 0)
    assert len(m.struts) == len(struts)
    mal_truth = max(s["distance_mm"] for s in struts)
    assert max(s["distance_mm"] for s in m.struts) == pytest.approx(mal_truth, abs=2 * PS)


def test_hybrid_on_a_real_frame(danilov_dir):
    from octseg.datasets.danilov import build as realdata

    frames, masks = realdata.list_danilov(danilov_dir)
    rgb = realdata.read_rgb(frames[60])
    gray, _ = realdata.clean_frame(rgb, None, np.random.default_rng(0))
    img, lab = realdata.to_polar(gray[None], realdata.read_lumen_mask(masks[60])[None])
    ps = realdata.ASSUMED_PIXEL_SPACING_MM
    g = lumen_geometry(lab[0], ps)
    sec = guidewire_sector(img[0] / 255.0, lab[0], ps)
    assert 0 < sec.sum() < 0.25 * sec.size  # the real guidewire shadow is found
    forb = bins.forbidden_bins(sec, g)
    spec = CalciumSpec(center_deg=0.0, arc_deg=100.0, depth_mm=0.15, thickness_mm=0.5)
    spec = bins.trim_arc(spec, forb | bins.field_bins(g, spec, (img.shape[2] - 1) * ps))
    assert spec is not None
    _, new_lab = insert_calcium(img[0] / 255.0, lab[0], g, spec, np.random.default_rng(0))
    assert np.array_equal(new_lab[new_lab != CALCIUM], lab[0][new_lab != CALCIUM])
    lf = LabelFile(labels=new_lab[None], space="polar", pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    from octseg.geometry import measure_labels

    row = measure_labels(lf).frames[0]
    assert row["calcium_arc_deg"] == pytest.approx(spec.arc_deg, abs=2.0)
    assert row["calcium_max_thickness_mm"] == pytest.approx(spec.thickness_mm, abs=2 * ps)
    assert row["calcium_min_depth_mm"] == pytest.approx(spec.depth_mm, abs=2 * ps)


# ----------------------------------------------------------------- class 4 in the training recipes
CONFIGS = Path(__file__).resolve().parents[2] / "octseg" / "configs"


def _recipe(overrides: list[str]) -> tuple[list[int], dict | None]:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    remap = cfg.data.remap
    return list(cfg.data.classes), None if remap is None else OmegaConf.to_container(remap)


def _as_trained(labels: np.ndarray, classes: list[int], remap: dict | None) -> np.ndarray:
    """Dataset labels as a model trained with ``classes`` / ``remap`` would give them back."""
    from octseg.train.data import class_lut

    chans = class_lut(classes, remap)[labels]
    return np.asarray(classes, dtype=np.uint8)[chans]


@pytest.fixture(scope="module")
def synthetic_frames():
    from octseg.datasets.synth import PullbackSynth, draw_pullback, grid_from
    from octseg.datasets.synth.truth import lumen_truth

    g = grid_from("small", n_frames=48)
    s = PullbackSynth(draw_pullback(g, 0, 0))
    frames = (3, 20, 37)
    labels = np.stack([s.frame(f)[1] for f in frames])
    truth = [lumen_truth(s.geometry(f))["lumen_area_mm2"] for f in frames]
    return labels, truth, g


@pytest.mark.parametrize(
    "recipe", [["experiment=hybrid"], ["data=lumen_only"], ["experiment=real_lumen"]]
)
def test_recipe_remap_keeps_the_lumen_area(recipe, synthetic_frames):
    """Perfect synthetic labels (with the guidewire + shadow class 4), remapped as the recipe
    trains them, measure the true lumen area within 2% (4 -> 0 gave 5-7% too small, 4 -> 1
    37-53% too large)."""
    from octseg.geometry import measure_labels

    labels, truth, g = synthetic_frames
    assert (labels == GUIDEWIRE).any()
    classes, remap = _recipe(recipe)
    lab = _as_trained(labels, classes, remap)
    lf = LabelFile(lab, "polar", g.pixel_spacing_mm, g.frame_spacing_mm)
    got = [r["lumen_area_mm2"] for r in measure_labels(lf).frames]
    assert got == pytest.approx(truth, rel=0.02)


def test_hybrid_frames_label_the_guidewire_sector_like_synthetic_ones():
    """The detected shadow becomes class 4 from the lumen border outward; the measured lumen
    (contour interpolated across class 4) stays within 2% of the true (real) lumen."""
    from octseg.geometry import measure_labels

    img, lab = stand_in(n=3, seed=4, shadow=(40, 62))
    _, new_lab, rows, _ = cohort.make_hybrid(
        img, lab, PS, [], None, np.random.default_rng(0), frame_spacing_mm=0.2
    )
    gw = new_lab == GUIDEWIRE
    assert gw[:, 43:59].any(axis=2).all()  # every shadow A-line holds class 4 ...
    assert not gw[:, :30].any() and not gw[:, 75:].any()  # ... and nothing far from it
    rows_gw = np.nonzero(gw[0].any(axis=1))[0]
    for a in rows_gw:  # class 4 runs from the lumen border to the end of the A-line
        k = int(np.argmin(lab[0, a] == LUMEN))
        assert gw[0, a, k:].all() and not gw[0, a, :k].any()
    classes, remap = _recipe(["experiment=hybrid"])
    lf = LabelFile(_as_trained(new_lab, classes, remap), "polar", PS, 0.2)
    got = [r["lumen_area_mm2"] for r in measure_labels(lf).frames]
    assert got == pytest.approx([r["lumen_area_mm2"] for r in rows], rel=0.02)


def test_rebuild_with_another_synthetic_cohort_replaces_the_links(tmp_path):
    from octseg.datasets.toy import make_toy_dataset

    real = tmp_path / "real"
    real.mkdir()
    (real / "split.json").write_text(json.dumps({"train": [], "val": []}))
    a = make_toy_dataset(tmp_path / "synth_a", n_pullbacks=2, n_frames=2)
    b = make_toy_dataset(tmp_path / "synth_b", n_pullbacks=1, n_frames=2)
    out = tmp_path / "hyb"
    cohort.build_hybrid_dataset(real, out, synthetic=a, progress=False)
    assert sorted(p.name for p in (out / "train").glob("synth-*")) == ["synth-pb000", "synth-pb001"]
    made = cohort.build_hybrid_dataset(real, out, synthetic=b, progress=False)
    links = sorted((out / "train").glob("synth-*"))
    assert [p.name for p in links] == ["synth-pb000"] == made["train"]
    assert links[0].resolve() == (b / "pb000").resolve()  # the new cohort, not the old one


def test_render_cli_draws_real_hybrid_and_outlines(tmp_path):
    """``cohort render``: one row per frame of [real | hybrid | hybrid with outlines]; the inserted
    calcium shows as a red outline in the third panel only."""
    from PIL import Image

    from octseg.datasets.hybrid.render import OUTLINE_COLOURS

    real = real_block(tmp_path / "real", n=3, seed=4)
    img, lab = stand_in(n=3, seed=4)
    lesion = draw.CalciumLesion(0, 3, 250.0, 140.0, 0.1, 0.45)
    im, lb, rows, struts = cohort.make_hybrid(
        img, lab, PS, [lesion], None, np.random.default_rng(0), frame_spacing_mm=0.2
    )
    hyb = tmp_path / "hyb"
    cohort.write_pullback(hyb, im, lb, PS, 0.2, rows, struts, {})
    png = tmp_path / "fig.png"
    size = 96
    assert (
        cohort.main(
            ["render", str(real), str(hyb), str(png), "--frames", "0", "2", "--size", str(size)]
        )
        == 0
    )
    out = np.asarray(Image.open(png).convert("RGB"))
    assert out.shape == (2 * size, 3 * size + 2 * 6, 3)
    red = np.all(out == OUTLINE_COLOURS[CALCIUM], axis=-1)
    third = slice(2 * (size + 6), None)
    assert red[:, third].sum() > 20 and not red[:, : 2 * size + 6].any()
