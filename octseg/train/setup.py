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


def read_init(cfg: DictConfig, resume: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The checkpoint named by ``init_from`` (with ``path`` added), or None. Only its weights
    and normalisation are used: a new run (optimiser, scheduler, epochs) starts from them.
    Resuming (``resume``, read from ``ckpt_path``) a run that started from the same
    ``init_from`` returns None: the weights come from the resumed checkpoint, and the command
    that started the run, plus ``ckpt_path``, resumes it."""
    init_from = cfg_get(cfg, "init_from")
    if not init_from:
        # resuming (ckpt_path) a fine-tuning run needs no init_from: the weights come from there
        if cfg_get(cfg, "init_required", False) and not cfg_get(cfg, "ckpt_path"):
            raise InputError(
                None,
                "this experiment fine-tunes a model: give init_from=CHECKPOINT (a file, or a "
                "shipped model's name: init_from=octseg-default-v1)",
            )
        return None
    if cfg_get(cfg, "ckpt_path"):
        _check_same_start(init_from, resume if resume is not None else read_resume(cfg))
        return None
    from octseg.model.shipped import resolve  # init_from=octseg-default-v1: the shipped file

    path = resolve(str(init_from))
    return {**read_checkpoint(path), "path": path}


def init_record(path: Path | str) -> str:
    """What a fine-tuning run records as its start: the name of the shipped model whose SHA-256
    the file has (the same on every install; the installed path is not), else the file's path."""
    from octseg.model.shipped import model_with_content

    return model_with_content(path) or str(path)


def _same_start(given: str, started: str) -> bool:
    """Whether ``init_from=given`` names the start a run recorded (``started``: a shipped
    model's name or a path): the same text, or files with the same content (a shipped model by
    name or by its file, another path, a link or a copy)."""
    if given == started:
        return True
    from octseg.model.shipped import resolve, sha256_of

    try:
        return sha256_of(resolve(given)) == sha256_of(resolve(started))
    except (InputError, OSError):
        return False


def _check_same_start(init_from: Any, resume: dict[str, Any] | None) -> None:
    """``init_from`` beside ``ckpt_path`` must name where the resumed run started."""
    started = (resume or {}).get("meta", {}).get("init_from")
    if started is None or not _same_start(str(init_from), str(started)):
        raise InputError(
            init_from,
            f"init_from and ckpt_path are both set, and the resumed run started from "
            f"{started or 'no init_from'}: ckpt_path resumes a run (give init_from as it "
            "started, or leave it out), init_from starts a new one from a checkpoint's weights",
        )


def check_init_matches(
    init: dict[str, Any] | None,
    new_head: bool,
    classes: list[int],
    k: int,
    net_grid: dict,
    new_grid: bool = False,
) -> None:
    """The initial checkpoint's ``context_frames`` and ``net_grid`` must equal the config's; its
    ``classes`` too, unless ``init_new_head`` re-initialises the output layers. ``new_grid``
    (``init_new_grid``): the config's ``net_grid`` may differ (the U-Nets here are
    fully convolutional, so their weights fit any grid; the network has to re-learn the new
    grid's scale)."""
    if not init:
        return
    check_resume_matches(init, context_frames=k, **({} if new_grid else {"net_grid": net_grid}))
    had = plain(init["meta"]["classes"])
    if had != classes and not new_head:
        raise InputError(
            init["path"],
            f"checkpoint classes {had} differ from the config's data.classes {classes}; set "
            "init_new_head=true to start the output layers afresh (the rest from the checkpoint)",
        )
