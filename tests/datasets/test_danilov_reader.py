"""The real Danilov pullback (../shared/data; skipped where absent) and colour handling."""

from __future__ import annotations

import numpy as np
import pytest

from octseg.core.errors import MissingSpacingError
from octseg.datasets.danilov.reader import MASK_CHANNELS, read_danilov, read_mask
from octseg.io import read_pullback
from octseg.io.color import SEPIA_LUT, gray_to_sepia, overlay_mask, sepia_to_gray


def test_sepia_roundtrip_exact_to_rounding():
    g = np.arange(256, dtype=np.uint8)
    back = sepia_to_gray(gray_to_sepia(g)) * 255
    assert np.abs(back - g).max() <= 1.0
    assert np.all(np.diff(back) > 0)  # monotone


def test_sepia_to_gray_is_monotone_in_luminance_for_other_maps():
    # a different warm map (vendor-like): grey must still increase along it
    t = np.linspace(0, 1, 64)
    other = (np.stack([t**0.7, t**1.5, t**3.5], -1) * 255).round().astype(np.uint8)
    grey = sepia_to_gray(other)
    assert np.all(np.diff(grey) >= 0) and grey[0] == 0 and grey[-1] > 0.95


def test_overlay_mask_flags_cyan_and_yellow_only():
    g = np.tile(np.arange(256, dtype=np.uint8), (20, 1))
    rgb = gray_to_sepia(g).copy()
    rgb[5, 10:200] = (0, 255, 255)  # cyan line
    rgb[12, 30:60] = (255, 255, 0)  # yellow dots
    rgb[15, 100:110] = (0, 120, 130)  # dark cyan
    m = overlay_mask(rgb)
    expected = np.zeros(g.shape, bool)
    expected[5, 10:200] = expected[12, 30:60] = expected[15, 100:110] = True
    np.testing.assert_array_equal(m, expected)
    assert not overlay_mask(SEPIA_LUT[None]).any()


def test_real_frames_need_explicit_spacing(danilov_dir):
    with pytest.raises(MissingSpacingError) as err:
        read_pullback(danilov_dir / "frames")
    assert "frames" in str(err.value) and "spacing.json" in str(err.value)


def test_real_frames_read(danilov_dir):
    pb = read_pullback(danilov_dir / "frames", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert (pb.format, pb.space, pb.shape) == ("image-folder", "cartesian", (186, 750, 750))
    assert pb.catheter_center == (374.5, 374.5)
    f = pb.read(10, 12)
    assert f.shape == (2, 750, 750) and f.dtype == np.float32
    assert 0.0 <= f.min() and f.max() <= 1.0 and f.std() > 0.05
    assert pb.metadata["first_file"] == "001_1_001.png"


def test_real_overlay_small_and_includes_cyan(danilov_dir):
    from PIL import Image

    rgb = np.asarray(Image.open(danilov_dir / "frames" / "001_1_050.png"))
    m = overlay_mask(rgb)
    c = rgb.astype(int)
    cyan = (c[..., 2] > c[..., 0] + 60) & (c[..., 1] > c[..., 0] + 60)
    assert cyan.sum() > 50
    assert m[cyan].all()
    assert m.mean() < 0.01  # the overlay is sparse; tissue stays on the sepia curve


def test_real_mask_keeps_four_channels(danilov_dir):
    m = read_mask(danilov_dir / "masks" / "001_1_001.tiff")
    assert m.shape == (4, 750, 750) and m.dtype == bool
    # channel 3 is a label, not alpha: lumen pixels exist where channel 3 is 0
    assert (m[0] & ~m[3]).sum() > 1000
    assert m[0, 375, 375]  # lumen includes the catheter at the centre


def test_read_danilov(danilov_dir):
    pb, lf = read_danilov(
        danilov_dir, pixel_spacing_mm=0.01, frame_spacing_mm=0.2, frames=[0, 5, 185]
    )
    assert pb.n_frames == 186 and lf.labels.shape == (3, 750, 750)
    assert lf.frames.tolist() == [0, 5, 185]
    assert set(np.unique(lf.labels)) == {0, 1}
    assert lf.labels[:, 375, 375].tolist() == [1, 1, 1]
    assert 0.02 < (lf.labels == 1).mean() < 0.6
    assert lf.extra == {}
    _, lf2 = read_danilov(
        danilov_dir, pixel_spacing_mm=0.01, frame_spacing_mm=0.2, frames=[0], extra_channels=True
    )
    assert set(lf2.extra) == set(MASK_CHANNELS[1:])
    raw = read_mask(danilov_dir / "masks" / "001_1_001.tiff")
    for c, name in enumerate(MASK_CHANNELS[1:], start=1):
        np.testing.assert_array_equal(lf2.extra[name][0], raw[c].astype(np.uint8))


def test_read_danilov_needs_spacing(danilov_dir):
    with pytest.raises(MissingSpacingError):
        read_danilov(danilov_dir, frames=[0])
