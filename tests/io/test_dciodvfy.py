"""IVOCT DICOM written by octseg and the DICOM-SEG infer.py writes pass an independent validator:
``dciodvfy`` (Debian dicom3tools) reports no "Error" lines. Skipped where it is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_helpers import TINY_MODEL

from octseg.cli import main
from octseg.io.dicom_write import write_ivoct_dicom

ROOT = Path(__file__).resolve().parents[2]
DCIODVFY = shutil.which("dciodvfy")
pytestmark = [
    pytest.mark.dciodvfy,
    pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (dicom3tools) is not installed"),
]


def dciodvfy_errors(path: Path) -> list[str]:
    """The validator's "Error" lines for ``path`` (it prints its findings on stderr)."""
    res = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    lines = (res.stdout + res.stderr).splitlines()
    assert any(line.strip() for line in lines), "dciodvfy printed nothing"
    return [line for line in lines if "Error" in line]


def _synth(out: Path) -> tuple[Path, Path]:
    """``octseg synth --image-format dicom --cartesian``: the polar DICOM (For Processing) and
    the scan-converted frames written as a For Presentation DICOM."""
    from octseg.io import read_pullback

    args = ["synth", str(out), "--n", "1", "--preset", "small", "--n-frames", "8",
            "--frame-spacing", "1.5", "--image-format", "dicom", "--cartesian",
            "--cartesian-size", "96", "--quiet"]  # fmt: skip
    assert main(args) == 0
    (polar,) = sorted(out.rglob("image.dcm"))
    (cart_npz,) = sorted(out.rglob("image_cartesian.npz"))
    pb = read_pullback(cart_npz)
    cart = polar.with_name("image_cartesian.dcm")
    write_ivoct_dicom(
        cart, np.round(pb.read() * 255).astype(np.uint8), space="cartesian",
        pixel_spacing_mm=pb.pixel_spacing_mm, frame_spacing_mm=pb.frame_spacing_mm,
        catheter_center=pb.catheter_center,
    )  # fmt: skip
    return polar, cart


@pytest.fixture(scope="module")
def synth_dicoms(tmp_path_factory) -> dict[str, Path]:
    polar, cart = _synth(tmp_path_factory.mktemp("synth"))
    return {"polar": polar, "cartesian": cart}


@pytest.mark.parametrize("space", ["polar", "cartesian"])
def test_synth_ivoct_dicom_validates(synth_dicoms, space):
    import pydicom

    path = synth_dicoms[space]
    intent = pydicom.dcmread(path, stop_before_pixels=True).PresentationIntentType
    assert intent == ("FOR PROCESSING" if space == "polar" else "FOR PRESENTATION")
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize("ts", ["explicit_le", "rle", "jpeg_baseline"])
@pytest.mark.parametrize("space", ["polar", "cartesian"])
def test_written_ivoct_dicom_validates_for_every_transfer_syntax(tmp_path, space, ts):
    frames = np.random.default_rng(1).integers(0, 256, (3, 24, 32), dtype=np.uint8)
    p = tmp_path / "x.dcm"
    write_ivoct_dicom(
        p, frames, space=space, pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        transfer_syntax=ts, catheter_center=(10.0, 14.0) if space == "cartesian" else None,
    )  # fmt: skip
    assert dciodvfy_errors(p) == []


def test_validator_finds_errors_in_an_incomplete_file(tmp_path, synth_dicoms):
    """The check can fail: the same file without a Type 1 attribute is reported."""
    import pydicom

    ds = pydicom.dcmread(synth_dicoms["polar"])
    del ds.VolumetricProperties
    ds.save_as(tmp_path / "bad.dcm")
    assert any("VolumetricProperties" in line for line in dciodvfy_errors(tmp_path / "bad.dcm"))


def test_infer_dicom_seg_validates(tmp_path, synth_dicoms):
    from octseg.model.predictor import save_untrained_checkpoint

    inp = tmp_path / "in"
    inp.mkdir()
    for space, src in synth_dicoms.items():
        shutil.copy(src, inp / f"{space}.dcm")
    ckpt = save_untrained_checkpoint(
        tmp_path / "model.pt", model_cfg=TINY_MODEL,
        net_grid={"n_alines": 64, "n_samples": 48, "spacing_mm": 0.05},
    )  # fmt: skip
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "infer.py"), f"checkpoint={ckpt}", f"input={inp}",
           f"output={out}", "progress=false"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    for space in synth_dicoms:
        seg = out / space / "seg.dcm"
        assert seg.is_file(), sorted(p.name for p in (out / space).iterdir())
        assert dciodvfy_errors(seg) == []
