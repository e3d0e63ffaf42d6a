"""octseg.datasets.danilov.build.evaluate_lumen with stand-in networks whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import TINY_MODEL, with_stand_in

from octseg.core import atomic
from octseg.core.classes import LUMEN
from octseg.datasets.danilov.build import evaluate_lumen
from octseg.datasets.hybrid.insert import polar_xy
from octseg.io.labels import LabelFile, save_labels
from octseg.model.predictor import save_untrained_checkpoint

A, R, PS, FS = 64, 48, 0.03, 0.2
CART = 96


class Oracle(torch.nn.Module):
    """Reads the class from the grey value (class / 4) of the centre frame; ``shift`` > 0 grows
    the lumen outward by that many samples along each A-line, < 0 shrinks it."""

    def __init__(self, shift: int = 0):
        super().__init__()
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = torch.round(x[:, x.shape[1] // 2] * 4).clamp(0, 4).long()
        lum = cls == LUMEN
        s = abs(self.shift)
        if s:
            moved = torch.zeros_like(lum)
            if self.shift > 0:  # sample r is lumen if sample r - s is
                moved[..., s:] = lum[..., :-s]
                lum = lum | moved
            else:  # sample r stays lumen only if sample r + s is
                moved[..., :-s] = lum[..., s:]
                lum = lum & moved
        cls = torch.where(lum, LUMEN, torch.where(cls == LUMEN, 0, cls))
        return 20.0 * torch.nn.functional.one_hot(cls, 5).permute(0, 3, 1, 2).float()


def lumen_labels(n: int) -> np.ndarray:
    """Polar lumen labels (A, R) of off-centre disks whose radius changes with the frame."""
    yy, xx = polar_xy(A, R, PS)
    out = []
    for f in range(n):
        rad = 0.7 + 0.05 * f
        out.append((np.hypot(yy - 0.1, xx + 0.05) <= rad).astype(np.uint8) * LUMEN)
    return np.stack(out)


def write_pullback(d, labels, frame_index=None):
    """Image whose grey value encodes the class; labels for ``frame_index`` (default: all)."""
    d.mkdir(parents=True)
    atomic.save_npz(
        d / "image.npz",
        frames=(labels / 4).astype(np.float32),
        space=np.array("polar"),
        pixel_spacing_mm=np.float64(PS),
        frame_spacing_mm=np.float64(FS),
    )
    lab = labels if frame_index is None else labels[frame_index]
    save_labels(
        d / "labels.npz",
        LabelFile(
            labels=lab,
            space="polar",
            pixel_spacing_mm=PS,
            frame_spacing_mm=FS,
            frame_index=None if frame_index is None else np.asarray(frame_index),
        ),
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    write_pullback(root / "val-a", lumen_labels(4))
    write_pullback(root / "val-b", lumen_labels(5), frame_index=[0, 2, 4])  # every 2nd labelled
    ck = save_untrained_checkpoint(
        root / "untrained.pt",
        model_cfg=TINY_MODEL,
        net_grid={"n_alines": A, "n_samples": R, "spacing_mm": PS},
    )
    return root, ck


def test_oracle_gives_dice_one_and_no_area_bias(dataset, monkeypatch):
    root, ck = dataset
    with_stand_in(monkeypatch, Oracle())
    res = evaluate_lumen(ck, root, ["val-a", "val-b"], cart_size=CART)
    assert res["n_frames"] == 4 + 3  # only the labelled frames of val-b
    assert res["ids"] == ["val-a", "val-b"]
    assert res["per_pullback"]["val-a"]["n"] == 4
    assert res["per_pullback"]["val-b"]["n"] == 3
    assert res["lumen_dice_mean"] == 1.0 and res["lumen_dice_min"] == 1.0
    assert res["per_pullback"]["val-b"]["dice_per_frame"] == [1.0, 1.0, 1.0]
    area = res["lumen_area_px2"]
    assert area["n"] == 7
    assert area["bias"] == 0.0
    assert area["mean_auto"] == pytest.approx(area["mean_manual"])
    # areas in Cartesian pixels of the cart_size grid: pi r^2 / cart_ps^2 for r = 0.7 .. 0.9 mm
    cart_ps = PS * R * 2 / CART
    radii = [0.7 + 0.05 * f for f in (0, 1, 2, 3, 0, 2, 4)]
    expect = np.mean([np.pi * r**2 / cart_ps**2 for r in radii])
    assert area["mean_manual"] == pytest.approx(expect, rel=0.03)


@pytest.mark.parametrize("shift", [3, -3])
def test_a_wrong_network_lowers_dice_and_biases_the_area_by_its_sign(dataset, monkeypatch, shift):
    root, ck = dataset
    with_stand_in(monkeypatch, Oracle(shift))
    res = evaluate_lumen(ck, root, ["val-a"], cart_size=CART)
    assert res["n_frames"] == 4
    assert 0.6 < res["lumen_dice_mean"] < 0.97
    assert res["lumen_dice_min"] <= res["lumen_dice_median"] <= 1.0
    area = res["lumen_area_px2"]
    assert np.sign(area["bias"]) == np.sign(shift)
    # the radius changes by |shift| samples: area bias ~ 2 pi r dr (in Cartesian px^2)
    cart_ps = PS * R * 2 / CART
    r = np.mean([0.7 + 0.05 * f for f in range(4)])
    expect = 2 * np.pi * r * shift * PS / cart_ps**2
    assert area["bias"] == pytest.approx(expect, rel=0.35)


class NoLumen(torch.nn.Module):
    """A (badly) trained network that calls everything background."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 5, *x.shape[2:], device=x.device)
        out[:, 0] = 1.0
        return out


def test_a_frame_without_predicted_lumen_scores_zero_instead_of_crashing(dataset, monkeypatch):
    root, ck = dataset
    with_stand_in(monkeypatch, NoLumen())
    res = evaluate_lumen(ck, root, ["val-a"], cart_size=CART)
    assert res["lumen_dice_mean"] == 0.0
    assert res["lumen_area_px2"]["mean_auto"] == 0.0


def test_held_out_dice_is_the_overlap_formula_to_float32_rounding(dataset, monkeypatch):
    """The held-out Dice (MONAI's DiceMetric, float32) equals 2|P & T| / (|P| + |T|) computed in
    float64 on the same Cartesian maps, to 1e-6 (the per-frame list is rounded to 4 digits)."""
    from octseg.datasets import holdout

    root, ck = dataset
    with_stand_in(monkeypatch, Oracle(3))
    res = evaluate_lumen(ck, root, ["val-a"], cart_size=CART)
    pred, ref = holdout.segment(ck, {"val-a": root / "val-a"})[0]["val-a"]
    p = holdout.cartesian(pred, CART) == LUMEN
    t = holdout.cartesian(ref, CART) == LUMEN
    exact = 2 * (p & t).sum(axis=(1, 2)) / (p.sum(axis=(1, 2)) + t.sum(axis=(1, 2)))
    assert 0.5 < exact.min() < 1.0  # a real disagreement to measure
    assert res["lumen_dice_mean"] == pytest.approx(exact.mean(), abs=1e-6)
    assert res["lumen_dice_min"] == pytest.approx(exact.min(), abs=1e-6)
    assert res["per_pullback"]["val-a"]["dice_per_frame"] == pytest.approx(exact, abs=5e-5)
