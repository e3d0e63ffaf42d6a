"""Fine-tuning without forgetting (``distill.checkpoint``): the KL term, the clean view the
teacher reads, and a training run held to its teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import one_epoch_model, toy_cfg

from octseg.core.errors import InputError
from octseg.datasets.toy import make_toy_dataset
from octseg.model.checkpoint import load_checkpoint
from octseg.train.augment import apply_augmentation, build_augmentation, clean_view
from octseg.train.distill import build_teacher, kl_to_teacher
from octseg.train.loop import train

# geometric transforms and two appearance ones, always; no intensity jitter
AUG = {
    "flip_p": 1.0,
    "radial_scale_p": 0.0,
    "dim_wall_p": 1.0,
    "attenuation_p": 1.0,
    "attenuation": [1.5, 2.0],
    "brightness_contrast_p": 0.0,
    "gamma_p": 0.0,
    "speckle_p": 0.0,
    "blur_p": 0.0,
}


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "ds", n_pullbacks=3, n_frames=8)


@pytest.fixture(scope="module")
def base_ckpt(toy_root, tmp_path_factory) -> Path:
    """A one-epoch tiny model: the checkpoint fine-tuning starts from."""
    return one_epoch_model(toy_root, tmp_path_factory.mktemp("base"))


_cfg = toy_cfg


def test_kl_to_teacher_is_the_kl_divergence_and_zero_on_agreement():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 5, 6, 4), torch.softmax(torch.randn(2, 5, 6, 4), 1)
    ref = (
        torch.nn.functional.kl_div(torch.log_softmax(student, 1), teacher, reduction="none")
        .sum(1)
        .mean()
    )
    torch.testing.assert_close(kl_to_teacher(student, teacher), ref, atol=1e-6, rtol=1e-5)
    same = kl_to_teacher(torch.log(teacher), teacher)
    assert abs(float(same)) < 1e-5 and float(ref) > 0.01


def test_clean_view_is_the_frame_moved_but_not_corrupted():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 5, (32, 24)).astype(np.uint8)
    image = np.repeat((mask / 4.0).astype(np.float32)[..., None], 3, axis=2)
    compose = build_augmentation(AUG, keep_clean=True)
    aug, moved = apply_augmentation(compose, image, mask)
    clean = clean_view(compose, aug)
    assert clean.shape == image.shape
    np.testing.assert_array_equal(np.round(clean[..., 1] * 4).astype(np.uint8), moved)
    assert np.abs(aug - clean).max() > 0.1  # the student's view is corrupted, the teacher's not
    plain = build_augmentation(AUG)
    assert len(plain.transforms) == len(compose.transforms) - 1
    assert clean_view(plain, aug) is aug and clean_view(None, image) is image


def test_teacher_must_predict_what_the_run_predicts(base_ckpt):
    _, meta = load_checkpoint(base_ckpt)
    assert build_teacher({"checkpoint": None}, meta, torch.device("cpu")) is None
    other = {**meta, "classes": [0, 1, 3]}
    with pytest.raises(InputError, match=r"distill.checkpoint: this teacher's classes") as err:
        build_teacher({"checkpoint": str(base_ckpt)}, other, torch.device("cpu"))
    assert str(base_ckpt) in str(err.value)
    for bad in (0, -1, float("inf"), float("nan"), None, "x", True):
        with pytest.raises(InputError, match=r"distill.weight=.*finite number > 0"):
            build_teacher({"checkpoint": str(base_ckpt), "weight": bad}, meta, torch.device("cpu"))
    teacher = build_teacher({"checkpoint": str(base_ckpt)}, meta, torch.device("cpu"))
    assert teacher.record == {"checkpoint": str(base_ckpt.resolve()), "weight": 1.0}


def test_training_samples_carry_the_clean_view_when_asked(toy_root):
    from octseg.io.dataset import list_pullbacks
    from octseg.train.data import PullbackFrames, class_lut, load_pullback

    grid = {"n_alines": 32, "n_samples": 32, "spacing_mm": 0.08}
    cache = [
        load_pullback(e, grid, 3, class_lut([0, 1, 2, 3, 4])) for e in list_pullbacks(toy_root)
    ]
    norm = {"kind": "none"}
    keep = PullbackFrames(cache, 3, norm, build_augmentation(AUG, keep_clean=True), True)
    keep.reseed(3)
    sample = keep[0]
    raw, _ = keep.raw(0)
    assert sample["clean_image"].shape == sample["image"].shape
    assert (sample["clean_image"] - sample["image"]).abs().max() > 0.05  # corrupted student view
    # the clean view is the raw frame moved: flipped along the A-lines and rolled
    flat = torch.from_numpy(raw.transpose(2, 0, 1))
    assert any(
        torch.allclose(sample["clean_image"], torch.roll(torch.flip(flat, [1]), k, 1), atol=1e-6)
        for k in range(32)
    )
    plain = PullbackFrames(cache, 3, norm, build_augmentation(AUG))
    assert "clean_image" not in plain[0]


def test_a_resumed_run_keeps_its_teacher(toy_root, base_ckpt, tmp_path):
    run = tmp_path / "run"
    held = [f"distill.checkpoint={base_ckpt}", "distill.weight=2"]
    train(_cfg(toy_root, run, "trainer.max_epochs=1", f"init_from={base_ckpt}", *held))
    resume = [f"ckpt_path={run / 'last.ckpt'}", "trainer.max_epochs=2"]
    with pytest.raises(InputError, match="resumed run was trained with"):
        train(_cfg(toy_root, tmp_path / "r1", *resume))
    with pytest.raises(InputError, match="resume with the same distill"):
        train(_cfg(toy_root, tmp_path / "r2", *resume, f"distill.checkpoint={base_ckpt}"))
    train(_cfg(toy_root, tmp_path / "r3", *resume, *held))
    _, meta = load_checkpoint(tmp_path / "r3" / "last.ckpt")
    assert meta["distill"] == {"checkpoint": str(base_ckpt.resolve()), "weight": 2.0}


def _kl_to(model, teacher, root: Path, meta) -> float:
    """The mean KL of ``model``'s probabilities from ``teacher``'s on every toy frame."""
    from octseg.io.dataset import list_pullbacks
    from octseg.train.data import PullbackFrames, class_lut, load_pullback

    lut, grid = class_lut(meta["classes"]), meta["net_grid"]
    cache = [load_pullback(e, grid, 3, lut) for e in list_pullbacks(root)]
    frames = PullbackFrames(cache, 3, meta["normalization"])
    x = torch.stack([frames[i]["image"] for i in range(len(frames))])
    with torch.no_grad():
        return float(kl_to_teacher(model(x), torch.softmax(teacher(x), 1)))


def test_a_run_held_to_its_teacher_stays_closer_to_it(toy_root, base_ckpt, tmp_path):
    common = [f"init_from={base_ckpt}", "trainer.max_epochs=3", "optimizer.lr=0.03"]
    common += [f"++data.augment.{k}={v}" for k, v in AUG.items() if k.endswith("_p")]
    train(_cfg(toy_root, tmp_path / "free", *common))
    train(
        _cfg(
            toy_root,
            tmp_path / "held",
            *common,
            f"distill.checkpoint={base_ckpt}",
            "distill.weight=20",
        )
    )
    hist = json.loads((tmp_path / "held" / "metrics.json").read_text())
    assert all(np.isfinite(h["distill_loss"]) and h["distill_loss"] >= 0 for h in hist)
    assert "distill_loss" not in json.loads((tmp_path / "free" / "metrics.json").read_text())[0]
    teacher, _ = load_checkpoint(base_ckpt)
    held, meta = load_checkpoint(tmp_path / "held" / "last.ckpt")
    free, _ = load_checkpoint(tmp_path / "free" / "last.ckpt")
    assert meta["distill"] == {"checkpoint": str(base_ckpt.resolve()), "weight": 20.0}
    assert _kl_to(held, teacher, toy_root, meta) < 0.5 * _kl_to(free, teacher, toy_root, meta)
