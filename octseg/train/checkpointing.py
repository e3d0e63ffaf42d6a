"""Run state across epochs: best-metric and early-stopping tracking, ``last.ckpt`` /
``best.ckpt`` / ``metrics.json``, and the exact resume from a checkpoint's training state."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from octseg import __version__
from octseg.core import atomic
from octseg.core import distributed as ddp
from octseg.core.classes import CLASS_NAMES
from octseg.core.errors import InputError
from octseg.model.checkpoint import rng_state, save_checkpoint, set_rng_state
from octseg.train.engine import Engine
from octseg.train.settings import TrainSettings

if TYPE_CHECKING:
    from octseg.train.loaders import RunData

log = logging.getLogger("octseg.train")


def json_safe(obj: Any) -> Any:
    """NaN -> None so the JSON stays strict."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


@dataclass
class RunState:
    """What changes from epoch to epoch (and is saved for an exact resume)."""

    start_epoch: int = 0
    best: float | None = None  # best value of the checkpoint monitor
    best_es: float | None = None  # best value of the early-stopping monitor
    bad: int = 0  # validation rounds without early-stopping improvement
    step: int = 0  # optimiser steps
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch
    last_val: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    def track(self, val: dict[str, float], s: TrainSettings) -> bool:
        """Update the best values with a validation round; True when the checkpoint monitor
        improved (``best.ckpt`` is then written)."""
        value = val.get(s.monitor.removeprefix("val/"), float("nan"))
        improved = _better(value, self.best, s.mode, 0.0)
        if improved:
            self.best = value
        es_value = val.get(s.es_monitor.removeprefix("val/"), float("nan"))
        if _better(es_value, self.best_es, s.es_mode, s.min_delta):
            self.best_es, self.bad = es_value, 0
        else:
            self.bad += 1
        return improved

    def train_state(self, engine: Engine, epoch: int, rngs: list[Any]) -> dict[str, Any]:
        """The checkpoint's ``train_state`` after ``epoch`` (1-based) with every rank's RNG."""
        return {
            "optimizer": engine.optimizer.state_dict(),
            "scheduler": engine.scheduler.state_dict() if engine.scheduler is not None else None,
            "scaler": engine.scaler.state_dict() if engine.scaler.is_enabled() else None,
            "epoch": epoch,
            "best": self.best,
            "best_es": self.best_es,
            "bad_epochs": self.bad,
            "global_step": self.step,
            "history": json_safe(self.history),
            "rng": rngs[0],
            "rng_per_rank": rngs,
        }


def _restore_rng(ts: dict[str, Any], info: ddp.DistInfo) -> None:
    per_rank = ts.get("rng_per_rank")
    if per_rank and len(per_rank) == info.world_size:
        set_rng_state(per_rank[info.rank])  # each rank continues its own streams
        return
    set_rng_state(ts["rng"])
    if info.distributed:
        log.warning(
            "checkpoint has no RNG state for each of the %d ranks: every rank resumes "
            "from rank 0's (not bit-exact)",
            info.world_size,
        )


def restore(resume: dict[str, Any] | None, engine: Engine, info: ddp.DistInfo) -> RunState:
    """A fresh :class:`RunState`, or the resumed checkpoint's with weights, optimiser,
    scheduler, scaler and RNG states restored."""
    if not resume:
        return RunState()
    ts = resume.get("train_state")
    if not ts:
        raise InputError(resume["path"], "checkpoint has no training state to resume from")
    engine.model.load_state_dict(resume["state_dict"])
    engine.optimizer.load_state_dict(ts["optimizer"])
    if engine.scheduler is not None and ts.get("scheduler") is not None:
        engine.scheduler.load_state_dict(ts["scheduler"])
    if ts.get("scaler"):
        engine.scaler.load_state_dict(ts["scaler"])
    state = RunState(
        start_epoch=int(ts["epoch"]),
        best=ts.get("best"),
        best_es=ts.get("best_es"),
        bad=int(ts.get("bad_epochs", 0)),
        step=int(ts.get("global_step", 0)),
        history=list(ts.get("history", [])),
    )
    _restore_rng(ts, info)
    log.info("resumed from %s at epoch %d", resume["path"], state.start_epoch)
    return state


def checkpoint_meta(engine: Engine, data: RunData, remap: dict | None) -> dict[str, Any]:
    """The checkpoint's ``meta``: what inference needs to rebuild and feed the network."""
    return {
        "model": engine.net_cfg,
        "wrap": engine.wrap,
        "classes": data.classes,
        "class_names": [CLASS_NAMES[c] for c in data.classes],
        "context_frames": data.context_frames,
        "net_grid": data.net_grid,
        "normalization": data.normalization,
        "remap": {int(a): int(b) for a, b in (remap or {}).items()},
        "split": data.split,
        "octseg_version": __version__,
    }


def save_epoch(
    out_dir: Path,
    engine: Engine,
    meta: dict[str, Any],
    state: RunState,
    epoch: int,
    improved: bool,
    info: ddp.DistInfo,
) -> None:
    """After ``epoch`` (1-based): ``last.ckpt``, ``best.ckpt`` when improved, ``metrics.json``
    (rank 0; every rank takes part in gathering the RNG states)."""
    rngs = ddp.all_gather_object(rng_state(), info)  # collective: every rank's RNG state
    if info.is_main:
        metrics = {k: v for k, v in state.last_val.items() if not math.isnan(v)}
        meta_now = {**meta, "epoch": epoch, "metrics": metrics}
        train_state = state.train_state(engine, epoch, rngs)
        save_checkpoint(out_dir / "last.ckpt", engine.model, meta_now, train_state)
        if improved:
            save_checkpoint(out_dir / "best.ckpt", engine.model, meta_now, train_state)
        atomic.write_json(out_dir / "metrics.json", json_safe(state.history))
    ddp.barrier(info)
