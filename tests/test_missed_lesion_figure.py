"""benchmarks/missed_lesion_figure.py: a lesion's frames on the net grid and P(calcium) there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import TINY_MODEL, oracle_predictor, polar_npz

from benchmarks import missed_lesion_figure as mlf
from octseg.io import read_pullback
from octseg.io.labels import LabelFile, save_labels
from octseg.model.predictor import save_untrained_checkpoint

GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}  # the pullback's own grid


@pytest.fixture()
def pullback(tmp_path):
    """Three polar frames: lumen to sample 20; calcium (A-lines 10-19, samples 25-34) on 1 and 2
    but not 0; the oracle reads grey = 64 x class."""
    lab = np.zeros((3, 64, 48), np.uint8)
    lab[:, :, :20] = 1
    lab[1:, 10:20, 25:35] = 2
    inp = polar_npz(tmp_path / "in" / "p.npz", frames=(lab * 64).astype(np.uint8))
    lf = LabelFile(labels=lab, space="polar", pixel_spacing_mm=0.04, frame_spacing_mm=0.2)
    (tmp_path / "manual").mkdir()
    save_labels(tmp_path / "manual" / "labels.npz", lf)
    return inp, tmp_path / "manual"


def test_probability_inside_the_truth_and_the_crop(pullback):
    inp, manual = pullback
    frames = [0, 1, 2]
    images, p = mlf.calcium_probability(oracle_predictor(GRID), read_pullback(inp), frames)
    truth = mlf.truth_on_grid(manual, frames, GRID)
    assert images.shape == p.shape == truth.shape == (3, 64, 48)
    assert int(truth[0].sum()) == 0 and int(truth[1].sum()) == 100
    assert mlf.inside(p[0], truth[0]) == (None, None)
    mean, top = mlf.inside(p[1], truth[1])
    assert mean == pytest.approx(1.0, abs=1e-6) and top == pytest.approx(1.0, abs=1e-6)
    assert float(p[0].max()) < 1e-6  # no calcium where the frame has none
    sa, sr = mlf.crop(truth, margin=2)
    assert (sa.start, sa.stop, sr.start, sr.stop) == (8, 22, 17, 43)
    assert mlf.crop(truth[:1]) == (slice(None), slice(None))


def test_main_writes_the_figure_and_says_each_frame(pullback, tmp_path, capsys):
    inp, manual = pullback
    ck = save_untrained_checkpoint(
        tmp_path / "u.pt", model_cfg=TINY_MODEL, net_grid=GRID, context_frames=1
    )
    out = tmp_path / "fig" / "missed.png"
    argv = ["--input", str(inp), "--manual", str(manual), "--frames", "0", "2"]
    assert mlf.main([*argv, "--checkpoint", f"u={ck}", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    said = capsys.readouterr().out
    assert "u frame 0: truth samples 0, no truth" in said
    assert "u frame 2: truth samples 100, P(calcium) inside: mean" in said


def test_the_crop_follows_the_lesion_most_frames_show_not_calcium_elsewhere():
    truth = torch.zeros(4, 64, 48, dtype=torch.bool)
    truth[:3, 10:20, 20:30] = True  # the lesion, in three frames
    truth[3, 50:60, 5:10] = True  # one frame's calcium elsewhere, smaller
    sa, sr = mlf.crop(truth, margin=1)
    assert (sa.start, sa.stop, sr.start, sr.stop) == (9, 21, 16, 34)
    truth[3, 40:64, 0:48] = True  # now larger than the lesion, still in one frame only
    assert mlf.crop(truth, margin=1) == (sa, sr)
