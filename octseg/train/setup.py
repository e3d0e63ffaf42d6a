"""First stage of a training run: seeds, threads, determinism, the run folder, and the
checkpoint to resume from (``ckpt_path``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from octseg.core import atomic
from octseg.core import distributed as ddp
from octseg.core.errors import InputError
from octseg.model.checkpoint import read_checkpoint
from octseg.train.settings import cfg_get, plain


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's global generator and Python's ``random`` (in that order)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    random.seed(seed)


def setup_run(cfg: DictConfig, info: ddp.DistInfo) -> Path:
    """Seed, set threads and determinism, create the run folder with ``config.yaml`` (rank 0);
    returns the run folder."""
    seed_everything(int(cfg.seed))
    threads = cfg_get(cfg, "trainer.num_threads")
    if threads:
        torch.set_num_threads(int(threads))
    if bool(cfg_get(cfg, "trainer.deterministic", False)):
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    out_dir = Path(str(cfg.paths.output_dir))
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    ddp.barrier(info)
    return out_dir


def read_resume(cfg: DictConfig) -> dict[str, Any] | None:
    """The checkpoint named by ``ckpt_path`` (with ``path`` added), or None."""
    ckpt_path = cfg_get(cfg, "ckpt_path")
    if not ckpt_path:
        return None
    return {**read_checkpoint(ckpt_path), "path": ckpt_path}


def check_resume_matches(resume: dict[str, Any] | None, **now: Any) -> None:
    """The resumed checkpoint's ``classes``, ``context_frames`` and ``net_grid`` must equal the
    config's."""
    if not resume:
        return
    meta = resume["meta"]
    for key, value in now.items():
        if plain(meta[key]) != value:
            raise InputError(
                resume["path"],
                f"checkpoint {key} {meta[key]!r} differs from the config {value!r}",
            )
