"""Build MONAI segmentation networks from config (``configs/model/*.yaml``).

A model config has the network under ``net`` (a ``_target_`` into ``monai.networks.nets`` plus its
arguments; ``in_channels`` / ``out_channels`` are filled in from the data settings) and the A-line
wrapping settings beside it::

    net: {_target_: monai.networks.nets.UNet, spatial_dims: 2, channels: [16, 32], strides: [2]}
    pad_alines: 16   # circular padding of the A-line axis (see octseg.train.wrap)
    multiple: 2      # the network's total stride; inputs are padded to a multiple of it
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from octseg.train.wrap import CircularPadNet

# A checkpoint names the class to build; only these modules may be named (instantiating an
# arbitrary ``_target_`` from a downloaded file would let it run any callable).
ALLOWED_TARGET_PREFIXES = ("monai.networks.nets.",)


def _plain(cfg: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - hydra is a dependency
        pass
    return cfg


def _check_targets(obj: Any) -> None:
    if isinstance(obj, Mapping):
        for key, val in obj.items():
            if key == "_target_" and not (
                isinstance(val, str) and val.startswith(ALLOWED_TARGET_PREFIXES)
            ):
                raise ValueError(
                    f"model _target_ {val!r} is not allowed "
                    f"(expected one of {', '.join(ALLOWED_TARGET_PREFIXES)}*)"
                )
            _check_targets(val)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_targets(item)


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
    """Build the raw network from a plain ``net`` dict (``_target_`` checked first)."""
    from hydra.utils import instantiate

    _check_targets(net_cfg)
    net = instantiate(dict(net_cfg), _convert_="all")
    if not isinstance(net, nn.Module):
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
