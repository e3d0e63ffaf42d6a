"""Shared by the inference and evaluation tests: a tiny real network config for checkpoints, and
a way to put a stand-in network with a known answer behind a real checkpoint's metadata."""

from __future__ import annotations

import torch

from octseg.model import checkpoint as ckpt

TINY_MODEL = {
    "net": {
        "_target_": "monai.networks.nets.UNet",
        "spatial_dims": 2,
        "channels": [4, 8],
        "strides": [2],
        "num_res_units": 0,
        "norm": "batch",
    },
    "pad_alines": 4,
    "multiple": 2,
}


class ClassOracle(torch.nn.Module):
    """'Segments' images whose grey value encodes the class (value = class / 4): exact logits
    from the centre channel of the 2.5D input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = torch.round(x[:, x.shape[1] // 2] * 4).clamp(0, 4).long()
        return 20.0 * torch.nn.functional.one_hot(cls, 5).permute(0, 3, 1, 2).float()


def oracle_predictor(net_grid, context_frames: int = 1, **kw):
    """A CPU :class:`~octseg.model.predictor.Predictor` around :class:`ClassOracle`."""
    from octseg.model.predictor import PredictOptions, Predictor

    meta = {
        "classes": [0, 1, 2, 3, 4],
        "context_frames": context_frames,
        "net_grid": net_grid,
        "normalization": {"kind": "none"},
    }
    return Predictor(ClassOracle(), meta, PredictOptions(device="cpu", **kw))


def with_stand_in(monkeypatch, net):
    """Loading any checkpoint gives its own metadata with ``net`` in place of its network."""
    real = ckpt.load_checkpoint

    def load(path, map_location="cpu"):
        _, meta = real(path, map_location=map_location)
        return net.eval(), meta

    monkeypatch.setattr(ckpt, "load_checkpoint", load)


def quiet_settings(inp, out, **kw):
    """:class:`~octseg.infer.pipeline.InferSettings` for a quick test run: the stand-in
    checkpoint name, no report or overlays, no progress bar, one writer; ``kw`` overrides."""
    from octseg.infer.pipeline import InferSettings

    base = dict(
        checkpoint="oracle",
        input=str(inp),
        output=str(out),
        report=False,
        overlay_frames=[],
        progress=False,
        writers=1,
    )
    return InferSettings(**{**base, **kw})


def polar_npz(path, n_frames: int = 3, lumen_samples: int = 20, frames=None):
    """An octseg npz polar pullback for the oracle (A=64, R=48, 0.04 mm/pixel, 0.2 mm/frame):
    lumen (grey 1/4, class 1 for :class:`ClassOracle`) out to ``lumen_samples``; or ``frames``
    ``(F, 64, 48)`` uint8 as given (grey = 64 x the class the oracle reads)."""
    import numpy as np

    from octseg.core import atomic

    if frames is None:
        frames = np.zeros((n_frames, 64, 48), np.uint8)
        frames[:, :, :lumen_samples] = 64
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(
        path,
        frames=frames,
        space=np.array("polar"),
        pixel_spacing_mm=np.float64(0.04),
        frame_spacing_mm=np.float64(0.2),
    )
    return path
