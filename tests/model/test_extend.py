"""Calcium arc extension on the net grid (octseg.model.extend): lesions grow along the A-lines
into tissue of lower calcium probability, and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.core.errors import InputError
from octseg.infer.settings import InferSettings
from octseg.model.extend import apply_extension, extend_calcium
from octseg.model.postprocess import PostprocessSettings, large_components
from octseg.model.predictor import PredictOptions, Predictor

A, R = 64, 40  # A-lines, depth samples


def probs_with(*calcium: tuple[slice, slice, float]) -> torch.Tensor:
    """(1, 5, A, R) probabilities: tissue everywhere, calcium probability ``p`` (the rest
    tissue) on each (A-lines, depths, p) block given (later blocks over earlier ones)."""
    p = torch.zeros(1, 5, A, R)
    p[:, BACKGROUND] = 1.0
    for rows, cols, value in calcium:
        p[0, CALCIUM, rows, cols] = value
        p[0, BACKGROUND, rows, cols] = 1.0 - value
    return p


def joined_by(p: torch.Tensor, low: float, seeds: torch.Tensor | None = None) -> torch.Tensor:
    arg = p.argmax(1)
    seeds = arg == CALCIUM if seeds is None else seeds
    return extend_calcium(p, arg, calcium=CALCIUM, background=BACKGROUND, low=low, seeds=seeds)[0]


def test_a_faint_lesion_end_joins_and_a_faint_region_alone_does_not():
    core = (slice(10, 20), slice(20, 25), 0.8)
    tail = (slice(20, 28), slice(20, 25), 0.3)
    alone = (slice(40, 46), slice(20, 25), 0.3)
    p = probs_with(core, tail, alone)
    joined = joined_by(p, low=0.2)
    expect = torch.zeros(A, R, dtype=torch.bool)
    expect[20:28, 20:25] = True
    assert torch.equal(joined, expect)
    assert not joined_by(p, low=0.35).any()  # the tail is under the threshold


def test_the_thickness_of_a_lesion_does_not_grow():
    """Faint calcium under a lesion, and beyond its end deeper than the lesion: only the
    samples at the depths of calcium on the neighbouring A-line join, on A-lines without any."""
    p = probs_with(
        (slice(10, 20), slice(25, 31), 0.3),  # under the lesion
        (slice(20, 23), slice(20, 31), 0.3),  # beyond its end, deeper too
        (slice(10, 20), slice(20, 25), 0.8),  # the lesion
    )
    joined = joined_by(p, low=0.2)
    rows, cols = torch.nonzero(joined, as_tuple=True)
    assert set(rows.tolist()) == {20, 21, 22}
    assert set(cols.tolist()) == set(range(20, 25))


def test_growth_wraps_across_a_line_zero():
    p = probs_with((slice(0, 5), slice(10, 14), 0.9), (slice(A - 4, A), slice(10, 14), 0.4))
    joined = joined_by(p, low=0.3)
    assert joined[A - 4 :, 10:14].all() and int(joined.sum()) == 16


def test_a_speck_under_the_minimum_area_seeds_nothing():
    p = probs_with((slice(10, 11), slice(20, 21), 0.9), (slice(11, 30), slice(20, 21), 0.4))
    speck = p.argmax(1) == CALCIUM
    assert joined_by(p, low=0.3).sum() == 19  # seeded by the speck ...
    seeds = large_components(speck, spacing_mm=0.05, min_mm2=0.01)
    assert not seeds.any() and not joined_by(p, low=0.3, seeds=seeds).any()  # ... not once removed
    assert torch.equal(large_components(speck, spacing_mm=0.05, min_mm2=0.0), speck)


def test_frames_grow_apart():
    """A lesion's faint end joins in its own frame only, not where another frame has faint
    tissue at the same place."""
    p = torch.cat(
        [
            probs_with((slice(10, 20), slice(20, 25), 0.8), (slice(20, 24), slice(20, 25), 0.3)),
            probs_with((slice(24, 30), slice(20, 25), 0.3)),
        ]
    )
    arg = p.argmax(1)
    joined = extend_calcium(p, arg, calcium=CALCIUM, background=BACKGROUND, low=0.2, seeds=arg == 2)
    assert int(joined[0].sum()) == 20 and not joined[1].any()


def test_joined_samples_become_one_hot_calcium():
    p = probs_with((slice(10, 20), slice(20, 25), 0.8), (slice(20, 22), slice(20, 25), 0.3))
    joined = joined_by(p, low=0.2)[None]
    out = apply_extension(p, joined, CALCIUM)
    assert torch.equal(out.argmax(1) == CALCIUM, (p.argmax(1) == CALCIUM) | joined)
    assert torch.equal(out.sum(1), p.sum(1))  # still probabilities
    assert apply_extension(p, torch.zeros_like(joined), CALCIUM) is p


class GreyIsCalciumProbability(torch.nn.Module):
    """A network whose calcium probability is the grey value (the rest is tissue)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, x.shape[1] // 2].float().clamp(1e-4, 1 - 1e-4)
        logits = torch.full((x.shape[0], 5, *v.shape[1:]), -20.0)
        logits[:, CALCIUM], logits[:, BACKGROUND] = v.log(), (1 - v).log()
        return logits


class PolarFrames:
    """The attributes of a polar pullback that the predictor uses."""

    def __init__(self, frames: np.ndarray, ps: float):
        self.frames, self.space, self.pixel_spacing_mm = frames, "polar", ps
        self.n_frames, self.height, self.width = frames.shape
        self.frame_spacing_mm, self.catheter_center = 0.2, None

    def iter_chunks(self, chunk=32):
        for s in range(0, self.n_frames, chunk):
            yield s, self.frames[s : s + chunk]

    def read(self, a, b):
        return self.frames[a:b]


@pytest.mark.parametrize("resample", ["labels", "probs"])
def test_the_predictor_extends_calcium_as_its_options_say(resample):
    """Through :meth:`Predictor.segment` (the net grid is the native grid): off by default,
    the faint end joins with ``calcium_extend_prob``, and a seed under the minimum area grows
    nothing."""
    img = np.zeros((1, A, R), np.float32)
    img[0, 10:20, 20:25], img[0, 20:28, 20:25] = 0.8, 0.3
    pb = PolarFrames(img, 0.05)
    meta = {
        "classes": [0, 1, 2, 3, 4],
        "net_grid": {"n_alines": A, "n_samples": R, "spacing_mm": 0.05},
        "normalization": {"kind": "none"},
    }

    def calcium_a_lines(**kw) -> set[int]:
        opts = PredictOptions(device="cpu", resample=resample, **kw)
        pred = Predictor(GreyIsCalciumProbability(), meta, opts)
        lab = pred.segment(pred.to_grid(pb), pb)[0]
        return set(np.nonzero((lab == CALCIUM).any(1))[0].tolist())

    assert calcium_a_lines() == set(range(10, 20))
    assert calcium_a_lines(calcium_extend_prob=0.2) == set(range(10, 28))
    big = 1.0  # mm²: more than the lesion (10 A-lines x 5 samples about 1.1 mm deep: 0.27 mm²)
    assert calcium_a_lines(calcium_extend_prob=0.2, calcium_seed_min_mm2=big) == set(range(10, 20))


def test_the_infer_settings_give_the_predictor_the_extension():
    post = {"enabled": True, "calcium_min_area_mm2": 0.1, "calcium_extend_prob": 0.15}
    s = InferSettings("c", "i", "o", postprocess=post)
    opts = PredictOptions.from_settings(s)
    assert (opts.calcium_extend_prob, opts.calcium_seed_min_mm2) == (0.15, 0.1)
    off = InferSettings("c", "i", "o", postprocess={**post, "enabled": False})
    assert PredictOptions.from_settings(off).calcium_extend_prob == 0.0
    assert PredictOptions.from_settings(InferSettings("c", "i", "o")).calcium_extend_prob == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.0, True, "0.2", float("nan")])
def test_a_bad_extension_probability_is_a_clear_error(value):
    with pytest.raises(InputError, match="calcium_extend_prob must be in \\[0, 1\\)"):
        PostprocessSettings.from_value({"calcium_extend_prob": value})
    meta = {"classes": [0, 2], "net_grid": {"n_alines": 8, "n_samples": 4, "spacing_mm": 0.1}}
    opts = PredictOptions(device="cpu", calcium_extend_prob=value)
    with pytest.raises(InputError, match="calcium_extend_prob must be in \\[0, 1\\)"):
        Predictor(GreyIsCalciumProbability(), meta, opts)


def test_a_negative_seed_area_is_a_clear_error():
    meta = {"classes": [0, 2], "net_grid": {"n_alines": 8, "n_samples": 4, "spacing_mm": 0.1}}
    opts = PredictOptions(device="cpu", calcium_seed_min_mm2=-1.0)
    with pytest.raises(InputError, match="calcium_seed_min_mm2 must be a number >= 0"):
        Predictor(GreyIsCalciumProbability(), meta, opts)
