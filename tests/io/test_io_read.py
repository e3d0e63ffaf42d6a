"""read_pullback, the npz image reader, spacing resolution and image stacks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octseg.core.errors import InputError, MissingSpacingError
from octseg.io import pick_reader, read_pullback, readers
from octseg.io.npzimage import write_npz_image
from octseg.io.stack import natural_key


def _frames(n=4, h=12, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def test_registry_has_every_format():
    assert {"npz", "dicom", "image-folder", "tiff"} <= set(readers())


def test_npz_uint8_roundtrip(tmp_path):
    f = _frames()
    p = tmp_path / "image.npz"
    write_npz_image(p, f, space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    pb = read_pullback(p)
    assert (pb.format, pb.space, pb.shape) == ("npz", "polar", f.shape)
    assert pb.n_alines == 12 and pb.catheter_center is None
    assert pb.pixel_spacing_mm == 0.01 and pb.frame_spacing_mm == 0.2
    np.testing.assert_array_equal(pb.read(1, 3), f[1:3] / np.float32(255))
    chunks = list(pb.iter_chunks(3))
    assert [s for s, _ in chunks] == [0, 3] and chunks[1][1].shape == (1, 12, 10)


def test_npz_float_and_catheter_center(tmp_path):
    f = np.linspace(0, 1, 2 * 8 * 9, dtype=np.float32).reshape(2, 8, 9)
    p = tmp_path / "image.npz"
    write_npz_image(
        p, f, space="cartesian", pixel_spacing_mm=0.02, frame_spacing_mm=0.1, catheter_center=(3, 4)
    )
    pb = read_pullback(p)
    assert pb.catheter_center == (3.0, 4.0)
    np.testing.assert_allclose(pb.read(), f)


def test_npz_default_center_is_image_centre(tmp_path):
    p = tmp_path / "image.npz"
    write_npz_image(
        p, _frames(1, 9, 7), space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.2
    )
    assert read_pullback(p).catheter_center == (4.0, 3.0)


def test_arguments_override_file_and_sidecar(tmp_path):
    p = tmp_path / "image.npz"
    write_npz_image(p, _frames(), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    (tmp_path / "spacing.json").write_text(json.dumps({"frame_spacing_mm": 0.5}))
    pb = read_pullback(p)
    assert pb.frame_spacing_mm == 0.5 and pb.pixel_spacing_mm == 0.01  # sidecar > file
    pb = read_pullback(p, pixel_spacing_mm=0.03, frame_spacing_mm=0.4)
    assert (pb.pixel_spacing_mm, pb.frame_spacing_mm) == (0.03, 0.4)
    assert pb.metadata["spacing_source"]["pixel_spacing_mm"] == "argument"


def test_npz_missing_spacing_names_file_and_remedy(tmp_path):
    p = tmp_path / "image.npz"
    np.savez_compressed(p, frames=_frames(), space=np.array("polar"), pixel_spacing_mm=0.01)
    with pytest.raises(MissingSpacingError) as err:
        read_pullback(p)
    msg = str(err.value)
    assert str(p) in msg and "frame_spacing_mm" in msg and "spacing.json" in msg
    assert "\n" not in msg
    assert read_pullback(p, frame_spacing_mm=0.2).frame_spacing_mm == 0.2


@pytest.mark.parametrize(
    "content, problem",
    [
        ({"frames": np.zeros((2, 3))}, "(F, H, W)"),
        ({"frames": np.zeros((1, 4, 5), np.int32)}, "uint8 or float32"),
        ({"frames": np.zeros((1, 4, 5), np.uint8)}, "space"),
    ],
)
def test_npz_bad_content(tmp_path, content, problem):
    p = tmp_path / "bad.npz"
    np.savez(p, **content)
    with pytest.raises(InputError, match=r"bad\.npz") as err:
        read_pullback(p, pixel_spacing_mm=1, frame_spacing_mm=1)
    assert problem in str(err.value)


def test_npz_nan_and_out_of_range_frames(tmp_path):
    p = tmp_path / "nan.npz"
    f = np.zeros((2, 4, 4), np.float32)
    f[1, 1, 1] = np.nan
    write_npz_image(p, f, space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    pb = read_pullback(p)
    pb.read(0, 1)
    with pytest.raises(InputError, match="NaN"):
        pb.read(1, 2)
    f[1, 1, 1] = 3.0
    write_npz_image(p, f, space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    with pytest.raises(InputError, match="outside 0..1"):
        read_pullback(p).read()


@pytest.mark.parametrize("payload", [b"", b"not a zip at all" * 10])
def test_corrupt_npz(tmp_path, payload):
    p = tmp_path / "image.npz"
    p.write_bytes(payload)
    with pytest.raises(InputError, match=r"image\.npz: "):
        read_pullback(p)


def test_random_bytes_and_missing_path(tmp_path):
    p = tmp_path / "noise.bin"
    p.write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(InputError, match="not a recognised image"):
        read_pullback(p)
    with pytest.raises(InputError, match="no such file"):
        read_pullback(tmp_path / "absent.npz")
    with pytest.raises(InputError, match="unknown format"):
        pick_reader(p, "nope")


def test_bad_sidecar(tmp_path):
    p = tmp_path / "image.npz"
    write_npz_image(p, _frames(), space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    side = tmp_path / "spacing.json"
    side.write_text('{"pixel_spacing_mm": -1}')
    with pytest.raises(InputError, match="spacing.json.*positive"):
        read_pullback(p)
    side.write_text("{oops")
    with pytest.raises(InputError, match="spacing.json"):
        read_pullback(p)


# ------------------------------------------------------------------------------- image stacks
def test_natural_sort():
    names = ["f10.png", "f2.png", "f1.png", "F3.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "f2.png", "F3.png", "f10.png"]


def test_png_folder_natural_order_and_sidecar(tmp_path):
    from PIL import Image

    folder = tmp_path / "image"
    folder.mkdir()
    f = _frames(11, 6, 5)
    for i in range(11):
        Image.fromarray(f[i]).save(folder / f"frame{i}.png")  # frame10 sorts after frame9
    with pytest.raises(MissingSpacingError, match="pixel_spacing_mm"):
        read_pullback(folder)
    (folder / "spacing.json").write_text(
        json.dumps({"pixel_spacing_mm": 0.01, "frame_spacing_mm": 0.2, "space": "polar"})
    )
    pb = read_pullback(folder)
    assert (pb.format, pb.space, pb.shape) == ("image-folder", "polar", (11, 6, 5))
    np.testing.assert_array_equal(pb.read(), f / np.float32(255))


def test_png_folder_mismatched_sizes(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a1.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "a2.png")
    pb = read_pullback(tmp_path, pixel_spacing_mm=1, frame_spacing_mm=1)
    with pytest.raises(InputError, match=r"a2\.png: frame size"):
        pb.read()


def test_png_folder_rgb_sepia(tmp_path):
    from PIL import Image

    from octseg.io.color import gray_to_sepia

    g = np.arange(240, dtype=np.uint8).reshape(1, 12, 20)
    Image.fromarray(gray_to_sepia(g[0])).save(tmp_path / "x.png")
    pb = read_pullback(tmp_path, pixel_spacing_mm=1, frame_spacing_mm=1)
    assert np.abs(pb.read()[0] * 255 - g[0]).max() <= 1.0


def test_multipage_tiff(tmp_path):
    import tifffile

    f = (_frames(3, 7, 6).astype(np.uint16) * 257).astype(np.uint16)
    p = tmp_path / "stack.tif"
    tifffile.imwrite(p, f, photometric="minisblack")
    pb = read_pullback(p, pixel_spacing_mm=0.01, frame_spacing_mm=0.1)
    assert (pb.format, pb.shape, pb.space) == ("tiff", (3, 7, 6), "cartesian")
    np.testing.assert_allclose(pb.read(1, 2), f[1:2] / 65535.0, atol=1e-6)


def test_tiff_rgb_separate_planes(tmp_path):
    import tifffile

    from octseg.io.color import gray_to_sepia

    g = np.arange(100, 200, dtype=np.uint8).reshape(10, 10)
    rgb = np.moveaxis(gray_to_sepia(g), -1, 0)  # (3, H, W) planar
    p = tmp_path / "rgb.tif"
    tifffile.imwrite(p, rgb, photometric="rgb", planarconfig="separate")
    pb = read_pullback(p, pixel_spacing_mm=1, frame_spacing_mm=1)
    assert pb.shape == (1, 10, 10)
    assert np.abs(pb.read()[0] * 255 - g).max() <= 1.0


def test_corrupt_tiff(tmp_path):
    p = tmp_path / "bad.tif"
    p.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match=r"bad\.tif"):
        read_pullback(p, pixel_spacing_mm=1, frame_spacing_mm=1)
