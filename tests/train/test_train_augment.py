"""Appearance randomisation (octseg.datasets.appearance, issue 13): each transform does what it
says, and labels stay unchanged where they must (or move exactly with the image)."""

from __future__ import annotations

import numpy as np
import pytest

from octseg.datasets import appearance as ap
from octseg.io.color import SEPIA_LUT, rgb_frames_to_gray
from octseg.train.augment import apply_augmentation, build_augmentation, seed_augmentation

A_, R_ = 96, 80
BORDER = 30  # lumen runs over samples 0..29 on every A-line


@pytest.fixture
def frame() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = np.full((A_, R_, 3), 0.05, np.float32)
    img[:, BORDER:] = 0.6 * np.exp(-np.arange(R_ - BORDER) / 40)[None, :, None]
    img *= rng.gamma(8.0, 1 / 8.0, img.shape).astype(np.float32)
    mask = np.zeros((A_, R_), np.uint8)
    mask[:, :BORDER] = 1
    return np.clip(img, 0, 1), mask


def run(t, img, mask, seed=0):
    t.set_random_seed(seed)
    out = t(image=img, mask=mask)
    return out["image"], out["mask"]


def test_depth_attenuation_darkens_with_depth_only(frame):
    img, mask = frame
    out, m = run(ap.DepthAttenuation(alpha=(1.5, 1.5), p=1), img, mask)
    ratio = out[:, 1:] / np.maximum(img[:, 1:], 1e-6)
    expect = np.exp(-1.5 * np.arange(1, R_) / R_)
    assert np.allclose(ratio.mean(axis=(0, 2)), expect, atol=1e-4)
    assert np.array_equal(m, mask)


def test_dynamic_range_maps_black_and_white(frame):
    img, mask = frame
    out, m = run(ap.DynamicRange(black=(0.2, 0.2), white=(0.7, 0.7), p=1), img, mask)
    assert np.allclose(out, 0.2 + 0.5 * img, atol=1e-6)
    assert np.array_equal(m, mask)


def test_dim_wall_keeps_lumen_and_rim_darkens_deep_tissue(frame):
    img, mask = frame
    out, m = run(ap.DimWall(factor=(0.3, 0.3), rim=(2.0, 2.0), p=1), img, mask)
    assert np.array_equal(out[:, :BORDER], img[:, :BORDER])  # lumen untouched
    assert np.allclose(out[:, BORDER], img[:, BORDER], rtol=1e-5)  # rim: full brightness
    assert np.allclose(out[:, BORDER + 20 :], 0.3 * img[:, BORDER + 20 :], rtol=1e-3)
    assert np.array_equal(m, mask)


def test_blood_speckle_only_inside_the_lumen_beyond_the_catheter(frame):
    img, mask = frame
    out, m = run(ap.BloodSpeckle(level=(0.5, 0.5), coverage=(0.3, 0.3), catheter=8, p=1), img, mask)
    changed = np.abs(out - img).max(axis=-1) > 1e-6
    assert changed[:, 8:BORDER].mean() > 0.1  # blobs in the lumen
    assert not changed[:, :8].any() and not changed[:, BORDER:].any()
    assert (out >= img - 1e-7).all()  # blood adds signal
    assert np.array_equal(m, mask)


def _angular_extent(blood: np.ndarray, cols: slice) -> float:
    """Mean length (A-lines) of the runs of blood along the A-line axis in ``cols``."""
    on = blood[:, cols] > 0
    runs = [len(r) for c in on.T for r in np.split(c, np.flatnonzero(np.diff(c)) + 1) if r[0]]
    return float(np.mean(runs))


def test_blood_blobs_are_isotropic_in_cartesian_space():
    # a blob of one size in the lumen spans more A-lines near the catheter than far out, as a
    # console image read onto the polar grid shows it (not arc-shaped streaks at every depth)
    mask = np.zeros((256, 160), np.uint8)
    mask[:, :150] = 1
    t = ap.BloodSpeckle(level=(0.5, 0.5), coverage=(0.3, 0.3), catheter=8, blob=(4, 4), p=1)
    ratios = []
    for seed in range(4):
        t.set_random_seed(seed)
        blood = t.get_params_dependent_on_data({}, {"mask": mask})["blood"]
        ratios.append(
            _angular_extent(blood, slice(15, 30)) / _angular_extent(blood, slice(120, 140))
        )
    assert np.median(ratios) > 2.5  # radii ~22 vs ~130 samples: about 6x for isotropic blobs


def test_blood_wall_bias_draws_blobs_towards_the_lumen_border():
    mask = np.zeros((256, 160), np.uint8)
    mask[:, :150] = 1
    share = {}
    for bias in (0.0, 1.5):
        t = ap.BloodSpeckle(coverage=(0.3, 0.3), catheter=8, p=1, wall_bias=bias)
        near, far = 0.0, 0.0
        for seed in range(6):
            t.set_random_seed(seed)
            blood = t.get_params_dependent_on_data({}, {"mask": mask})["blood"] > 0
            near += blood[:, 20:50].mean()
            far += blood[:, 120:150].mean()
            assert not blood[:, 150:].any() and not blood[:, :8].any()  # lumen only
        share[bias] = far / near
    assert 0.7 < share[0.0] < 1.4  # no preference without the bias
    assert share[1.5] > 2.0  # blobs crowd towards the wall with it


@pytest.mark.parametrize("name", ap.PALETTES)
def test_colour_map_is_the_readers_view_of_that_export(frame, name):
    img, mask = frame
    out, m = run(ap.ColourMap(palettes=(name,), p=1), img, mask)
    idx = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    assert np.allclose(out, rgb_frames_to_gray(ap.palette_lut(name)[idx]), atol=1e-6)
    # monotone: brighter exports stay brighter after the reader's conversion
    assert (np.diff(ap.reader_curve(name)) >= -1e-6).all()
    assert np.array_equal(m, mask)


def test_sepia_colour_map_is_the_identity():
    assert np.array_equal(ap.palette_lut("sepia"), SEPIA_LUT)
    assert np.abs(ap.reader_curve("sepia") - np.arange(256) / 255).max() <= 1.5 / 255


def test_grey_export_reads_as_its_index():
    # the reader takes a grey display drawn in RGB as grey (before session 60 it went through
    # the sepia map and read brighter: index 64 as 0.47), so the grey palette changes nothing
    np.testing.assert_allclose(ap.reader_curve("grey"), np.arange(256) / 255, atol=1e-6)


def test_overlay_paints_bright_marks_and_keeps_labels(frame):
    img, mask = frame
    out, m = run(ap.BurnedInOverlay(items=(6, 7), level=(1.0, 1.0), p=1), img, mask, seed=3)
    diff = np.abs(out - img).max(axis=-1)
    assert 0.002 < (diff > 0.2).mean() < 0.3  # thin marks, not the whole frame
    ok = (img < 0.9).all(axis=-1)
    alpha = (out - img)[ok] / (1.0 - img[ok])  # the mark's coverage, per context frame
    assert np.allclose(alpha[:, 0], alpha[:, 2], atol=1e-4)  # static over the k frames
    assert np.array_equal(m, mask)


def test_draw_overlay_draws_every_kind():
    for seed in range(12):
        canvas = ap.draw_overlay(np.zeros((160, 160), np.uint8), np.random.default_rng(seed), 1)
        assert canvas.any() and set(np.unique(canvas)) <= {0, 1}


def test_catheter_offset_moves_image_and_mask_together(frame):
    img, mask = frame
    img = img.copy()
    img[:, :BORDER] = 0.0
    img[:, BORDER:] = 0.8  # sharp wall at the lumen border
    out, m = run(ap.CatheterOffset(shift=(0.1, 0.1), p=1), img, mask)
    border = ap.lumen_border(m, 1)
    # a circle seen from a point d off its centre: radius r - d cos(phi - phi0) per A-line
    d = 0.1 * R_
    assert border.min() == pytest.approx(BORDER - d, abs=1.5)
    assert border.max() == pytest.approx(BORDER + d, abs=1.5)
    wall = out[..., 1] > 0.4
    first_wall = np.argmax(wall, axis=1)
    assert np.abs(first_wall - border).max() <= 1  # the image's wall is where the labels say


def test_catheter_offset_zero_is_the_identity(frame):
    img, mask = frame
    out, m = run(ap.CatheterOffset(shift=(0.0, 0.0), p=1), img, mask)
    # sample 0 is the centre itself, the same point for every A-line: not compared
    assert np.allclose(out[:, 1:], img[:, 1:], atol=1e-5)
    assert np.array_equal(m, mask)


def test_field_of_view_ends_image_and_labels_together(frame):
    img, mask = frame
    out, m = run(ap.FieldOfView(radius=(0.25, 0.25), p=1), img, mask)
    stop = round(0.25 * R_)
    assert not out[:, stop:].any() and not m[:, stop:].any()
    assert np.array_equal(out[:, :stop], img[:, :stop]) and np.array_equal(
        m[:, :stop], mask[:, :stop]
    )


def test_square_exit_is_where_each_ray_leaves_the_square():
    # a centred square, sides along A-line 0: axis rays exit at the half-width, diagonals at
    # sqrt(2) times it; shifted along x by 0.3 h: 1.3 h ahead, 0.7 h behind
    stop = ap.square_exit(8, 40.0, (0.0, 0.0), 0.0)
    assert list(stop) == [40, 57, 40, 57, 40, 57, 40, 57]
    stop = ap.square_exit(4, 40.0, (12.0, 0.0), 0.0)
    assert list(stop) == [52, 40, 28, 40]
    # the square turned by 45 degrees: the diagonal exits move onto the axes
    assert list(ap.square_exit(8, 40.0, (0.0, 0.0), np.pi / 4)) == [57, 40] * 4


def test_square_field_of_view_ends_each_aline_where_its_ray_leaves(frame):
    img, _ = frame
    mask = np.ones((A_, R_), np.uint8)  # labels to the full depth, so every cut shows
    t = ap.FieldOfView(radius=(0.5, 0.5), p=1, square_p=1.0, square_shift=0.3)
    out, m = run(t, img, mask, seed=3)
    ends = [int(np.flatnonzero(row.any(axis=-1))[-1]) + 1 for row in out]
    assert min(ends) < max(ends)  # not a circle: the depth of the field varies by A-line
    # every A-line keeps its samples up to its own end and has neither signal nor labels beyond
    for a, e in enumerate(ends):
        assert np.array_equal(out[a, :e], img[a, :e]) and not out[a, e:].any()
        assert np.array_equal(m[a, :e], mask[a, :e]) and not m[a, e:].any()
    # a square of half-width 0.5 R, centre at most 0.3 half-widths away: rays exit between
    # 0.7 and sqrt(2) x 1.3 half-widths (clipped to the depth range)
    half = 0.5 * R_
    assert 0.7 * half - 1 <= min(ends) and max(ends) <= min(R_, 1.3 * np.sqrt(2) * half + 1)


def test_square_field_of_view_refuses_a_catheter_outside_the_square():
    with pytest.raises(ValueError, match="square_shift"):
        ap.FieldOfView(square_p=1.0, square_shift=1.0)
    with pytest.raises(ValueError, match="inside the square"):
        ap.square_exit(8, 40.0, (50.0, 0.0), 0.0)


def test_recipe_keys_switch_transforms_on_and_off():
    names = [type(t).__name__ for t in build_augmentation({"enabled": True}).transforms]
    assert not any(n in names for n in ("DimWall", "BurnedInOverlay", "ColourMap"))
    on = build_augmentation({"enabled": True, "dim_wall_p": 0.5, "overlay_p": 1, "colour_map_p": 1})
    names = [type(t).__name__ for t in on.transforms]
    assert {"DimWall", "BurnedInOverlay", "ColourMap"} <= set(names)


def test_real_lumen_recipe_runs_every_transform_and_keeps_label_values(frame):
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load("octseg/configs/experiment/real_lumen.yaml"))
    aug = {k: 1.0 if k.endswith("_p") else v for k, v in cfg["data"]["augment"].items()}
    compose = build_augmentation({"enabled": True, **aug})
    assert len(compose.transforms) >= 15
    img, mask = frame
    for seed in range(4):
        seed_augmentation(compose, seed)
        out, m = apply_augmentation(compose, img, mask)
        assert out.shape == img.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        assert set(np.unique(m)) <= {0, 1} and m.shape == mask.shape
