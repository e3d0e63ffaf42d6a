"""Robustness suite (octseg.datasets.robustness, benchmarks/robustness.py): each corruption does what it
says on a Cartesian sepia frame, labels change only with the geometry, and the summary reads an
evaluation's tables."""

from __future__ import annotations

import numpy as np
import pytest

from octseg.datasets import robustness as rb
from octseg.io.color import SEPIA_LUT, overlay_mask, sepia_to_gray

N = 301
C = (N - 1) / 2


@pytest.fixture
def frame() -> rb.Frame:
    yy, xx = np.indices((N, N))
    r = np.hypot(yy - C, xx - C)
    lumen = r < 80
    rng = np.random.default_rng(0)
    grey = np.where(lumen, 0.05, 0.7 * np.exp(-(r - 80) / 60)) * rng.gamma(8, 1 / 8, (N, N))
    grey[r > 145] = 0
    idx = np.clip(np.rint(grey * 255), 0, 255).astype(np.uint8)
    return rb.Frame(SEPIA_LUT[idx], lumen, 0.01, (C, C))


def grey(f: rb.Frame) -> np.ndarray:
    return sepia_to_gray(f.rgb)


def corrupt(f, name, sev):
    return rb.corrupt(f, name, sev, np.random.default_rng(1))


@pytest.mark.parametrize("sev", [1, 2, 3])
def test_gain_gamma_and_window_change_the_grey_value_as_stated(frame, sev):
    g0 = grey(frame)
    tol = 1.5 / 255  # one sepia quantisation step, both ways
    gain = rb.CORRUPTIONS["gain"][1][sev - 1]
    assert np.allclose(grey(corrupt(frame, "gain", sev)), g0 * gain, atol=2 * tol)
    gamma = rb.CORRUPTIONS["gamma"][1][sev - 1]
    assert np.allclose(grey(corrupt(frame, "gamma", sev)), g0**gamma, atol=2 * tol)
    lo, hi = rb.CORRUPTIONS["dynamic_range"][1][sev - 1]
    assert np.allclose(
        grey(corrupt(frame, "dynamic_range", sev)), lo + (hi - lo) * g0, atol=2 * tol
    )
    for name in ("gain", "gamma", "dynamic_range", "attenuation"):
        assert np.array_equal(corrupt(frame, name, sev).lumen, frame.lumen)


def test_severities_are_ordered(frame):
    g0 = grey(frame)
    wall = ~frame.lumen & (g0 > 0.1)
    for name in ("gain", "attenuation", "dim_wall"):
        means = [grey(corrupt(frame, name, s))[wall].mean() for s in (1, 2, 3)]
        assert g0[wall].mean() > means[0] > means[1] > means[2], name


def test_dim_wall_keeps_the_lumen_and_a_bright_rim(frame):
    out = grey(corrupt(frame, "dim_wall", 3))
    g0 = grey(frame)
    assert np.allclose(out[frame.lumen], g0[frame.lumen], atol=1.5 / 255)
    rim = (np.hypot(*(np.indices((N, N)) - C)) - 80.5) < 1.5
    deep = ~frame.lumen & ~rim & (g0 > 0.1)
    assert (out[rim & ~frame.lumen] / np.maximum(g0[rim & ~frame.lumen], 1e-3)).mean() > 0.7
    assert (out[deep] / g0[deep]).mean() < 0.4


def test_blood_only_in_the_lumen_beyond_the_sheath(frame):
    out = corrupt(frame, "blood", 3)
    changed = np.abs(grey(out) - grey(frame)) > 2 / 255
    r = np.hypot(*(np.indices((N, N)) - C))
    assert changed[frame.lumen & (r > 60)].mean() > 0.1
    assert not changed[~frame.lumen | (r < 59)].any()
    assert np.array_equal(out.lumen, frame.lumen)


def test_colour_map_exports_another_palette_that_the_reader_reads_monotonically(frame):
    out = corrupt(frame, "colour_map", 2)
    assert not np.array_equal(out.rgb, frame.rgb)
    g0, g1 = grey(frame).ravel(), grey(out).ravel()
    order = np.argsort(g0, kind="stable")
    assert (np.diff(g1[order]) >= -2 / 255).all()  # brighter stays brighter
    assert np.array_equal(out.lumen, frame.lumen)


@pytest.mark.parametrize(
    "name, sev", [("colour_map", 2), ("colour_map", 3)] + [("unknown_map", s) for s in (1, 2, 3)]
)
def test_colour_map_uses_known_maps_and_unknown_map_others(frame, name, sev):
    """ "hot" and "cividis" are maps the readers recognise and read back to the frame's grey;
    the unknown maps are not recognised (read monotonically, through the sepia curve)."""
    from octseg.io.color import display_lut, display_metadata, display_warnings, rgb_frames_to_gray

    out = corrupt(frame, name, sev)
    meta = display_metadata([out.rgb])
    if name == "colour_map":
        assert meta["display_map"] == rb.CORRUPTIONS[name][1][sev - 1], meta
        read = rgb_frames_to_gray(out.rgb, lut=display_lut(meta))
        assert np.abs(read - grey(frame)).max() <= 1.6 / 255
    else:
        assert "display_map" not in meta and display_warnings(meta), meta


@pytest.mark.parametrize("sev", [1, 2, 3])
def test_resize_keeps_the_physical_lumen_area(frame, sev):
    out = corrupt(frame, "resize", sev)
    size = rb.CORRUPTIONS["resize"][1][sev - 1]
    assert out.rgb.shape[:2] == out.lumen.shape == (size, size)
    area0 = frame.lumen.sum() * frame.spacing**2
    assert out.lumen.sum() * out.spacing**2 == pytest.approx(area0, rel=0.02)
    assert out.center == pytest.approx(((size - 1) / 2,) * 2, abs=0.01)


def test_crop_and_shift_move_image_mask_and_centre_together(frame):
    out = rb.CORRUPTIONS["crop"][0](frame, 201, None)
    assert out.lumen.shape == (201, 201) and out.lumen.sum() == frame.lumen.sum()
    assert out.center == (100.0, 100.0)
    out = corrupt(frame, "off_centre", 3)
    cy, cx = out.center
    yy, xx = np.nonzero(out.lumen)
    assert yy.mean() == pytest.approx(cy, abs=0.5) and xx.mean() == pytest.approx(cx, abs=0.5)
    assert np.hypot(cy - C, cx - C) == pytest.approx(45, abs=1.5)
    dark = grey(out)[int(round(cy)) - 20 : int(round(cy)) + 20, int(round(cx)) + 60]
    assert dark.max() < 0.2  # the image's lumen moved with the mask


def test_overlay_marks_are_off_the_sepia_curve_static_and_keep_labels(frame):
    a = corrupt(frame, "overlay", 2)
    b = rb.corrupt(frame, "overlay", 2, np.random.default_rng(99))
    new = overlay_mask(a.rgb) & ~overlay_mask(frame.rgb)
    assert 0.001 < new.mean() < 0.2
    assert np.array_equal(a.rgb, b.rgb)  # the same marks on every frame of a pullback
    assert np.array_equal(a.lumen, frame.lumen)


def test_intensity_corruptions_keep_the_burned_in_overlay(frame):
    rgb = frame.rgb.copy()
    rgb[10:14, 20:200] = (0, 255, 255)  # a cyan measurement line
    f = rb.Frame(rgb, frame.lumen, frame.spacing, frame.center)
    out = corrupt(f, "gain", 3)
    assert (out.rgb[10:14, 20:200] == (0, 255, 255)).all()


def _label_file(path, masks, center=(20.0, 20.0)):
    from octseg.core.classes import LUMEN
    from octseg.io.labels import LabelFile, save_labels

    lf = LabelFile(
        labels=np.stack(masks).astype(np.uint8) * LUMEN,
        space="cartesian",
        pixel_spacing_mm=0.01,
        frame_spacing_mm=0.2,
        catheter_center=center,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_labels(path, lf)
    return lf


def test_lumen_dice_equals_evaluate_dice(tmp_path):
    from octseg.evaluate.segmentation import compare_labels

    yy, xx = np.indices((41, 41))
    truth = [np.hypot(yy - 20, xx - 20) < r for r in (10, 12, 14)]
    pred = [np.hypot(yy - 20 - d, xx - 20) < r for d, r in ((0, 10), (2, 11), (4, 16))]
    a = _label_file(tmp_path / "a.npz", pred)
    m = _label_file(tmp_path / "m.npz", truth)
    ours = rb.lumen_dice(tmp_path / "a.npz", tmp_path / "m.npz")
    theirs = [r["dice"] for r in compare_labels("p", a, m, (1,))]
    assert list(ours.values()) == pytest.approx(theirs, abs=1e-6)
    assert ours[0] == pytest.approx(1.0) and ours[2] < 0.9


def test_class_dice_is_nan_where_neither_side_holds_the_class(tmp_path):
    """A class absent from some frames (here class 1): frame 0 in neither file (NaN, not 1),
    frame 1 in both (half the disc found), frame 2 only in the prediction (0)."""
    yy, xx = np.indices((41, 41))
    disc = np.hypot(yy - 20, xx - 20) < 10
    half = disc & (xx < 20)
    none = np.zeros_like(disc)
    _label_file(tmp_path / "a.npz", [none, half, disc])
    _label_file(tmp_path / "m.npz", [none, disc, none])
    got = rb.class_dice(tmp_path / "a.npz", tmp_path / "m.npz", 1)
    assert np.isnan(got[0]) and got[2] == 0.0
    assert got[1] == pytest.approx(2 * half.sum() / (half.sum() + disc.sum()), abs=1e-6)
    assert rb.lumen_dice(tmp_path / "a.npz", tmp_path / "m.npz")[0] == pytest.approx(1.0)


def test_lumen_border_offset_is_the_radial_shift_of_the_contour(tmp_path):
    # discs about the catheter: the product's border 3 px inside the
    # expert's in frame 0, the same in frame 1, 4 px outside in frame 2; frame 3 has no lumen
    yy, xx = np.indices((121, 121))
    rad = np.hypot(yy - 60, xx - 60)
    truth = [rad < r for r in (40, 30, 30, 30)]
    pred = [rad < r for r in (37, 30, 34, 0)]
    _label_file(tmp_path / "a.npz", pred, center=(60.0, 60.0))
    _label_file(tmp_path / "m.npz", truth, center=(60.0, 60.0))
    off = rb.lumen_border_offset(tmp_path / "a.npz", tmp_path / "m.npz")
    assert sorted(off) == [0, 1, 2]  # no lumen on one side: no offset
    assert off[0] == pytest.approx(-3.0, abs=0.6)
    assert off[1] == pytest.approx(0.0, abs=0.6)
    assert off[2] == pytest.approx(4.0, abs=0.6)


def test_summary_of_an_evaluation(tmp_path):
    import pandas as pd

    ref = np.array([10.0, 12.0, 8.0, 10.0])
    auto = ref * np.array([1.0, 1.1, 0.9, 1.2])
    pd.DataFrame(
        {
            "pullback_id": ["gain-2"] * 4 + ["none"] * 4,
            "frame": [0, 1, 2, 3] * 2,
            "match": ["matched"] * 8,
            "auto_lumen_area_mm2": list(auto) + list(ref),
            "manual_lumen_area_mm2": list(ref) * 2,
        }
    ).to_csv(tmp_path / "frames_matched.csv", index=False)
    yy, xx = np.indices((41, 41))
    disk = np.hypot(yy - 20, xx - 20) < 10
    empty = np.zeros_like(disk)
    for pid, pred in (("gain-2", [disk, disk, empty, disk]), ("none", [disk] * 4)):
        _label_file(tmp_path / "infer" / pid / "labels.npz", pred)
        _label_file(tmp_path / "manual" / pid / "labels.npz", [disk] * 4)
    rows = {
        r["corruption"]: r for r in rb.summarize(tmp_path, tmp_path / "infer", tmp_path / "manual")
    }
    err = (auto - ref) / ref.mean() * 100
    g = rows["gain"]
    assert g["severity"] == 2 and g["n_frames"] == 4
    assert g["dice_mean"] == pytest.approx(0.75) and g["dice_min"] == 0.0
    assert g["area_bias_pct"] == pytest.approx(err.mean())
    assert g["area_loa_high_pct"] == pytest.approx(err.mean() + 1.96 * err.std(ddof=1))
    assert g["area_mae_pct"] == pytest.approx(np.abs(err).mean())
    assert rows["none"]["area_bias_pct"] == 0 and rows["none"]["dice_mean"] == 1.0


@pytest.mark.needs_shared_data
def test_build_suite_writes_readable_pullbacks_and_the_experts_area(danilov_dir, tmp_path):
    from octseg.datasets.danilov.reader import list_danilov, read_lumen_mask
    from octseg.geometry.tables import read_csv
    from octseg.io import read_pullback

    ids = rb.build_suite(danilov_dir, 150, 152, tmp_path, ["resize"], [3])
    assert ids == ["none", "resize-3"]
    pb = read_pullback(tmp_path / "inputs" / "resize-3")
    assert (pb.n_frames, pb.height) == (2, 500) and pb.pixel_spacing_mm == pytest.approx(0.015)
    expert = read_lumen_mask(list_danilov(danilov_dir)[1][150]).sum() * 0.01**2
    for pid in ids:
        rows = read_csv(tmp_path / "manual" / pid / "frames.csv")
        # the geometry's area inside the contour vs the expert's filled mask
        assert rows[0]["lumen_area_mm2"] == pytest.approx(expert, rel=0.03)


@pytest.mark.needs_shared_data
def test_build_suite_with_none_named_writes_only_the_uncorrupted_block(danilov_dir, tmp_path):
    # "--corruptions none" (the clean block alone) used to raise ('none', 1) is not in list
    assert rb.build_suite(danilov_dir, 150, 152, tmp_path, ["none"]) == ["none"]
    assert rb.build_suite(danilov_dir, 150, 152, tmp_path, ["none", "gain"], [2]) == [
        "none",
        "gain-2",
    ]
