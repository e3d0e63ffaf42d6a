"""A grey display exported as RGB (R = G = B) reads as its level, not through the sepia map
(which would brighten it), in every reader; sepia frames read as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from octseg.core.errors import InputError
from octseg.io import read_pullback
from octseg.io.color import (
    SEPIA_LUT,
    display_to_gray,
    gray_to_sepia,
    is_grey_display,
    sepia_to_gray,
)
from octseg.io.dicom import _to_gray


def _grey_frames(n=3, h=20, w=18, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def test_a_grey_display_reads_as_its_level_and_sepia_as_before():
    levels = np.arange(256, dtype=np.uint8)
    grey_rgb = np.repeat(levels[:, None], 3, axis=1)
    np.testing.assert_allclose(display_to_gray(grey_rgb) * 255, levels, atol=1e-3)
    assert abs(sepia_to_gray(grey_rgb)[64] * 255 - 64) > 50  # what the sepia map alone gives
    np.testing.assert_allclose(display_to_gray(SEPIA_LUT), sepia_to_gray(SEPIA_LUT), atol=1e-7)
    assert is_grey_display(grey_rgb) and not is_grey_display(SEPIA_LUT)


def test_grey_display_with_overlay_and_jpeg_rounding_is_still_grey():
    f = _grey_frames(1, 40, 40)[0]
    rgb = np.repeat(f[..., None], 3, axis=-1).astype(np.int16)
    rgb += np.random.default_rng(1).integers(-1, 2, rgb.shape)  # channels within 2 levels
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    rgb[5, :] = (0, 200, 200)  # a cyan measurement line: 1 of 40 rows
    assert is_grey_display(rgb)
    keep = np.ones(f.shape, bool)
    keep[5] = False
    np.testing.assert_allclose(display_to_gray(rgb)[keep] * 255, f[keep], atol=1.5)


def _cyan_lines(rgb: np.ndarray, rows) -> np.ndarray:
    out = rgb.copy()
    for r in rows:
        out[r : r + 2] = (0, 200, 200)  # measurement lines, 2 px wide
    return out


def test_jpeg_of_a_grey_display_with_overlays_is_still_grey(tmp_path):
    """JPEG's chroma subsampling bleeds the overlay's colour into the grey pixels around it
    (lines covering 10% of the frame at quality 85 leave 31% of it off the axis): still grey."""
    yy, xx = np.mgrid[0:100, 0:100]
    f = np.clip(20 + 2 * np.hypot(yy - 50, xx - 50), 0, 255).astype(np.uint8)  # smooth
    rgb = _cyan_lines(np.repeat(f[..., None], 3, axis=-1), (10, 30, 50, 70, 90))
    Image.fromarray(rgb).save(tmp_path / "frame.jpg", quality=85)
    back = np.asarray(Image.open(tmp_path / "frame.jpg").convert("RGB"))
    assert is_grey_display(back)
    clear = np.ones(f.shape, bool)
    for r in (10, 30, 50, 70, 90):
        clear[r - 4 : r + 6] = False
    np.testing.assert_allclose(display_to_gray(back)[clear] * 255, f[clear], atol=4)


def test_dark_and_blank_grey_frames_are_grey_and_sepia_with_overlays_is_not():
    dark = np.zeros((60, 60, 3), np.uint8)
    dark[20:26] = 90  # a thin lit ring, 10% of the frame
    dark = _cyan_lines(dark, (40,))  # cyan text beside it
    assert is_grey_display(dark)
    blank = np.full((20, 20, 3), 5, np.uint8)
    assert is_grey_display(blank)
    np.testing.assert_allclose(display_to_gray(blank), 5 / 255, atol=1e-6)
    sepia = gray_to_sepia(_grey_frames(1, 60, 60, seed=4)[0])
    sepia[:6] = 255  # white overlay text and a grey scale bar
    sepia[6:9] = 128
    assert not is_grey_display(sepia)
    assert not is_grey_display(gray_to_sepia(np.full((8, 8), 3, np.uint8)))  # near-black sepia


def test_palette_colour_dicom_with_a_grey_table_reads_as_its_index(tmp_path):
    """PALETTE COLOR: one table for the file, decided once; a grey table reads as the index,
    the sepia table as the sepia map; a file without its table is refused by name."""
    import pydicom

    from octseg.io.dicom_write import write_ivoct_dicom

    f = _grey_frames(2, 16, 16, seed=5)
    path = tmp_path / "palette.dcm"
    write_ivoct_dicom(
        path, f, space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        photometric="PALETTE COLOR",
    )  # fmt: skip
    np.testing.assert_allclose(read_pullback(path).read() * 255, f, atol=1.0)  # sepia table
    ds = pydicom.dcmread(path)
    grey = np.arange(256, dtype=np.uint16) * 257
    for colour in ("Red", "Green", "Blue"):
        ds[f"{colour}PaletteColorLookupTableDescriptor"].value = [256, 0, 16]
        setattr(ds, f"{colour}PaletteColorLookupTableData", grey.tobytes())
    ds.save_as(path)
    np.testing.assert_allclose(read_pullback(path).read() * 255, f, atol=1e-3)
    del ds.RedPaletteColorLookupTableData
    ds.save_as(path)
    with pytest.raises(InputError, match="unreadable palette colour table") as err:
        read_pullback(path).read()
    assert str(path) in str(err.value)


def _folder(root, frames: np.ndarray, mode: str):
    root.mkdir()
    for i, f in enumerate(frames):
        img = Image.fromarray(f) if mode == "L" else Image.fromarray(f).convert(mode)
        img.save(root / f"frame_{i:03d}.png")
    (root / "spacing.json").write_text(
        json.dumps({"pixel_spacing_mm": 0.01, "frame_spacing_mm": 0.2})
    )
    return root


def test_image_folder_of_rgb_grey_frames_reads_as_the_grey_png(tmp_path):
    f = _grey_frames()
    grey = read_pullback(_folder(tmp_path / "grey", f, "L")).read()
    rgb = read_pullback(_folder(tmp_path / "rgb", f, "RGB")).read()
    np.testing.assert_allclose(rgb, grey, atol=1e-5)
    np.testing.assert_allclose(grey, f / 255.0, atol=1e-6)


def test_sepia_image_folder_reads_as_the_sepia_map_inverts_it(tmp_path):
    f = _grey_frames(seed=1)
    pb = read_pullback(_folder(tmp_path / "sepia", gray_to_sepia(f), "RGB"))
    np.testing.assert_allclose(pb.read() * 255, f, atol=1.0)  # the map round-trips within 1/255


def test_dicom_rgb_of_a_grey_display_reads_as_monochrome():
    f = _grey_frames(1)[0]
    rgb = np.repeat(f[..., None], 3, axis=-1)
    mono = _to_gray(f, "MONOCHROME2", None, 255.0, False)
    np.testing.assert_allclose(_to_gray(rgb, "RGB", None, 255.0, False), mono, atol=1e-5)


def test_masked_sampling_of_a_grey_rgb_frame_reads_as_the_whole_frame():
    """The polar resampler converts only the pixels it needs; the grey-display choice is still
    the whole frame's (a mask of dark pixels alone could not tell)."""
    from octseg.io.stack import gray_at, to_gray

    f = _grey_frames(1, 30, 30, seed=2)[0]
    rgb = np.repeat(f[..., None], 3, axis=-1)
    mask = np.zeros(f.shape, bool)
    mask[:4, :4] = True
    np.testing.assert_allclose(gray_at(rgb, mask, None), to_gray(rgb, None)[mask], atol=1e-6)
    np.testing.assert_allclose(gray_at(rgb, mask, None), f[mask] / 255.0, atol=1e-5)


def test_16_bit_colour_frames_scale_by_bit_depth_not_by_each_frames_maximum():
    """A dark frame of a 16-bit pullback (every value under 256) reads dark, as its bright
    neighbours are scaled: by 65535, the bit depth."""
    from octseg.io.color import rgb_frames_to_gray

    sepia8 = gray_to_sepia(_grey_frames(1, 10, 10, seed=6)[0])
    bright = sepia8.astype(np.uint16) * 257  # the same frame in 16 bits
    dark = bright // 512  # every value < 128
    assert dark.max() < 256
    np.testing.assert_allclose(rgb_frames_to_gray(bright), sepia_to_gray(sepia8), atol=1e-6)
    assert rgb_frames_to_gray(dark).max() < 0.01


# ---------------------------------------------------------------- display maps other than sepia
def _tissue(h=48, w=64, seed=3) -> np.ndarray:
    """A frame with a dark lumen, a bright wall and a falling tail (uint8 levels)."""
    rng = np.random.default_rng(seed)
    depth = np.linspace(0, 1, w)[None, :]
    level = np.where(depth < 0.25, 5, 230 * np.exp(-2.5 * (depth - 0.25)))
    return np.clip(level + rng.normal(0, 12, (h, w)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "palette, kind",
    [("sepia", "sepia"), ("grey", "grey"), ("copper", "sepia"), ("hot", "other"),
     ("cividis", "other"), ("bone", "other")],
)  # fmt: skip
def test_display_kind_tells_other_colour_maps_from_sepia_and_grey(palette, kind):
    from octseg.datasets.appearance import palette_lut
    from octseg.io.color import OFF_MAP_SHARE, display_kind

    rgb = palette_lut(palette)[_tissue()]
    got, share = display_kind(rgb)
    assert got == kind, (palette, share)
    if kind == "sepia":  # copper follows a sepia map's direction: read as sepia, no warning
        assert share < OFF_MAP_SHARE
    # 16-bit frames of the same display are judged alike (scaled by the bit depth)
    assert display_kind(rgb.astype(np.uint16) * 257)[0] == kind


def test_burned_in_overlay_on_a_sepia_frame_is_not_another_map():
    from octseg.io.color import display_kind

    rgb = gray_to_sepia(_tissue())
    rgb[10:13, :] = (0, 255, 255)  # a cyan measurement line across the frame
    rgb[30:34, 40:60] = (255, 255, 0)  # yellow text
    kind, share = display_kind(rgb)
    assert kind == "sepia" and 0.05 < share < 0.15


@pytest.mark.parametrize("fmt", ["folder", "tiff"])
def test_readers_record_the_display_of_colour_frames(tmp_path, fmt):
    import tifffile

    from octseg.datasets.appearance import palette_lut

    hot = palette_lut("hot")[np.stack([_tissue(seed=s) for s in range(2)])]
    if fmt == "folder":
        src = tmp_path / "pb"
        src.mkdir()
        for i, f in enumerate(hot):
            Image.fromarray(f).save(src / f"{i:03d}.png")
    else:
        src = tmp_path / "pb.tif"
        tifffile.imwrite(src, hot, photometric="rgb")
    pb = read_pullback(src, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert pb.metadata["display"] == "other"
    assert pb.metadata["display_off_sepia_share"] >= 0.15
    assert pb.describe()["display"] == "other"  # what `octseg inspect` prints
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(_tissue()).save(grey / "000.png")
    plain = read_pullback(grey, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert "display" not in plain.metadata


@pytest.mark.parametrize("photometric", ["RGB", "PALETTE COLOR"])
def test_dicom_records_the_display_of_its_colour_frames(tmp_path, photometric):
    """Sepia as written reads "sepia"; the same frames in "hot" (pixel data or colour table
    replaced) read "other"."""
    from dicom_helpers import recoloured_dicom

    from octseg.datasets.appearance import palette_lut
    from octseg.io.dicom_write import write_ivoct_dicom

    f = np.stack([_tissue(seed=s) for s in range(2)])
    path = tmp_path / "colour.dcm"
    write_ivoct_dicom(
        path, f, space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        photometric=photometric,
    )  # fmt: skip
    assert read_pullback(path).metadata["display"] == "sepia"
    recoloured_dicom(path, f, photometric, palette_lut("hot"))
    pb = read_pullback(path)
    assert pb.metadata["display"] == "other" and pb.metadata["display_off_sepia_share"] >= 0.15
    grey = tmp_path / "grey.dcm"
    write_ivoct_dicom(grey, f, space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert "display" not in read_pullback(grey).metadata


def test_a_blank_first_frame_does_not_hide_the_colour_map(tmp_path):
    """Judged on the first, middle and last frames, blank ones skipped: a pullback that opens
    on an unflushed black frame is still "other"; one with only blank frames is not judged."""
    from octseg.datasets.appearance import palette_lut
    from octseg.io.color import display_metadata

    hot = palette_lut("hot")
    blank = np.zeros((48, 64, 3), np.uint8)
    frames = [blank, hot[_tissue(seed=1)], hot[_tissue(seed=2)]]
    assert display_metadata(frames)["display"] == "other"
    assert display_metadata([blank, blank]) == {}
    src = tmp_path / "pb"
    src.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(src / f"{i:03d}.png")
    pb = read_pullback(src, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert pb.metadata["display"] == "other"


def test_tiff_sizes_are_checked_before_any_page_is_decoded(tmp_path, monkeypatch):
    import tifffile

    from octseg.io import limits, stack

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((2, 128, 128, 3), np.uint8), photometric="rgb")
    decoded = []
    real = stack.read_image_file
    monkeypatch.setattr(stack, "read_image_file", lambda *a: decoded.append(a) or real(*a))
    with limits.override(max_frame_side=64), pytest.raises(InputError, match="128"):
        read_pullback(path, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert decoded == []


def test_float_colour_frames_read_as_values_in_0_to_1(tmp_path):
    """A float32 RGB TIFF in 0..1 reads as its uint8 twin (it used to be cast to 0/1: black);
    one outside 0..1 is refused naming the file."""
    import tifffile

    f = _grey_frames(2, 16, 16, seed=9)
    sepia = gray_to_sepia(f)
    for name, data in (("u8.tif", sepia), ("f32.tif", sepia.astype(np.float32) / 255)):
        tifffile.imwrite(tmp_path / name, data, photometric="rgb")
    u8, f32 = (
        read_pullback(tmp_path / n, pixel_spacing_mm=0.01, frame_spacing_mm=0.2).read()
        for n in ("u8.tif", "f32.tif")
    )
    np.testing.assert_allclose(f32, u8, atol=1e-6)
    assert f32.max() > 0.5
    tifffile.imwrite(tmp_path / "bad.tif", sepia.astype(np.float32), photometric="rgb")
    with pytest.raises(InputError, match="outside 0..1") as err:
        read_pullback(tmp_path / "bad.tif", pixel_spacing_mm=0.01, frame_spacing_mm=0.2).read()
    assert "bad.tif" in str(err.value)
