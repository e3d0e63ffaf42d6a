"""``net_alines``: a network run on more (or fewer) A-lines than it was trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_helpers import TINY_MODEL, ClassOracle, polar_npz, quiet_settings, with_stand_in
from model_helpers import oracle_predictor as shared_oracle

from octseg.core.errors import InputError
from octseg.infer.pipeline import run_inference
from octseg.infer.safety import validate_settings
from octseg.infer.settings import InferSettings
from octseg.io import read_pullback
from octseg.io.npzimage import write_npz_image
from octseg.model.predictor import PredictOptions, check_net_alines, save_untrained_checkpoint

GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}


@pytest.mark.parametrize("alines", [128, 96])
def test_the_network_sees_the_grid_asked_for_and_the_labels_come_back(alines, tmp_path):
    truth = np.zeros((2, 64, 48), np.uint8)
    truth[:, :, :20] = 1  # lumen out to 0.8 mm
    truth[:, 8:16, 20:32] = 2  # calcium over 45° of arc
    pb = read_pullback(polar_npz(tmp_path / "case.npz", frames=truth * 64))
    pred = shared_oracle(GRID, net_alines=alines)
    grid = pred.to_grid(pb)
    assert grid.shape == (2, alines, GRID["n_samples"])
    labels = pred.segment(grid, pb)
    assert labels.shape == truth.shape
    assert (labels == truth).mean() > 0.97  # resampled there and back on the finer grid
    info = pred.describe()
    assert info["net_grid"]["n_alines"] == alines and info["trained_n_alines"] == 64


@pytest.mark.parametrize("resample", ["labels", "probs"])
def test_a_cartesian_pullback_comes_back_on_its_own_grid(resample, tmp_path):
    yy, xx = np.mgrid[:81, :81]
    r = np.hypot(yy - 40, xx - 40)
    truth = np.zeros((2, 81, 81), np.uint8)
    truth[:, r <= 20] = 1  # lumen of radius 0.8 mm
    truth[:, (r > 20) & (r <= 28) & (xx > 40)] = 2  # a calcium half-ring behind it
    path = tmp_path / "cart.npz"
    write_npz_image(path, truth * 64, space="cartesian", pixel_spacing_mm=0.04,
                    frame_spacing_mm=0.2, catheter_center=(40.0, 40.0))  # fmt: skip
    pb, inside = read_pullback(path), r <= 30  # the net grid reaches 1.9 mm, not the corners
    agree = {}
    for alines in (None, 128):
        pred = shared_oracle(GRID, net_alines=alines, resample=resample)
        labels = pred.segment(pred.to_grid(pb), pb)
        assert labels.shape == truth.shape
        agree[alines] = (labels[:, inside] == truth[:, inside]).mean()
    # 64 A-lines are 0.08-0.1 mm apart at the calcium: its borders are off by a pixel here and
    # there; twice the A-lines place them better
    assert agree[None] > 0.95 and agree[128] > agree[None] + 0.003, agree


def test_tta_rolls_are_spread_over_the_grid_asked_for():
    pred = shared_oracle(GRID, net_alines=96, tta_rolls=4, tta_flip=False)
    assert [shift for shift, _ in pred.tta] == [0, 24, 48, 72]


def test_without_it_the_checkpoint_grid_is_used_and_described_as_before():
    pred = shared_oracle(GRID)
    assert pred.net_grid == GRID and "trained_n_alines" not in pred.describe()


@pytest.mark.parametrize("bad", [0, 8, 5000, 1.5, True, "384"])
def test_net_alines_is_checked_before_anything_runs(bad):
    with pytest.raises(InputError, match="net_alines"):
        check_net_alines(bad)
    with pytest.raises(InputError, match="net_alines"):
        validate_settings(InferSettings(checkpoint=None, input="i", output="o", net_alines=bad))
    with pytest.raises(InputError, match="net_alines"):
        shared_oracle(GRID, net_alines=bad)


def test_net_alines_is_in_the_fingerprint_only_when_given():
    base = InferSettings(checkpoint=None, input="i", output="o")
    assert "net_alines" not in base.output_affecting()  # earlier outputs keep their fingerprint
    given = InferSettings(checkpoint=None, input="i", output="o", net_alines=384)
    assert given.output_affecting()["net_alines"] == 384
    assert PredictOptions.from_settings(given).net_alines == 384


def test_infer_runs_a_checkpoint_on_the_grid_asked_for(tmp_path, monkeypatch):
    ckpt = save_untrained_checkpoint(tmp_path / "m.ckpt", model_cfg=TINY_MODEL, net_grid=GRID)
    with_stand_in(monkeypatch, ClassOracle())
    inp = polar_npz(tmp_path / "in" / "case.npz", 3)
    runs = {}
    for name, alines in (("plain", None), ("fine", 128)):
        out = tmp_path / name
        run_inference(quiet_settings(inp, out, checkpoint=str(ckpt), net_alines=alines))
        runs[name] = json.loads((out / "manifest.json").read_text())
        labels = np.load(out / "case" / "labels.npz")["labels"]
        assert (labels[:, :, :20] == 1).all() and (labels[:, :, 20:] == 0).all()
    assert runs["fine"]["model"]["net_grid"]["n_alines"] == 128
    assert runs["fine"]["model"]["trained_n_alines"] == 64
    assert runs["plain"]["model"]["net_grid"]["n_alines"] == 64
    assert runs["fine"]["fingerprint"] != runs["plain"]["fingerprint"]
    out = tmp_path / "same"  # the trained count given: the outputs and fingerprint of unset
    run_inference(quiet_settings(inp, out, checkpoint=str(ckpt), net_alines=64))
    same = json.loads((out / "manifest.json").read_text())
    assert same["fingerprint"] == runs["plain"]["fingerprint"]
    assert "trained_n_alines" not in same["model"]


def test_a_given_predictor_says_its_own_grid(tmp_path):
    inp = polar_npz(tmp_path / "in" / "case.npz", 3)
    runs = {}
    for name, pred in (
        ("plain", shared_oracle(GRID)),
        ("fine", shared_oracle(GRID, net_alines=128)),
    ):
        out = tmp_path / name
        run_inference(quiet_settings(inp, out, checkpoint=None, net_alines=None), pred)
        runs[name] = json.loads((out / "manifest.json").read_text())
    assert runs["fine"]["model"]["trained_n_alines"] == 64
    assert runs["fine"]["fingerprint"] != runs["plain"]["fingerprint"]


def test_the_report_names_the_grid_a_network_ran_on():
    from octseg.report.pullback import _grid_note

    assert _grid_note({"net_grid": {"n_alines": 64}}) == ""
    note = _grid_note({"net_grid": {"n_alines": 384}, "trained_n_alines": 256})
    assert note == "; run on 384 A-lines, trained on 256"
