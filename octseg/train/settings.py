"""The training loop's settings, read from the Hydra config in one place.

The data and model groups (``data.*``, ``model.*``) are read by the stages that build them
(:mod:`octseg.train.loaders`, :mod:`octseg.train.engine`); everything that steers the epochs
(``trainer.*``, ``callbacks.*``, ``logger.*``) is in :class:`TrainSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf


def plain(x: Any) -> Any:
    """A config node as plain Python containers (resolved); other values unchanged."""
    return OmegaConf.to_container(x, resolve=True) if isinstance(x, DictConfig) else x


def cfg_get(cfg: Any, dotted: str, default: Any = None) -> Any:
    """``cfg.<dotted>`` as plain Python, ``default`` where the key is missing or null."""
    return plain(OmegaConf.select(cfg, dotted, default=default))


def early_stopping_settings(cfg: Any, monitor: str, mode: str) -> dict[str, Any]:
    """``callbacks.early_stopping`` with its defaults: monitor and mode default to the model
    checkpoint's; ``mode`` is the early stopper's own when given (e.g. ``min`` for a loss)."""
    es = cfg_get(cfg, "callbacks.early_stopping") or {}
    es_mode = str(es.get("mode", mode))
    if es_mode not in ("min", "max"):
        raise ValueError(f"callbacks.early_stopping.mode must be min or max, got {es_mode!r}")
    return {
        "patience": es.get("patience"),
        "min_delta": float(es.get("min_delta", 0.0)),
        "monitor": str(es.get("monitor", monitor)),
        "mode": es_mode,
    }


@dataclass(frozen=True)
class TrainSettings:
    """What steers the epochs: length, validation, clipping, checkpoint and early-stopping
    monitors, TensorBoard logging."""

    max_epochs: int
    val_every: int
    clip: float | None  # gradient norm clip (None or 0: none)
    interrupt: int | None  # testing aid: stop after this epoch as if killed
    strut_tol_mm: float
    monitor: str  # best.ckpt follows it
    mode: str
    patience: int | None  # early stopping
    min_delta: float
    es_monitor: str
    es_mode: str
    tensorboard: bool
    log_every: int  # steps between train/loss_step scalars
    image_every: int  # epochs between overlay images
    n_images: int

    @classmethod
    def from_cfg(cls, cfg: Any) -> TrainSettings:
        monitor = str(cfg_get(cfg, "callbacks.model_checkpoint.monitor", "score"))
        mode = str(cfg_get(cfg, "callbacks.model_checkpoint.mode", "max"))
        es = early_stopping_settings(cfg, monitor, mode)
        return cls(
            max_epochs=int(cfg.trainer.max_epochs),
            val_every=int(cfg_get(cfg, "trainer.val_every_n_epochs", 1)),
            clip=cfg_get(cfg, "trainer.gradient_clip_val"),
            interrupt=cfg_get(cfg, "trainer.interrupt_after_epoch"),
            strut_tol_mm=float(cfg_get(cfg, "trainer.strut_tolerance_mm", 0.1)),
            monitor=monitor,
            mode=mode,
            patience=es["patience"],
            min_delta=es["min_delta"],
            es_monitor=es["monitor"],
            es_mode=es["mode"],
            tensorboard=bool(cfg_get(cfg, "logger.tensorboard.enabled", False)),
            log_every=int(cfg_get(cfg, "logger.tensorboard.log_every_n_steps", 10)),
            image_every=int(cfg_get(cfg, "logger.tensorboard.image_every_n_epochs", 5)),
            n_images=int(cfg_get(cfg, "logger.tensorboard.n_images", 2)),
        )
