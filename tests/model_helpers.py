"""Shared by the inference and evaluation tests: a tiny real network config for checkpoints, and
a way to put a stand-in network with a known answer behind a real checkpoint's metadata."""

from __future__ import annotations

from octseg.train import checkpoint as ckpt

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


def with_stand_in(monkeypatch, net):
    """Loading any checkpoint gives its own metadata with ``net`` in place of its network."""
    real = ckpt.load_checkpoint

    def load(path, map_location="cpu"):
        _, meta = real(path, map_location=map_location)
        return net.eval(), meta

    monkeypatch.setattr(ckpt, "load_checkpoint", load)
