"""Colour frames in a known display map ("hot", "bone", "cividis"... ``DISPLAY_MAPS``) are
recognised per pullback and read through that map's own curve, giving back the grey level they
were drawn from; sepia exports keep the sepia reading, and a map octseg does not know is read as
before and warned about (docs/io.md, "Other colour maps")."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from octseg.datasets.appearance import palette_lut
from octseg.io import read_pullback
from octseg.io.color import (
    DISPLAY_MAPS,
    MAP_FIT_TOL,
    display_lut,
    display_metadata,
    display_warnings,
    is_grey_display,
    overlay_mask,
    rgb_frames_to_gray,
    sepia_to_gray,
)

LEVEL_TOL = 1.6 / 255  # the maps' own luminance curves give back the index within 1.6 levels


def _tissue(h=96, w=128, seed=3) -> np.ndarray:
    """A frame with a dark lumen, a bright wall and a tail falling to black (uint8 levels)."""
    rng = np.random.default_rng(seed)
    depth = np.linspace(0, 1, w)[None, :]
    level = np.where(depth < 0.2, 4, 250 * np.exp(-3.0 * (depth - 0.2)))
    return np.clip(level + rng.normal(0, 14, (h, w)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", DISPLAY_MAPS)
def test_each_known_map_is_recognised_and_read_back_to_its_level(name):
    grey = np.stack([_tissue(seed=s) for s in range(3)])
    rgb = palette_lut(name)[grey]
    meta = display_metadata(list(rgb))
    assert meta["display_map"] == name, meta
    assert meta["display_map_score"] <= MAP_FIT_TOL
    assert display_warnings(meta) == []
    read = rgb_frames_to_gray(rgb, lut=display_lut(meta))
    assert np.abs(read - grey / 255.0).max() <= LEVEL_TOL
    # what the reader gave these frames before: the sepia curve, a different monotone reading
    # (cividis, whose dark end is blue-grey, and copper, close to sepia, move least)
    assert np.abs(sepia_to_gray(rgb) - grey / 255.0).max() > 10 / 255


@pytest.mark.parametrize("name", ["CMRmap", "gnuplot2", "Blues_r"])
def test_a_map_octseg_does_not_know_is_read_as_before_and_warned(name):
    rgb = palette_lut(name)[np.stack([_tissue(seed=s) for s in range(2)])]
    meta = display_metadata(list(rgb))
    assert meta["display"] == "other" and "display_map" not in meta, meta
    assert display_lut(meta) is None  # each frame read as before: grey or the sepia curve
    assert "neither a sepia nor a grey display" in display_warnings(meta)[0]


def test_a_map_along_part_of_a_known_one_is_not_taken_for_it():
    """ "autumn" (red to yellow) is the middle of "hot": it scores as "hot" but has no dark end,
    which IVOCT frames have, so it is a map octseg does not know."""
    rgb = palette_lut("autumn")[np.stack([_tissue(seed=s) for s in range(2)])]
    meta = display_metadata(list(rgb))
    assert meta["display"] == "other" and "display_map" not in meta, meta
    assert display_warnings(meta)


def test_a_reversed_map_reads_inverted_and_the_level_check_says_so():
    """ "hot_r" has the colours of "hot" in reverse: it is read as "hot", so the frame comes out
    inverted, which infer.py's level check warns about (octseg.io.levels)."""
    from octseg.io.levels import level_metadata, level_warnings

    grey = np.stack([_tissue(seed=s) for s in range(3)])
    meta = display_metadata(list(palette_lut("hot_r")[grey]))
    assert meta["display_map"] == "hot"
    read = [rgb_frames_to_gray(f, lut=display_lut(meta)) for f in palette_lut("hot_r")[grey]]
    assert np.abs(read[0] - (1 - grey[0] / 255.0)).max() <= LEVEL_TOL
    assert level_warnings(level_metadata(read))


def test_sepia_and_grey_exports_fit_no_other_map():
    grey = _tissue()
    assert "display_map" not in display_metadata([palette_lut("sepia")[grey]])
    assert display_metadata([palette_lut("grey")[grey]]) == {"display": "grey"}


def _write(fmt: str, rgb: np.ndarray, tmp_path):
    """The frames as a PNG folder or a TIFF."""
    import tifffile

    if fmt == "tiff":
        tifffile.imwrite(tmp_path / "pb.tif", rgb, photometric="rgb")
        return tmp_path / "pb.tif"
    src = tmp_path / "pb"
    src.mkdir()
    for i, f in enumerate(rgb):
        Image.fromarray(f).save(src / f"{i:03d}.png")
    return src


@pytest.mark.parametrize("fmt", ["folder", "tiff", "RGB", "PALETTE COLOR"])
def test_every_reader_reads_a_known_map_as_the_grey_it_was_drawn_from(tmp_path, fmt):
    from dicom_helpers import recoloured_dicom

    grey = np.stack([_tissue(seed=s) for s in range(3)])
    hot = palette_lut("hot")
    if fmt in ("folder", "tiff"):
        src = _write(fmt, hot[grey], tmp_path)
        pb = read_pullback(src, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    else:  # written in sepia, then the pixel data or colour table replaced by "hot"
        src = tmp_path / "pb.dcm"
        recoloured_dicom(src, grey, fmt, hot)
        pb = read_pullback(src)
    assert pb.metadata["display_map"] == "hot", pb.metadata
    assert pb.describe()["display_map"] == "hot"  # what `octseg inspect` prints
    assert np.abs(pb.read() - grey / 255.0).max() <= LEVEL_TOL
    if fmt == "folder":  # the masked reading (catheter detection, overlays) agrees
        mask = np.zeros(grey.shape[1:], bool)
        mask[::3, ::5] = True
        assert np.abs(pb.loader.sampled(0, 3, mask) - grey[:, mask] / 255.0).max() <= LEVEL_TOL


def test_dim_and_16_bit_frames_of_a_fitted_map_read_through_it(tmp_path):
    """A dim "bone" frame alone would pass for a grey display; in a pullback fitted to "bone" it
    is read through "bone" like the rest. 16-bit frames are scaled to 8 bits first."""
    grey = np.stack([_tissue(seed=s) for s in range(4)])
    grey[1] = grey[1] // 6  # a grey display alone; not judged (the first, middle, last are)
    bone = palette_lut("bone")[grey].astype(np.uint16) * 257
    pb = read_pullback(_write("tiff", bone, tmp_path), pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert pb.metadata["display_map"] == "bone", pb.metadata
    assert is_grey_display(palette_lut("bone")[grey[1]])  # read alone, it would read as grey
    assert np.abs(pb.read() - grey / 255.0).max() <= LEVEL_TOL
    mask = np.zeros(grey.shape[1:], bool)
    mask[::4, ::3] = True  # the masked reading of the TIFF loader agrees
    assert np.abs(pb.loader.sampled(0, 4, mask) - grey[:, mask] / 255.0).max() <= LEVEL_TOL


def test_jpeg_exports_of_a_known_map_read_close_to_their_grey(tmp_path):
    """JPEG shifts colours (chroma is stored at half resolution) but keeps the luminance: the
    map is still recognised and the reading errs about as much as a grey JPEG export of the
    same frames does, where the sepia curve read "cividis" tens of levels off."""
    grey = np.stack([_tissue(h=192, w=256, seed=s) for s in range(3)])
    src = tmp_path / "pb"
    src.mkdir()
    for i, f in enumerate(palette_lut("cividis")[grey]):
        Image.fromarray(f).save(src / f"{i:03d}.jpg", quality=85)
    pb = read_pullback(src, pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    assert pb.metadata["display_map"] == "cividis", pb.metadata
    err = np.abs(pb.read() - grey / 255.0) * 255
    buf = io.BytesIO()
    Image.fromarray(grey[0]).save(buf, "JPEG", quality=85)
    grey_jpeg_err = np.abs(np.asarray(Image.open(buf)).astype(float) - grey[0]).mean()
    assert err[0].mean() < 1.5 * grey_jpeg_err + 1, (err[0].mean(), grey_jpeg_err)
    jpeg = np.stack([np.asarray(Image.open(src / f"{i:03d}.jpg")) for i in range(3)])
    assert (np.abs(sepia_to_gray(jpeg) - grey / 255.0) * 255).mean() > 10


def test_real_frames_keep_the_sepia_reading_and_read_back_from_other_maps(danilov_dir):
    """The vendor's sepia export fits no other map; the same real frames re-drawn in "hot" or
    "cividis" (overlays kept) are recognised and read within a level of the sepia reading."""
    from octseg.datasets.danilov.reader import list_danilov, read_rgb
    from octseg.datasets.robustness import redraw

    paths, _ = list_danilov(danilov_dir)
    frames = [read_rgb(paths[i]) for i in (0, len(paths) // 2, len(paths) - 1)]
    assert "display_map" not in display_metadata(frames)
    for name in ("hot", "cividis"):
        drawn = [redraw(f, name) for f in frames]
        meta = display_metadata(drawn)
        assert meta["display_map"] == name, meta
        for f, d in zip(frames, drawn, strict=True):
            plain = ~overlay_mask(f)
            err = np.abs(rgb_frames_to_gray(d, lut=display_lut(meta)) - sepia_to_gray(f))[plain]
            assert err.max() <= LEVEL_TOL, (name, err.max() * 255)
