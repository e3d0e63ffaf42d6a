"""Build MONAI segmentation networks from config (``configs/model/*.yaml``).

A model config has the network under ``net`` (a ``_target_`` into ``monai.networks.nets`` plus its
arguments; ``in_channels`` / ``out_channels`` are filled in from the data settings) and the A-line
wrapping settings beside it::

    net: {_target_: monai.networks.nets.UNet, spatial_dims: 2, channels: [16, 32], strides: [2]}
    pad_alines: 16   # circular padding of the A-line axis (see octseg.model.wrap)
    multiple: 2      # the network's total stride; inputs are padded to a multiple of it

``_target_`` must be one of :data:`ALLOWED_TARGETS` and every argument a plain value (no nested
``_target_``); the network is built by calling the class with keyword arguments, both in training
and when a checkpoint is loaded (see :func:`instantiate_net`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from octseg.model.wrap import CircularPadNet

# A checkpoint names the class to build. Only these exact classes of ``monai.networks.nets`` may be
# named: a prefix test is not enough (``monai.networks.nets.unet.torch.save`` starts with the
# prefix and resolves to ``torch.save``), and the network is built by calling the class with plain
# keyword arguments - never through ``hydra.utils.instantiate``, which would also instantiate any
# nested ``_target_`` hidden in an argument (a checkpoint is a downloaded, untrusted file).
ALLOWED_NETS = ("UNet", "BasicUNet", "AttentionUnet", "DynUNet", "SegResNet")
TARGET_PREFIX = "monai.networks.nets."
ALLOWED_TARGETS = tuple(TARGET_PREFIX + name for name in ALLOWED_NETS)
# Hydra's special keys: none may appear anywhere in a network config
HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")


def _plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - hydra is a dependency
        pass
    return cfg


def _check_plain(obj: Any, where: str) -> None:
    """Only plain values (numbers, strings, None, lists, dicts without Hydra keys) inside."""
    if isinstance(obj, Mapping):
        for key, val in obj.items():
            if not isinstance(key, str):
                raise ValueError(f"model config key {key!r} at {where} is not a string")
            if key in HYDRA_KEYS:
                raise ValueError(
                    f"model config holds a nested {key} at {where}.{key}: not allowed "
                    "(network arguments must be plain values)"
                )
            _check_plain(val, f"{where}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _check_plain(item, f"{where}[{i}]")
    elif not (obj is None or isinstance(obj, (bool, int, float, str))):
        raise ValueError(f"model config value at {where} is a {type(obj).__name__}, not allowed")


def _check_targets(net: Any) -> None:
    """``net`` must name one of :data:`ALLOWED_TARGETS` and hold only plain arguments."""
    if not isinstance(net, Mapping):
        raise ValueError("model config 'net' must be a mapping")
    target = net.get("_target_")
    if not isinstance(target, str) or target not in ALLOWED_TARGETS:
        raise ValueError(
            f"model _target_ {target!r} is not allowed (expected one of {', '.join(ALLOWED_TARGETS)})"
        )
    for key, val in net.items():
        if key != "_target_":
            _check_plain({key: val}, "net")


def net_config(model_cfg: Any, in_channels: int, out_channels: int) -> dict[str, Any]:
    """The plain ``net`` dict (with ``_target_``) with channel counts filled in."""
    cfg = _plain(model_cfg)
    if not isinstance(cfg, Mapping) or "net" not in cfg:
        raise ValueError("model config needs a 'net' entry with a _target_")
    net = dict(_plain(cfg["net"]))
    if "_target_" not in net:
        raise ValueError("model config 'net' lacks _target_")
    net["in_channels"] = int(in_channels)
    net["out_channels"] = int(out_channels)
    _check_targets(net)
    return net


def wrap_config(model_cfg: Any) -> dict[str, int]:
    cfg = _plain(model_cfg)
    return {"pad_alines": int(cfg.get("pad_alines", 16)), "multiple": int(cfg.get("multiple", 16))}


def instantiate_net(net_cfg: Mapping[str, Any]) -> nn.Module:
    """Build the raw network from a plain ``net`` dict (checked first; safe for checkpoints).

    The class is looked up by exact name on ``monai.networks.nets`` and called with the other
    entries as plain keyword arguments (no Hydra instantiation)."""
    import monai.networks.nets as nets

    _check_targets(net_cfg)
    cls = getattr(nets, str(net_cfg["_target_"])[len(TARGET_PREFIX) :])
    kwargs = {k: v for k, v in net_cfg.items() if k != "_target_"}
    net = cls(**kwargs)
    if not isinstance(net, nn.Module):  # pragma: no cover - every allowed class is a Module
        raise ValueError(f"{net_cfg.get('_target_')} did not build a torch.nn.Module")
    return net


def build_from_parts(net_cfg: Mapping[str, Any], wrap: Mapping[str, int] | None) -> nn.Module:
    net = instantiate_net(net_cfg)
    if wrap is None:
        return net
    return CircularPadNet(net, pad_alines=int(wrap["pad_alines"]), multiple=int(wrap["multiple"]))


def build_model(model_cfg: Any, in_channels: int, out_channels: int) -> nn.Module:
    """Network from a ``configs/model`` entry, wrapped for the periodic A-line axis."""
    return build_from_parts(
        net_config(model_cfg, in_channels, out_channels), wrap_config(model_cfg)
    )


def has_deep_supervision(net_cfg: Mapping[str, Any]) -> bool:
    return bool(net_cfg.get("deep_supervision", False))
