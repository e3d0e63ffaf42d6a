"""Several checkpoints as one model (octseg.model.ensemble): the mean of their class
probabilities, members that must read the input alike, and the recommendations they share."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TINY_MODEL

from octseg.core.errors import InputError
from octseg.model.ensemble import (
    ProbabilityMean,
    class_weight_matrix,
    input_map,
    load_models,
    shared_recommendations,
)
from octseg.model.grid import normalize
from octseg.model.predictor import Predictor, save_untrained_checkpoint

GRID = {"n_alines": 32, "n_samples": 24, "spacing_mm": 0.05}
ZSCORE_A = {"kind": "zscore", "mean": 0.2, "std": 0.25}


def _ckpt(path, seed=0, **kw):
    kw.setdefault("net_grid", GRID)
    return save_untrained_checkpoint(path, model_cfg=TINY_MODEL, seed=seed, **kw)


def test_output_softmax_is_the_mean_of_the_members_probabilities():
    torch.manual_seed(0)
    nets = [torch.nn.Conv2d(3, 5, 3, padding=1) for _ in range(3)]
    x = torch.randn(2, 3, 16, 12)
    mean = sum(torch.softmax(n(x), 1) for n in nets) / 3
    got = torch.softmax(ProbabilityMean(nets)(x), 1)
    torch.testing.assert_close(got, mean, atol=1e-6, rtol=1e-5)


def test_an_ensemble_needs_two_networks():
    with pytest.raises(ValueError, match="at least two"):
        ProbabilityMean([torch.nn.Identity()])


def _with_normalization(path, norm):
    obj = torch.load(path, weights_only=True)
    obj["meta"]["normalization"] = norm
    torch.save(obj, path)
    return path


def test_predictor_of_two_checkpoints_averages_their_tta_probabilities(tmp_path):
    # members trained on different data: each z-scores the grey values with its own statistics
    a = _with_normalization(_ckpt(tmp_path / "a.pt", seed=1), ZSCORE_A)
    b = _with_normalization(_ckpt(tmp_path / "b.pt", seed=2), {"kind": "none"})
    opts = {"device": "cpu", "tta_rolls": 2, "tta_flip": True}
    both = Predictor.from_checkpoint([a, b], **opts)
    singles = [Predictor.from_checkpoint(p, **opts) for p in (a, b)]
    grey = torch.rand(2, 3, GRID["n_alines"], GRID["n_samples"])  # as read, in [0, 1]
    expected = sum(s.probabilities(normalize(grey, s.normalization)) for s in singles) / 2
    got = both.probabilities(normalize(grey, both.normalization))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert both.describe()["ensemble"] == [str(a), str(b)]
    assert both.source == f"{a} + {b}"


def test_input_map_renormalises_for_each_member():
    grey = torch.tensor([0.0, 0.3, 1.0])
    first, other = ZSCORE_A, {"kind": "zscore", "mean": 0.5, "std": 0.1}
    scale, shift = input_map(first, other)
    torch.testing.assert_close((grey - 0.2) / 0.25 * scale + shift, (grey - 0.5) / 0.1)
    scale, shift = input_map(first, {"kind": "none"})
    torch.testing.assert_close((grey - 0.2) / 0.25 * scale + shift, grey)
    assert input_map(None, {"kind": "none"}) == (1.0, 0.0)


def test_one_listed_checkpoint_is_that_checkpoint(tmp_path):
    model, meta = load_models([str(_ckpt(tmp_path / "a.pt"))])
    assert not isinstance(model, ProbabilityMean) and "ensemble" not in meta


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"net_grid": {**GRID, "n_alines": 64}}, "net_grid"),
        ({"classes": [0, 1, 2]}, "classes"),
        ({"context_frames": 1}, "context_frames"),
    ],
)
def test_members_that_read_the_input_differently_are_refused(tmp_path, change, key):
    a = _ckpt(tmp_path / "a.pt")
    b = _ckpt(tmp_path / "b.pt", **change)
    with pytest.raises(InputError, match=key) as err:
        load_models([str(a), str(b)])
    assert "b.pt" in str(err.value) and "a.pt" in str(err.value)


def test_the_same_file_twice_is_refused(tmp_path):
    a = str(_ckpt(tmp_path / "a.pt"))
    with pytest.raises(InputError, match="twice"):
        load_models([a, a])


def test_the_ensemble_recommends_only_what_every_member_recommends_alike():
    metas = [
        {"infer_recommended": {"tta": True, "calcium_min_area_mm2": 0.1}},
        {"infer_recommended": {"tta": True, "calcium_min_area_mm2": 0.05}},
        {"infer_recommended": {"tta": True}},
    ]
    assert shared_recommendations(metas, ["a", "b", "c"]) == {"tta": True}
    assert shared_recommendations([metas[0], {}], ["a", "b"]) == {}
    assert shared_recommendations(metas[:1] * 2, ["a", "b"]) == metas[0]["infer_recommended"]


def test_no_checkpoint_and_the_same_file_by_two_names_are_refused(tmp_path):
    a = _ckpt(tmp_path / "a.pt")
    with pytest.raises(InputError, match="no checkpoint"):
        load_models([])
    with pytest.raises(InputError, match="twice"):
        load_models([str(a), str(tmp_path / "." / "a.pt")])


def test_class_weights_weigh_each_class_then_renormalise():
    torch.manual_seed(0)
    nets = [torch.nn.Conv2d(3, 5, 3, padding=1) for _ in range(2)]
    x = torch.randn(2, 3, 16, 12)
    p = [torch.softmax(n(x), 1) for n in nets]
    w = torch.tensor([[0.5, 0.5, 1.0, 0.25, 0.5], [0.5, 0.5, 0.0, 0.75, 0.5]])
    q = p[0] * w[0].view(1, 5, 1, 1) + p[1] * w[1].view(1, 5, 1, 1)
    got = torch.softmax(ProbabilityMean(nets, class_weights=w)(x), 1)
    torch.testing.assert_close(got, q / q.sum(1, keepdim=True), atol=1e-6, rtol=1e-5)
    plain = torch.softmax(ProbabilityMean(nets, class_weights=torch.full((2, 5), 0.5))(x), 1)
    torch.testing.assert_close(plain, (p[0] + p[1]) / 2, atol=1e-6, rtol=1e-5)


def test_class_weight_matrix_scales_each_named_class_and_averages_the_rest():
    m = class_weight_matrix({"calcium": [3, 1], "strut": [1, 0]}, [0, 1, 2, 3, 4], 2)
    expected = [[0.5, 0.5, 0.75, 1.0, 0.5], [0.5, 0.5, 0.25, 0.0, 0.5]]
    torch.testing.assert_close(m, torch.tensor(expected))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"lipid": [1, 0]}, r"not a class of these models \(background, lumen"),
        ({"calcuim": [1, 0]}, "not a class"),
        ({"calcium": [1, 0, 1]}, "one weight per checkpoint"),
        ({"calcium": [1, -1]}, ">= 0"),
        ({"calcium": [0, 0]}, "not all 0"),
        ({"calcium": [float("nan"), 1]}, "finite"),
        ({"calcium": ["a", 1]}, "must be numbers"),
        ({"calcium": [1e308, 1e308]}, "finite"),  # their sum overflows
    ],
)
def test_class_weight_matrix_refuses_what_it_cannot_apply(weights, message):
    with pytest.raises(InputError, match=message):
        class_weight_matrix(weights, [0, 1, 2, 3, 4], 2)


def test_load_models_with_class_weights(tmp_path):
    a, b = _ckpt(tmp_path / "a.pt", seed=1), _ckpt(tmp_path / "b.pt", seed=2)
    model, meta = load_models([a, b], {"calcium": [1, 0]})
    assert meta["ensemble_weights"] == {"calcium": [1.0, 0.0]}
    assert model.class_weights[:, 2].tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match="need an ensemble"):
        load_models(a, {"calcium": [1, 0]})
    every = {n: [1, 0] for n in ("background", "lumen", "calcium", "strut", "guidewire")}
    first = Predictor.from_checkpoint(a, device="cpu")
    grey = torch.rand(2, 3, GRID["n_alines"], GRID["n_samples"])
    model, meta = load_models([a, b], every)  # every class from a: a's probabilities
    weighted = Predictor(model, meta, first.options, source="ab")
    assert weighted.describe()["ensemble_weights"]["strut"] == [1.0, 0.0]
    torch.testing.assert_close(
        weighted.probabilities(normalize(grey, weighted.normalization)),
        first.probabilities(normalize(grey, first.normalization)),
        atol=1e-5,
        rtol=1e-4,
    )
