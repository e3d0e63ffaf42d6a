"""The real Danilov pullback as a polar lumen dataset (octseg.datasets.danilov.build)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from octseg.core.classes import LUMEN
from octseg.datasets.danilov import build as realdata
from octseg.datasets.danilov.reader import list_danilov, read_lumen_mask, read_rgb
from octseg.datasets.holdout import lumen_areas_px2
from octseg.io.labels import LabelFile


def test_inpaint_copies_nearby_clean_pixels_and_removes_a_line():
    rng = np.random.default_rng(0)
    img = rng.gamma(4.0, 0.1, (64, 64)).astype(np.float32)
    mask = np.zeros_like(img, dtype=bool)
    mask[30:33, :] = True
    img_line = img.copy()
    img_line[mask] = 1.0  # a burned-in bright line
    out = realdata.inpaint(img_line, mask, np.random.default_rng(1))
    assert np.array_equal(out[~mask], img_line[~mask])
    clean_values = set(np.round(img[~mask], 6).tolist())
    assert set(np.round(out[mask], 6).tolist()) <= clean_values  # real samples, no smoothing
    band = img[25:38][~mask[25:38]]
    assert abs(out[mask].mean() - band.mean()) < 0.1 * band.mean()
    assert out[mask].std() > 0.5 * band.std()  # speckle kept


def test_inpaint_large_hole_falls_back_to_nearest():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    mask = np.zeros((10, 10), dtype=bool)
    mask[:, :9] = True  # only the last column is clean
    out = realdata.inpaint(img, mask, np.random.default_rng(0))
    assert np.all(np.isin(out[mask], img[:, 9]))


@pytest.mark.parametrize("where", ["end", "start", "middle"])
def test_default_blocks_are_contiguous_disjoint_with_a_gap(where):
    blocks = realdata.default_blocks(186, val_fraction=0.25, gap_frames=4, where=where)
    val = [b for b in blocks if b.split == "val"]
    train = [b for b in blocks if b.split == "train"]
    assert len(val) == 1 and val[0].stop - val[0].start == round(186 * 0.25)
    for t in train:
        gap = max(val[0].start - t.stop, t.start - val[0].stop)
        assert gap >= 4
    covered = sum(b.stop - b.start for b in blocks)
    assert covered == 186 - 4 * len(train)


def test_parse_block():
    assert realdata.parse_block("10:20", "test") == realdata.Block("test-010-020", 10, 20, "test")
    with pytest.raises(ValueError):
        realdata.parse_block("20:10", "val")


def test_to_polar_of_a_centred_disk():
    h = w = 101
    yy, xx = np.mgrid[:h, :w]
    disk = np.hypot(yy - 50, xx - 50) <= 30
    gray = np.where(disk, 0.1, 0.8).astype(np.float32)
    img, lab = realdata.to_polar(
        gray[None], disk[None], pixel_spacing_mm=0.01, n_alines=64, n_samples=50
    )
    assert img.dtype == np.uint8 and lab.dtype == np.uint8
    assert np.all(lab[0][:, :29] == LUMEN) and np.all(lab[0][:, 32:] == 0)
    assert np.all(img[0][:, 35:] > 190)


@pytest.fixture(scope="module")
def static_mask(danilov_dir):
    return realdata.static_overlay_mask(list_danilov(danilov_dir)[0])


def test_static_overlay_mask_finds_both_lines(static_mask):
    mask = static_mask
    assert 0.002 < mask.mean() < 0.03
    c = 374.5
    for deg in (244.7, 64.7):  # cyan line (upper left) and yellow line (lower right)
        hits = 0
        for r in range(150, 300, 10):
            y = int(round(c + r * math.sin(math.radians(deg))))
            x = int(round(c + r * math.cos(math.radians(deg))))
            hits += bool(mask[y - 3 : y + 4, x - 3 : x + 4].any())
        assert hits >= 12, f"overlay line at {deg} deg not found"


def test_build_real_dataset_layout_and_labels(danilov_dir, static_mask, tmp_path):
    blocks = [
        realdata.Block("train-000-002", 0, 2, "train"),
        realdata.Block("val-005-006", 5, 6, "val"),
    ]
    split = realdata.build_real_dataset(
        danilov_dir, tmp_path, blocks=blocks, progress=False, static_mask=static_mask
    )
    assert split["train"] == ["train-000-002"] and split["val"] == ["val-005-006"]
    assert json.loads((tmp_path / "split.json").read_text())["blocks"]["val-005-006"] == [5, 6]
    from octseg.io.dataset import list_pullbacks, verify_dataset

    assert verify_dataset(tmp_path) == []
    assert sorted(e.id for e in list_pullbacks(tmp_path)) == ["train-000-002", "val-005-006"]
    from octseg.io.labels import load_labels

    lf = load_labels(tmp_path / "val-005-006" / "labels.npz")
    assert lf.space == "polar" and lf.labels.shape == (1, realdata.N_ALINES, realdata.N_SAMPLES)
    assert set(np.unique(lf.labels)) <= {0, LUMEN}
    # the polar lumen encloses the same area as the expert Cartesian mask (pixels^2)
    _, masks = list_danilov(danilov_dir)
    cart_area = read_lumen_mask(masks[5]).sum()
    one = LabelFile(labels=lf.labels[:1], space="polar", pixel_spacing_mm=1.0, frame_spacing_mm=1.0)
    polar_area = lumen_areas_px2(one, 1.0)[0]  # octseg.geometry
    assert polar_area == pytest.approx(cart_area, rel=0.02)
    sp = json.loads((tmp_path / "val-005-006" / "spacing.json").read_text())
    assert sp["pixel_spacing_mm"] == realdata.ASSUMED_PIXEL_SPACING_MM


def test_clean_frame_removes_the_overlay(danilov_dir, static_mask):
    frames, _ = list_danilov(danilov_dir)
    static = static_mask
    rgb = read_rgb(frames[30])
    gray, mask = realdata.clean_frame(rgb, static, np.random.default_rng(0))
    from scipy import ndimage

    from octseg.io.color import sepia_to_gray

    raw = sepia_to_gray(rgb)
    ring = ndimage.binary_dilation(mask, iterations=4) & ~mask
    # before: overlay pixels are much brighter than their surroundings; after: alike
    assert raw[mask].mean() > 1.5 * raw[ring].mean()
    assert abs(gray[mask].mean() - gray[ring].mean()) < 0.15 * gray[ring].mean()
