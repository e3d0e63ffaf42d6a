"""octseg.train.losses: the per-A-line calcium presence and lumen-run terms added to MONAI's
DiceCELoss."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DeepSupervisionLoss, DiceCELoss
from omegaconf import OmegaConf

from octseg.train.engine import build_loss
from octseg.train.losses import (
    ALineDiceCELoss,
    aline_extent_error,
    aline_presence,
    boundary_distance_loss,
    lumen_run_hole_bce,
)

N_CLASSES = 5
CALCIUM = 2  # channel of calcium in the default 5-class schema
KW = {"to_onehot_y": True, "softmax": True, "batch": True, "include_background": True}


def _target() -> torch.Tensor:
    """(1, 1, A=16, R=20): lumen near the catheter, a calcium band on A-lines 4..7, depth 10..13."""
    y = torch.zeros(1, 1, 16, 20)
    y[..., :5] = 1
    y[:, :, 4:8, 10:14] = CALCIUM
    return y


def _logits(labels: torch.Tensor, margin: float = 4.0) -> torch.Tensor:
    """Confident logits (``margin`` for the given class, 0 for the others)."""
    onehot = torch.nn.functional.one_hot(labels[:, 0].long(), N_CLASSES).permute(0, 3, 1, 2)
    return onehot.float() * margin


def test_zero_weight_is_exactly_dice_ce() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(2, N_CLASSES, 16, 20), _target().repeat(2, 1, 1, 1)
    w = torch.tensor([1.0, 1.0, 2.0, 5.0, 1.0])
    ours = ALineDiceCELoss(lambda_aline=0.0, lambda_lumen=0.0, weight=w, **KW)(x, y)
    base = DiceCELoss(weight=w, **KW)(x, y)
    torch.testing.assert_close(ours, base, rtol=0, atol=1e-7)


def test_differentiable_and_term_adds_gradient() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, N_CLASSES, 16, 20, requires_grad=True)
    y = _target().repeat(2, 1, 1, 1)
    ALineDiceCELoss(lambda_aline=1.0, **KW)(x, y).backward()
    g_ours = x.grad.clone()
    x.grad = None
    DiceCELoss(**KW)(x, y).backward()
    assert torch.isfinite(g_ours).all()
    # the presence term moves the calcium channel's gradient (by more than rounding)
    assert (g_ours[:, CALCIUM] - x.grad[:, CALCIUM]).abs().max() > 1e-4


def test_band_continued_one_aline_past_the_end_costs_more() -> None:
    y = _target()
    exact = _logits(y)
    over = y.clone()
    over[:, :, 8, 11:13] = CALCIUM  # half the band's depth on the next A-line, as the net does
    continued = _logits(over)
    base, ours = DiceCELoss(**KW), ALineDiceCELoss(lambda_aline=1.0, **KW)
    base_gap = float(base(continued, y) - base(exact, y))
    ours_gap = float(ours(continued, y) - ours(exact, y))
    assert base_gap > 0
    # the presence term adds (BCE(p_over, 0) - BCE(p_exact, 0)) / A, p the extra A-line's peak
    # calcium probability: the whole A-line is charged, not 2 of its 20 pixels
    p_over = torch.softmax(continued[0, :, 8, 11], 0)[CALCIUM]
    p_exact = torch.softmax(exact[0, :, 8, 11], 0)[CALCIUM]
    added = float(torch.log(1 - p_exact) - torch.log(1 - p_over)) / 16
    assert ours_gap - base_gap == pytest.approx(added, abs=1e-5)
    assert ours_gap > 2 * base_gap


def test_thickness_term_charges_the_missing_depth_per_aline() -> None:
    """The band (4 samples deep on A-lines 4..7) read 2 samples thin on one A-line: the term is
    2 / scale / 4 A-lines with calcium (logits margin 20: one-hot to 1e-8); exact logits cost
    nothing. Also with a one-hot target (``_class_mask``'s other input)."""
    y = _target()
    thin = y.clone()
    thin[:, :, 5, 12:14] = 0  # the back edge of A-line 5 called tissue
    probs = torch.softmax(_logits(thin, margin=20.0), 1)  # one-hot to float precision
    assert float(aline_extent_error(probs, y, [CALCIUM], 1.0)) == pytest.approx(2 / 4, abs=1e-5)
    assert float(aline_extent_error(probs, y, [CALCIUM], 4.0)) == pytest.approx(2 / 16, abs=1e-5)
    exact = torch.softmax(_logits(y, margin=20.0), 1)
    assert float(aline_extent_error(exact, y, [CALCIUM], 1.0)) < 1e-5
    onehot = torch.nn.functional.one_hot(y[:, 0].long(), N_CLASSES).permute(0, 3, 1, 2)
    err = aline_extent_error(probs, onehot.float(), [CALCIUM], 1.0)
    assert float(err) == pytest.approx(2 / 4, abs=1e-5)
    # read thick by the same depth: the same charge (the metric's absolute error)
    thick = y.clone()
    thick[:, :, 5, 14:16] = CALCIUM
    over = torch.softmax(_logits(thick, margin=20.0), 1)
    assert float(aline_extent_error(over, y, [CALCIUM], 1.0)) == pytest.approx(2 / 4, abs=1e-5)


def test_thickness_term_is_zero_without_calcium_and_adds_to_the_loss() -> None:
    y = torch.zeros(1, 1, 16, 20)
    y[..., :5] = 1
    probs = torch.softmax(torch.randn(1, N_CLASSES, 16, 20), 1)
    assert float(aline_extent_error(probs, y, [CALCIUM], 16.0)) == 0.0  # no calcium A-line
    yc = _target()
    thin = yc.clone()
    thin[:, :, 4:8, 12:14] = 0
    x = _logits(thin)
    base = ALineDiceCELoss(lambda_aline=1.0, **KW)(x, yc)
    ours = ALineDiceCELoss(lambda_aline=1.0, lambda_thickness=2.0, thickness_scale=16.0, **KW)
    added = 2.0 * aline_extent_error(torch.softmax(x, 1), yc, [CALCIUM], 16.0)
    torch.testing.assert_close(ours(x, yc), base + added)
    # 2 of 4 samples missed on every calcium A-line; at logit margin 4 the expected count is
    # 2 x 0.93 + 18 x 0.017 = 2.17 against 4: 2.0 x 1.83 / 16 = 0.23
    assert float(added) == pytest.approx(0.229, abs=0.002)


def test_thickness_term_pushes_the_back_edge_towards_calcium() -> None:
    """Read thin where the net is unsure (the back edge: calcium logit just under tissue's): the
    gradient raises the calcium logit there, far more than on the confident deep tissue."""
    y = _target()
    thin = y.clone()
    thin[:, :, 4:8, 12:14] = 0
    x = _logits(thin)
    x[0, CALCIUM, 4:8, 12:14] = 3.5  # tissue's logit is 4
    x.requires_grad_(True)
    aline_extent_error(torch.softmax(x, 1), y, [CALCIUM], 16.0).backward()
    g = -x.grad[0, CALCIUM]  # descent direction of the calcium logit
    assert float(g[4:8, 12:14].min()) > 0  # the missed samples are pushed towards calcium
    # p(1 - p) is about 0.24 at the edge and 0.017 in the confident tissue: a ratio near 14
    assert float(g[4:8, 12:14].mean()) > 10 * float(g[4:8, 16:].abs().mean())


def _malapposed() -> torch.Tensor:
    """(1, 1, 16, 20): lumen to depth 10; a strut at depth 6 on A-line 3 with lumen behind it."""
    y = torch.zeros(1, 1, 16, 20)
    y[..., :10] = 1
    y[:, :, 3, 6] = 3
    return y


def test_hole_in_the_lumen_run_behind_a_strut_costs_more() -> None:
    y = _malapposed()
    exact = _logits(y)
    hole = y.clone()
    hole[:, :, 3, 7] = 0  # the shadowed gap behind the strut called background
    holed = _logits(hole)
    base = DiceCELoss(**KW)
    ours = ALineDiceCELoss(lambda_aline=0.0, lambda_lumen=1.0, **KW)
    base_gap = float(base(holed, y) - base(exact, y))
    ours_gap = float(ours(holed, y) - ours(exact, y))
    # -log of the hole's lumen+strut probability replaces -log of the exact one, on 1 of 16 A-lines
    sm_h, sm_e = torch.softmax(holed[0, :, 3, 7], 0), torch.softmax(exact[0, :, 3, 7], 0)
    added = float(torch.log(sm_e[1] + sm_e[3]) - torch.log(sm_h[1] + sm_h[3])) / 16
    assert ours_gap - base_gap == pytest.approx(added, abs=1e-5)
    assert ours_gap > 2 * base_gap > 0


def test_lumen_run_ends_at_the_first_non_lumen_sample() -> None:
    y = _malapposed()
    y[:, :, 5, 3] = 2  # calcium inside the lumen on A-line 5: the run there is depth 0..2
    probs = torch.full((1, 5, 16, 20), 0.2)
    probs[:, 1, 5, 4:] = 0.0  # beyond the run's end: must not count
    probs[:, 1, 5, 1] = 0.05  # inside the run: the weakest sample of A-line 5 (0.05 + 0.2)
    got = lumen_run_hole_bce(probs, y, (1, 3))
    want = (15 * -torch.log(torch.tensor(0.4)) - torch.log(torch.tensor(0.25))) / 16
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_lumen_border_samples_are_left_to_the_pixel_losses() -> None:
    y = _malapposed()
    border = y.clone()
    border[:, :, 3, 9] = 0  # the lumen ends one sample early on A-line 3: a border error
    probs = torch.softmax(_logits(border), 1)
    assert float(lumen_run_hole_bce(probs, y, (1, 3), margin=0)) > 0.1
    exact = torch.softmax(_logits(y), 1)
    torch.testing.assert_close(
        lumen_run_hole_bce(probs, y, (1, 3), margin=2),
        lumen_run_hole_bce(exact, y, (1, 3), margin=2),
        rtol=0,
        atol=1e-7,
    )


def test_presence_reads_class_indices_one_hot_and_resized_floats() -> None:
    y = _target()
    expected = torch.zeros(1, 16)
    expected[0, 4:8] = 1
    torch.testing.assert_close(aline_presence(y, CALCIUM), expected)
    onehot = torch.nn.functional.one_hot(y[:, 0].long(), N_CLASSES).permute(0, 3, 1, 2)
    torch.testing.assert_close(aline_presence(onehot.float(), CALCIUM), expected)
    half = torch.nn.functional.interpolate(y, size=(8, 10), mode="nearest")
    torch.testing.assert_close(aline_presence(half, CALCIUM), expected[:, ::2])


def test_works_with_deep_supervision_through_build_loss() -> None:
    cfg = OmegaConf.create(
        {
            "loss": {
                "_target_": "octseg.train.losses.ALineDiceCELoss",
                **KW,
                "lambda_aline": 1.0,
                "lambda_lumen": 1.0,
                "lambda_thickness": 1.0,
                "lambda_boundary": 0.01,
                "weight": [1, 1, 2, 5, 1],
            }
        }
    )
    loss = build_loss(cfg, N_CLASSES, deep_supervision=True)
    assert isinstance(loss, DeepSupervisionLoss) and isinstance(loss.loss, ALineDiceCELoss)
    torch.manual_seed(2)
    y = _target().repeat(2, 1, 1, 1)
    outs = [
        torch.randn(2, N_CLASSES, 16, 20, requires_grad=True),
        torch.randn(2, N_CLASSES, 8, 10, requires_grad=True),
    ]
    total = loss(outs, y)
    total.backward()
    assert all(o.grad is not None and torch.isfinite(o.grad).all() for o in outs)
    # = the exp-weighted sum of the loss at each level (target resized as MONAI does)
    y_half = torch.nn.functional.interpolate(y, size=(8, 10), mode=loss.interp_mode)
    expected = loss.loss(outs[0], y) + 0.5 * loss.loss(outs[1], y_half)
    torch.testing.assert_close(total, expected, rtol=1e-6, atol=1e-6)


def test_boundary_term_weights_an_error_by_its_distance_from_the_boundary() -> None:
    """One pixel of calcium called 5 samples behind the band's back edge (depth 13 -> 18, an
    isolated pixel): its squared error 1 is weighted by 5^2 (to the label's band) + 1^2 (to the
    prediction's own boundary), averaged over the frame's 16 x 20 pixels. The same pixel just
    behind the edge (depth 14): 1^2 + 1^2 (it joins the predicted band: 1 sample from its
    background). Exact probabilities, and a frame with no calcium on either side, cost 0."""
    y = _target()
    exact = torch.softmax(_logits(y, margin=30.0), 1)  # one-hot to float precision
    assert float(boundary_distance_loss(exact, y, [CALCIUM])) < 1e-9
    far, near = y.clone(), y.clone()
    far[0, 0, 5, 18] = CALCIUM
    near[0, 0, 5, 14] = CALCIUM
    p_far = torch.softmax(_logits(far, margin=30.0), 1)
    p_near = torch.softmax(_logits(near, margin=30.0), 1)
    hd_far = float(boundary_distance_loss(p_far, y, [CALCIUM]))
    hd_near = float(boundary_distance_loss(p_near, y, [CALCIUM]))
    assert hd_far == pytest.approx((25 + 1) / 320, rel=1e-5)
    assert hd_near == pytest.approx((1 + 1) / 320, rel=1e-5)
    no_calcium = torch.zeros(1, 1, 16, 20)
    no_calcium[..., :5] = 1
    p_none = torch.softmax(_logits(no_calcium, margin=30.0), 1)
    assert float(boundary_distance_loss(p_none, no_calcium, [CALCIUM])) == 0.0


def test_boundary_term_adds_to_the_loss_and_has_a_gradient() -> None:
    torch.manual_seed(3)
    y = _target().repeat(2, 1, 1, 1)
    x = (_logits(y) + torch.randn(2, N_CLASSES, 16, 20)).requires_grad_(True)
    base = ALineDiceCELoss(lambda_aline=1.0, **KW)(x, y)
    ours = ALineDiceCELoss(lambda_aline=1.0, lambda_boundary=0.5, **KW)(x, y)
    added = 0.5 * boundary_distance_loss(torch.softmax(x, 1), y, [CALCIUM])
    torch.testing.assert_close(ours, base + added)
    assert float(added.detach()) > 0
    # the term alone has a gradient on the calcium logits (through the softmax, on the others too)
    boundary_distance_loss(torch.softmax(x, 1), y, [CALCIUM]).backward()
    assert torch.isfinite(x.grad).all() and float(x.grad[:, CALCIUM].abs().max()) > 1e-6
    cubic = ALineDiceCELoss(lambda_aline=0.0, lambda_boundary=1.0, boundary_alpha=1.0, **KW)
    assert cubic.boundary_loss.alpha == 1.0


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="lambda_boundary"):
        ALineDiceCELoss(lambda_boundary=-1.0, **KW)
    with pytest.raises(ValueError, match="boundary_alpha"):
        ALineDiceCELoss(boundary_alpha=0.0, **KW)
    with pytest.raises(ValueError, match="lambda_aline"):
        ALineDiceCELoss(lambda_aline=-1.0, **KW)
    with pytest.raises(ValueError, match="lambda_thickness"):
        ALineDiceCELoss(lambda_thickness=-1.0, **KW)
    with pytest.raises(ValueError, match="thickness_scale"):
        ALineDiceCELoss(thickness_scale=0.0, **KW)
    with pytest.raises(ValueError, match="lumen_margin"):
        ALineDiceCELoss(lumen_margin=-1, **KW)
    with pytest.raises(ValueError, match="out of range"):
        ALineDiceCELoss(aline_channels=[7], **KW)(torch.randn(1, 5, 4, 4), torch.zeros(1, 1, 4, 4))


def test_synthetic_experiment_trains_with_the_aline_loss() -> None:
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    configs = Path(__file__).resolve().parents[2] / "octseg" / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=synthetic"])
    loss = build_loss(cfg, N_CLASSES, deep_supervision=False)
    assert isinstance(loss, ALineDiceCELoss)
    assert loss.lambda_aline > 0 and loss.lambda_lumen > 0 and loss.aline_channels == (CALCIUM,)
    torch.testing.assert_close(loss.cross_entropy.weight, torch.tensor([1.0, 1.0, 2.0, 5.0, 1.0]))
