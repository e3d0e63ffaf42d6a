"""run_inference(InferSettings(checkpoint=None, ...)) - the Python API without a checkpoint -
uses the shipped model like ``python infer.py`` without ``checkpoint=`` (and refuses a missing
one with the file named), instead of failing on ``None`` as a path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shipped_helpers import tiny_checkpoint, use_as_shipped

from octseg.core.errors import InputError
from octseg.infer.pipeline import run_inference
from octseg.infer.settings import InferSettings


def _dicom(path: Path) -> Path:
    from octseg.io.dicom_write import write_ivoct_dicom

    img = (np.random.default_rng(0).random((2, 60, 40)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True)
    write_ivoct_dicom(path, img, space="polar", pixel_spacing_mm=0.06, frame_spacing_mm=0.2)
    return path


def _settings(tmp_path: Path) -> InferSettings:
    dcm = _dicom(tmp_path / "in" / "case1.dcm")
    return InferSettings(
        checkpoint=None, input=str(dcm), output=str(tmp_path / "out"), report=False,
        overlay_frames=[], progress=False,
    )  # fmt: skip


def test_api_without_checkpoint_runs_the_shipped_model(tmp_path, monkeypatch):
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "shipped.ckpt"))
    run_inference(_settings(tmp_path))
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["checkpoint"] == str(ck)
    assert man["pullbacks"]["case1"]["status"] == "done"


def test_api_without_checkpoint_and_without_weights_names_the_file(tmp_path, monkeypatch):
    gone = use_as_shipped(monkeypatch, tmp_path / "weights" / "x.ckpt", "0" * 64)
    with pytest.raises(InputError, match="is missing") as err:
        run_inference(_settings(tmp_path))
    assert str(gone) in str(err.value)
    assert not (tmp_path / "out").exists()
