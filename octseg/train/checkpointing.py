"""Run state across epochs: best-metric and early-stopping tracking, ``last.ckpt`` /
``best.ckpt`` / ``metrics.json``, the exact resume from a checkpoint's training state, and the
start of a fine-tuning run from a checkpoint's weights (``init_from``, ``freeze``)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from octseg import __version__
from octseg.core import atomic
from octseg.core import distributed as ddp
from octseg.core.classes import CLASS_NAMES
from octseg.core.errors import InputError
from octseg.model.checkpoint import rng_state, save_checkpoint, set_rng_state, unwrap
from octseg.model.recommended import META_KEY
from octseg.train.engine import Engine
from octseg.train.settings import TrainSettings, plain

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
            **_ema_state(engine),
        }


def _ema_state(engine: Engine) -> dict[str, Any]:
    """With a weight average the checkpoint's ``state_dict`` holds the average (what inference
    and fine-tuning use); the trained weights and the number of averaged steps resume here."""
    if engine.ema is None:
        return {}
    raw = {k: v.detach().cpu() for k, v in unwrap(engine.model).state_dict().items()}
    return {"raw_state_dict": raw, "ema_n_averaged": int(engine.ema.n_averaged)}


def _restore_weights(resume: dict[str, Any], ts: dict[str, Any], engine: Engine) -> None:
    """The trained weights (and the average, with ``trainer.ema_decay``) from ``resume``: a
    checkpoint without an average starts the average from its weights."""
    engine.model.load_state_dict(ts.get("raw_state_dict") or resume["state_dict"])
    if engine.ema is not None:
        engine.ema.module.load_state_dict(resume["state_dict"])
        engine.ema.n_averaged.fill_(int(ts.get("ema_n_averaged", 1)))


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
    _restore_weights(resume, ts, engine)
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


def _check_same_network(path: Any, meta: dict[str, Any], engine: Engine) -> None:
    """The checkpoint's network config and A-line wrapper must be the config's (the number of
    output channels aside: :func:`init_weights` handles a new head)."""
    had = {**plain(meta["model"]), "out_channels": None}
    now = {**engine.net_cfg, "out_channels": None}
    diff = [
        f"{k}: {had.get(k)!r} vs {now.get(k)!r}"
        for k in sorted(set(had) | set(now))
        if had.get(k) != now.get(k)
    ]
    if plain(meta.get("wrap")) != engine.wrap:
        diff.append(f"wrap: {meta.get('wrap')!r} vs {engine.wrap!r}")
    if diff:
        raise InputError(
            path,
            "checkpoint network differs from the config's model (checkpoint vs config): "
            + "; ".join(diff),
        )


def head_keys(engine: Engine) -> set[str]:
    """The weights whose shape depends on the number of classes (the output layers): those
    that change when the network is built (on the meta device) with one more class."""
    from octseg.model.networks import build_from_parts

    with torch.device("meta"):
        more = build_from_parts(
            {**engine.net_cfg, "out_channels": engine.net_cfg["out_channels"] + 1}, engine.wrap
        )
    now = engine.model.state_dict()
    return {k for k, v in more.state_dict().items() if k in now and v.shape != now[k].shape}


def init_weights(
    init: dict[str, Any] | None, engine: Engine, classes: list[int], new_head: bool
) -> None:
    """Load ``init_from``'s weights into the fresh network (in place: the optimiser keeps its
    parameters). With ``new_head`` and classes other than the checkpoint's, the output layers
    keep their fresh initialisation. Errors name the checkpoint and the mismatch."""
    if not init:
        return
    path, state = init["path"], init["state_dict"]
    _check_same_network(path, init["meta"], engine)
    net = unwrap(engine.model)
    own = net.state_dict()
    skip = head_keys(engine) if new_head and plain(init["meta"]["classes"]) != classes else set()
    _check_fit(path, own, state, skip)
    net.load_state_dict({k: v for k, v in state.items() if k not in skip}, strict=False)
    log.info(
        "initialised from %s (%d tensors; %d output tensors re-initialised)",
        path,
        len(own) - len(skip),
        len(skip),
    )


def _check_fit(path: Any, own: dict, state: dict, skip: set[str]) -> None:
    """The checkpoint's tensors ``state`` must be the network's ``own`` ones, by name and (but
    for the ``skip`` ones) by shape."""
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise InputError(
            path,
            f"weights do not fit the network: missing {missing[:5]}, unexpected {extra[:5]}",
        )
    bad = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k not in skip and state[k].shape != v.shape
    ]
    if bad:
        raise InputError(
            path, "weights do not fit the network (checkpoint vs config): " + "; ".join(bad[:5])
        )


def freeze(engine: Engine, prefixes: list[str]) -> int:
    """Keep the parameters whose names start with one of ``prefixes`` fixed (no gradient, so
    the optimiser skips them); returns how many tensors were frozen."""
    if not prefixes:
        return 0
    if engine.ddp_model is not engine.model:
        # DDP registered every parameter for gradient reduction when it was built (before this
        # point) and would wait for the frozen ones: "Expected to have finished reduction"
        raise ValueError(
            "freeze is not supported with several training processes (DDP): train on one "
            "process, or without freeze"
        )
    params = dict(unwrap(engine.model).named_parameters())
    unused = [p for p in prefixes if not any(n.startswith(p) for n in params)]
    if unused:
        raise ValueError(
            f"freeze: no parameter name starts with {unused} (e.g. {next(iter(params))})"
        )
    frozen = [p for n, p in params.items() if n.startswith(tuple(prefixes))]
    for p in frozen:
        p.requires_grad_(False)
    return len(frozen)


def checkpoint_meta(
    engine: Engine, data: RunData, remap: dict | None, recommended: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The checkpoint's ``meta``: what inference needs to rebuild and feed the network, and the
    inference settings the recipe recommends (:mod:`octseg.model.recommended`)."""
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
        META_KEY: dict(recommended or {}),
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
        net = engine.eval_model  # the weight average with trainer.ema_decay
        save_checkpoint(out_dir / "last.ckpt", net, meta_now, train_state)
        if improved:
            save_checkpoint(out_dir / "best.ckpt", net, meta_now, train_state)
        atomic.write_json(out_dir / "metrics.json", json_safe(state.history))
    ddp.barrier(info)
