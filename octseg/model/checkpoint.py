"""Checkpoints: only tensors and plain values, written atomically, loaded with weights_only=True.

Layout of a checkpoint (a dict)::

    format      "octseg-checkpoint"
    version     1
    state_dict  the network's weights (the A-line wrapper's keys: ``net.*``)
    meta        {"model": net config with _target_, "wrap": {"pad_alines", "multiple"},
                 "classes": [...], "class_names": [...], "context_frames": k,
                 "net_grid": {"n_alines", "n_samples", "spacing_mm"},
                 "normalization": {...}, "split": {"train": [...], "val": [...]},
                 "epoch": int, "metrics": {...}, "octseg_version": str}
    train_state optimizer, scheduler, scaler, epoch, best metric, early-stopping counter,
                RNG states (torch, CUDA, numpy, python) - what ``ckpt_path=`` resumes from

:func:`load_checkpoint` rebuilds the network from the checkpoint alone (for inference).
"""

from __future__ import annotations

import math
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from octseg.core import atomic
from octseg.core.errors import InputError

FORMAT = "octseg-checkpoint"
VERSION = 1
META_KEYS = ("model", "classes", "context_frames", "net_grid", "normalization")


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module under DDP / torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002 (global state, saved for resume)
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _py_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _py_state_to_plain(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": int(version), "internal": list(internal), "gauss": gauss}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            int(npst["pos"]),
            int(npst["has_gauss"]),
            float(npst["cached_gaussian"]),
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    obj = {
        "format": FORMAT,
        "version": VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "meta": meta,
    }
    if train_state is not None:
        obj["train_state"] = train_state
    atomic.torch_save(obj, path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, validated; InputError naming the file if unusable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        OSError,
        AttributeError,
        KeyError,
        TypeError,
    ) as exc:
        raise InputError(path, _load_error(exc)) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InputError(path, "not an octseg checkpoint (no 'format: octseg-checkpoint' entry)")
    if int(obj.get("version", -1)) != VERSION:
        raise InputError(path, f"checkpoint version {obj.get('version')!r} is not supported")
    meta = obj.get("meta")
    if not isinstance(meta, dict) or any(k not in meta for k in META_KEYS):
        raise InputError(path, f"checkpoint meta lacks one of {', '.join(META_KEYS)}")
    if not isinstance(obj.get("state_dict"), dict):
        raise InputError(path, "checkpoint has no state_dict")
    check_finite(path, obj["state_dict"])
    check_normalization(path, meta["normalization"])
    check_net_grid_size(path, meta["net_grid"])
    return obj


def _load_error(exc: BaseException) -> str:
    """octseg's own one-line reason for a checkpoint torch cannot load with weights_only=True
    (never torch's advice to load it unsafely)."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if isinstance(exc, pickle.UnpicklingError) or found:
        what = f" ({found.group(1)})" if found else ""
        return (
            f"refused: the checkpoint holds Python objects{what} besides tensors and plain "
            "values; octseg loads checkpoints as weights only and never runs code from them"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"not a readable octseg checkpoint ({type(exc).__name__}: {first[:200]})"


def check_finite(path: str | Path, state_dict: dict[str, Any]) -> None:
    """Every floating-point tensor of ``state_dict`` must be finite (a diverged run or a
    damaged file gives NaN/Inf weights, and with them meaningless labels)."""
    for key, val in state_dict.items():
        if not isinstance(val, torch.Tensor):
            raise InputError(path, f"checkpoint weight {key!r} is not a tensor")
        if val.is_floating_point() and not bool(torch.isfinite(val).all()):
            bad = int((~torch.isfinite(val)).sum())
            raise InputError(
                path,
                f"checkpoint weight {key!r} holds {bad} NaN/infinite value(s) of {val.numel()}: "
                "the training diverged or the file is damaged",
            )


def check_normalization(path: str | Path | None, norm: Any) -> dict[str, Any]:
    """The recorded input normalisation: ``none``, or ``zscore`` with a finite mean and a
    finite std > 0."""
    norm = dict(norm or {"kind": "none"})
    kind = norm.get("kind", "none")
    if kind == "none":
        return norm
    if kind != "zscore":
        raise InputError(path, f"checkpoint normalization kind {kind!r} is unknown")
    try:
        mean, std = float(norm["mean"]), float(norm["std"])
    except (KeyError, TypeError, ValueError):
        raise InputError(path, f"checkpoint zscore normalization lacks mean/std: {norm}") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 1e-6):
        raise InputError(
            path,
            f"checkpoint normalization mean {mean!r} / std {std!r} is unusable "
            "(needs a finite mean and a finite std > 1e-6)",
        )
    return norm


def check_net_grid_size(path: str | Path, net_grid: Any) -> None:
    """The network's polar grid must fit :attr:`octseg.io.limits.Limits.max_net_grid_side`."""
    from octseg.io import limits

    cap = limits.current().max_net_grid_side
    try:
        sides = int(net_grid["n_alines"]), int(net_grid["n_samples"])
    except (KeyError, TypeError, ValueError):
        raise InputError(path, f"checkpoint net_grid is malformed: {net_grid!r}") from None
    if max(sides) > cap:
        raise InputError(
            path, f"checkpoint declares a {sides[0]}x{sides[1]} network grid; the limit is {cap}"
        )


def check_network_size(path: str | Path, model_meta: nn.Module, state_dict: dict) -> None:
    """The network the config declares (built on the meta device: no memory, no init) must stay
    under the parameter cap and have exactly as many weights as the checkpoint holds."""
    from octseg.io import limits

    cap = limits.current().max_net_parameters
    n_params = sum(p.numel() for p in model_meta.parameters())
    if n_params > cap:
        raise InputError(
            path, f"checkpoint declares a network of {n_params:,} parameters; the limit is {cap:,}"
        )
    declared = sum(v.numel() for v in model_meta.state_dict().values())
    held = sum(v.numel() for v in state_dict.values() if isinstance(v, torch.Tensor))
    if declared != held:
        raise InputError(
            path,
            f"weights do not fit the network: the config declares {declared:,} values, "
            f"the checkpoint holds {held:,}",
        )


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network from a checkpoint alone: ``(model in eval mode, meta)``."""
    from octseg.core.classes import check_classes
    from octseg.model.networks import build_from_parts

    obj = read_checkpoint(path, map_location)
    meta = obj["meta"]
    classes = check_classes(meta["classes"], path)
    net_cfg = meta["model"]
    if not isinstance(net_cfg, dict) or int(net_cfg.get("out_channels", -1)) != len(classes):
        raise InputError(
            path, f"model config does not predict the {len(classes)} classes {classes}"
        )
    try:
        with torch.device("meta"):  # size first: nothing allocated, no weights initialised
            check_network_size(path, build_from_parts(net_cfg, meta.get("wrap")), obj["state_dict"])
        model = build_from_parts(net_cfg, meta.get("wrap"))
    except InputError:
        raise
    except (ValueError, TypeError, ImportError) as exc:
        raise InputError(path, f"cannot rebuild the network: {exc}") from None
    except Exception as exc:  # any other constructor error: one clear line naming the file
        raise InputError(path, f"cannot rebuild the network: {type(exc).__name__}: {exc}") from None
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(path, f"weights do not fit the network ({first[:200]})") from None
    model.to(map_location)
    model.eval()
    return model, meta
