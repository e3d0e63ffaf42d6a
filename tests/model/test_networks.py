"""Every model config builds and trains a step; the A-line wrapper is periodic; checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from octseg.core.errors import InputError
from octseg.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from octseg.model.networks import build_model, has_deep_supervision, net_config
from octseg.model.wrap import CircularPadNet
from octseg.train.engine import build_loss

CONFIGS = Path(__file__).resolve().parents[2] / "octseg" / "configs"
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_all_networks_have_configs():
    assert {"unet", "basic_unet", "attention_unet", "dynunet", "segresnet"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_config_forward_backward(name):
    cfg = compose_train([f"model={name}", "data.context_frames=3"])
    torch.manual_seed(0)
    model = build_model(cfg.model, in_channels=3, out_channels=5)
    assert isinstance(model, CircularPadNet)
    net_cfg = net_config(cfg.model, 3, 5)
    assert net_cfg["_target_"].startswith("monai.networks.nets.")
    # odd frame size: the wrapper pads to the network's stride and crops back
    x = torch.randn(2, 3, 30, 27)
    y = torch.randint(0, 5, (2, 1, 30, 27))
    model.train()
    out = model(x)
    deep = has_deep_supervision(net_cfg)
    if deep:
        assert out.shape[:1] == (2,) and out.shape[2:] == (5, 30, 27) and out.ndim == 5
    else:
        assert out.shape == (2, 5, 30, 27)
    loss_fn = build_loss(cfg, 5, deep)
    loss = loss_fn(list(out.unbind(1)), y) if deep else loss_fn(out, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 5, 30, 27)


def _receptive_radius(model: nn.Module, shape: tuple[int, int, int, int]) -> int:
    """Rows of the input that influence the centre output row (by autograd)."""
    x = torch.zeros(shape, requires_grad=True)
    out = model(x)
    out[:, :, shape[2] // 2, :].sum().backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)) > 0).flatten()
    return int(max(shape[2] // 2 - rows.min(), rows.max() - shape[2] // 2))


def test_wrapped_unet_is_equivariant_to_aline_rolls():
    """Exact (float tolerance) for rolls by multiples of the total stride when the circular pad
    covers the receptive field and the layers are pointwise in eval mode (BatchNorm running
    statistics): see octseg/model/wrap.py for the argument."""
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(2, 2, 3, channels=(4, 8, 8), strides=(2, 2), num_res_units=0, norm="batch")
    net.eval()
    stride = 4
    rf = _receptive_radius(net, (1, 2, 128, 32))
    wrapped = CircularPadNet(net, pad_alines=rf + stride, multiple=stride).eval()
    x = torch.rand(2, 2, 48, 24)
    with torch.no_grad():
        y = wrapped(x)
        for k in (4, 8, 20, 44):
            yk = wrapped(torch.roll(x, k, dims=2))
            torch.testing.assert_close(yk, torch.roll(y, k, dims=2), atol=1e-5, rtol=1e-5)
        # the bare network is not periodic: rolling changes its output beyond float error
        bare = net(torch.roll(x, 8, dims=2))
        assert (bare - torch.roll(net(x), 8, dims=2)).abs().max() > 1e-3


def test_wrapper_has_no_seam_for_stride_one_net_any_roll():
    """A stride-1 fully convolutional net is equivariant to every roll once wrapped."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 5, padding=2))
    wrapped = CircularPadNet(net, pad_alines=3, multiple=1)
    x = torch.rand(1, 1, 17, 9)
    with torch.no_grad():
        y = wrapped(x)
        for k in range(1, 17):
            torch.testing.assert_close(wrapped(torch.roll(x, k, 2)), torch.roll(y, k, 2))


def test_wrapper_pads_more_than_one_period():
    net = nn.Conv2d(1, 1, 3, padding=1)
    wrapped = CircularPadNet(net, pad_alines=20, multiple=4)
    assert wrapped(torch.rand(1, 1, 6, 5)).shape == (1, 1, 6, 5)


def _meta(cfg, classes=(0, 1, 2, 3, 4)):
    return {
        "model": net_config(cfg.model, 3, len(classes)),
        "wrap": {"pad_alines": 8, "multiple": 2},
        "classes": list(classes),
        "context_frames": 3,
        "net_grid": {"n_alines": 32, "n_samples": 32, "spacing_mm": 0.08},
        "normalization": {"kind": "zscore", "mean": 0.2, "std": 0.1},
    }


def test_checkpoint_roundtrip_weights_only(tmp_path):
    cfg = compose_train(["experiment=tiny"])
    model = build_model(cfg.model, 3, 5).eval()
    path = tmp_path / "m.ckpt"
    save_checkpoint(path, model, _meta(cfg), {"epoch": 1, "optimizer": {"state": {}}})
    obj = torch.load(path, weights_only=True)  # only tensors and plain values inside
    assert obj["meta"]["classes"] == [0, 1, 2, 3, 4]
    rebuilt, meta = load_checkpoint(path)
    assert not rebuilt.training and meta["context_frames"] == 3
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write left no temporary file


def test_checkpoint_errors(tmp_path):
    cfg = compose_train(["experiment=tiny"])
    model = build_model(cfg.model, 3, 5)
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="corrupt.ckpt"):
        load_checkpoint(bad)
    good = tmp_path / "good.ckpt"
    save_checkpoint(good, model, _meta(cfg))
    trunc = tmp_path / "trunc.ckpt"
    trunc.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match="trunc.ckpt"):
        load_checkpoint(trunc)
    meta = _meta(cfg)
    meta["classes"] = [0, 1, 2, 3, 9]
    unknown = tmp_path / "unknown.ckpt"
    save_checkpoint(unknown, model, meta)
    with pytest.raises(InputError, match="unknown class"):
        load_checkpoint(unknown)
    meta = _meta(cfg)
    meta["model"] = {**meta["model"], "_target_": "os.system"}
    evil = tmp_path / "evil.ckpt"
    save_checkpoint(evil, model, meta)
    with pytest.raises(InputError, match="not allowed"):
        load_checkpoint(evil)
    with pytest.raises(InputError, match="not found"):
        read_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize(
    "change",
    [
        # the reviewer's payload: an allowed prefix that resolves to torch.save, nested in an
        # argument (Hydra would instantiate it - writing a file - before building the net)
        {
            "dropout": {
                "_target_": "monai.networks.nets.unet.torch.save",
                "_args_": [{"x": 1}, "WRITTEN"],
            }
        },
        {"_target_": "monai.networks.nets.unet.torch.save"},
        {"_target_": "monai.networks.nets.UNet.__init__"},
        {"norm": ["batch", {"_partial_": True}]},
        {"act": {"_recursive_": False}},
    ],
)
def test_checkpoint_with_crafted_target_is_refused_and_runs_nothing(tmp_path, change):
    cfg = compose_train(["experiment=tiny"])
    model = build_model(cfg.model, 3, 5)
    written = tmp_path / "pwned.bin"
    meta = _meta(cfg)
    payload = json.loads(json.dumps(change).replace("WRITTEN", str(written)))
    meta["model"] = {**meta["model"], **payload}
    evil = tmp_path / "evil.ckpt"
    save_checkpoint(evil, model, meta)
    with pytest.raises(InputError, match="evil.ckpt.*not allowed"):
        load_checkpoint(evil)
    assert not written.exists()
