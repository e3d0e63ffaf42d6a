"""Catheter centre of Cartesian frames detected from the catheter/sheath rings (issue 13 item 5)
on shifted and cropped synthetic frames (``octseg synth --cartesian``) and the real Danilov
frames; a centre given by the user wins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from octseg.cli import main
from octseg.core.catheter import detect_center
from octseg.io import read_pullback

TOL_PX = 1.0  # detection error allowed on synthetic frames (pixels)


@pytest.fixture(scope="module")
def synth_cart(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    args = ["synth", str(out), "--n", "1", "--seed", "3", "--preset", "small", "--quiet"]
    args += ["--n-frames", "48", "--frame-spacing", "0.3", "--cartesian"]
    assert main([*args, "--cartesian-size", "320"]) == 0
    with np.load(out / "synth-000" / "image_cartesian.npz") as z:
        frames = z["frames"][::6].astype(np.float32)
        ps = float(z["pixel_spacing_mm"])
        center = tuple(float(c) for c in z["catheter_center"])
    return frames / frames.max(), ps, center


@pytest.mark.parametrize("shift", [(17, -23), (-30, 12), (6, 4), (0, 0)])
def test_shifted_frames(synth_cart, shift):
    frames, ps, (cy, cx) = synth_cart
    moved = np.roll(frames, shift, axis=(1, 2))  # the catheter moves with the content
    got = detect_center(moved, ps, snap_px=0)
    assert got is not None
    assert np.hypot(got[0] - (cy + shift[0]), got[1] - (cx + shift[1])) < TOL_PX


@pytest.mark.parametrize("window", [(20, 300, 0, 290), (0, 250, 40, 320), (60, 320, 50, 310)])
def test_cropped_frames(synth_cart, window):
    frames, ps, (cy, cx) = synth_cart
    r0, r1, c0, c1 = window
    got = detect_center(frames[:, r0:r1, c0:c1], ps, snap_px=0)
    assert got is not None
    assert np.hypot(got[0] - (cy - r0), got[1] - (cx - c0)) < TOL_PX


def test_no_rings_no_centre():
    rng = np.random.default_rng(0)
    assert detect_center(rng.random((4, 200, 200)).astype(np.float32), 0.02) is None
    assert detect_center(np.zeros((2, 100, 100), np.float32), 0.02) is None


def write_stack(folder: Path, frames: np.ndarray, sidecar: dict) -> Path:
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray((f * 255).astype(np.uint8)).save(folder / f"f{i:03d}.png")
    (folder / "spacing.json").write_text(json.dumps(sidecar))
    return folder


def test_reader_detects_an_off_centre_catheter_and_the_sidecar_wins(synth_cart, tmp_path):
    frames, ps, (cy, cx) = synth_cart
    crop = frames[:, 30:310, 0:280]  # catheter at (cy - 30, cx): 10 px off the middle
    spacing = {"pixel_spacing_mm": ps, "frame_spacing_mm": 0.3}
    pb = read_pullback(write_stack(tmp_path / "a", crop, spacing))
    assert np.hypot(pb.catheter_center[0] - (cy - 30), pb.catheter_center[1] - cx) < TOL_PX
    given = {**spacing, "catheter_center": [100.0, 120.0]}
    pb = read_pullback(write_stack(tmp_path / "b", crop, given))
    assert pb.catheter_center == (100.0, 120.0)
    # centred frames: the detection lands within SNAP_PX of the middle, which is kept exactly
    pb = read_pullback(write_stack(tmp_path / "c", frames, spacing))
    assert pb.catheter_center == ((frames.shape[1] - 1) / 2, (frames.shape[2] - 1) / 2)


DANILOV = Path(__file__).resolve().parents[3] / "shared" / "data" / "ivoct-danilov"


@pytest.mark.skipif(not (DANILOV / "pullback-001" / "frames").is_dir(), reason="no real data")
def test_real_danilov_frames_centre_near_the_image_centre():
    folder = DANILOV / "pullback-001" / "frames"
    names = sorted(folder.glob("*.png"))[::23]
    frames = np.stack([np.asarray(Image.open(p).convert("L"), np.float32) / 255 for p in names])
    got = detect_center(frames, 0.01, snap_px=0)
    h, w = frames.shape[1:]
    assert got is not None
    assert np.hypot(got[0] - (h - 1) / 2, got[1] - (w - 1) / 2) < 3.0
