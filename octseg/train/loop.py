"""The training loop behind ``train.py``: :func:`train` takes the Hydra config and runs the
stages in order.

1. :func:`~octseg.train.setup.setup_run`: process group and device (:func:`train`), seeds,
   threads, determinism, run folder; the checkpoint to resume from (``ckpt_path``) or to start
   from (``init_from``: weights only, for fine-tuning; docs/finetune.md).
2. :func:`~octseg.train.loaders.build_data`: split by pullback, pullbacks cached on the net
   grid, normalisation, loaders.
3. :func:`~octseg.train.engine.build_engine`: network, loss, optimiser, scheduler, AMP scaler,
   DDP; :func:`~octseg.train.checkpointing.init_weights` and
   :func:`~octseg.train.checkpointing.freeze` for a fine-tuning run,
   :func:`~octseg.train.checkpointing.restore` for a resumed run.
4. Epochs: :func:`train_epoch`, :func:`validate_epoch` (with best and early-stopping
   tracking), :func:`~octseg.train.checkpointing.save_epoch` (``last.ckpt`` / ``best.ckpt`` /
   ``metrics.json``), TensorBoard logging (:class:`~octseg.report.training.TensorBoardLog`).

Rank 0 alone writes files; metrics are summed over ranks before anything is decided, so every
rank takes the same decisions (best checkpoint, early stop).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from octseg.core import atomic
from octseg.core import distributed as ddp
from octseg.model.checkpoint import unwrap
from octseg.model.recommended import check_recommended
from octseg.report.training import TensorBoardLog
from octseg.train.checkpointing import (
    RunState,
    checkpoint_meta,
    freeze,
    init_weights,
    json_safe,
    restore,
    save_epoch,
)
from octseg.train.distill import Teacher, build_teacher, check_resumed, teacher_record
from octseg.train.engine import Engine, build_engine
from octseg.train.loaders import RunData, build_data
from octseg.train.metrics import SegMetrics, add_score
from octseg.train.settings import TrainSettings, cfg_get
from octseg.train.setup import init_record, read_init, read_resume, setup_run

log = logging.getLogger("octseg.train")

Kept = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class Run:
    """Everything the epochs of one training run use."""

    info: ddp.DistInfo
    settings: TrainSettings
    out_dir: Path
    data: RunData
    engine: Engine
    metrics: SegMetrics
    meta: dict[str, Any]
    state: RunState
    tb: TensorBoardLog | None
    teacher: Teacher | None = None  # distill.checkpoint: learning without forgetting


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    metrics: SegMetrics,
    loss_fn: nn.Module,
    info: ddp.DistInfo,
    autocast: Any,
    keep: int = 0,
) -> tuple[dict[str, float], Kept]:
    """Validation metrics summed over all ranks (with ``loss`` and ``score``), and up to
    ``keep`` (image centre frame, label, prediction) samples of this rank for the log."""
    net = unwrap(model)
    net.eval()
    metrics.reset()
    loss_sum = torch.zeros(2, dtype=torch.float64)
    kept: Kept = []
    for batch in loader:
        x = batch["image"].to(info.device, non_blocking=True)
        y = batch["label"].to(info.device, non_blocking=True)
        with autocast():
            logits = net(x)
        logits = logits.float()
        loss_sum[0] += float(loss_fn(logits, y)) * x.shape[0]
        loss_sum[1] += x.shape[0]
        pred = logits.argmax(1, keepdim=True)
        metrics.update(pred, y)
        if len(kept) < keep:
            c = x.shape[1] // 2
            for b in range(min(keep - len(kept), x.shape[0])):
                kept.append((x[b, c].cpu(), y[b, 0].cpu(), pred[b, 0].cpu()))
    ddp.all_reduce_sum(metrics.state, info)
    ddp.all_reduce_sum(loss_sum, info)
    out = metrics.compute()
    out["loss"] = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else float("nan")
    return add_score(out), kept


def _batch_loss(
    run: Run, batch: dict[str, Any], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The training loss of one batch and its distillation part (detached; None without a
    teacher, :mod:`octseg.train.distill`)."""
    eng = run.engine
    y = batch["label"].to(run.info.device, non_blocking=True)
    with eng.autocast():
        out = eng.ddp_model(x)
        taught = None
        if run.teacher is not None:  # the teacher reads the clean view
            clean = batch["clean_image"].to(run.info.device, non_blocking=True)
            taught = run.teacher.probabilities(clean)
    loss = eng.loss(out.float(), y)
    if taught is None:
        return loss, None
    kept = run.teacher.loss(out, taught)
    return loss + kept, kept.detach().double()


def train_epoch(run: Run, epoch: int) -> dict[str, Any]:
    """One pass over the training loader (``epoch`` 0-based), then one scheduler step; returns
    the epoch's record (``epoch``, ``train_loss``, ``lr``, ``frames_per_s``; with a teacher,
    ``distill_loss``: the weighted KL term, part of ``train_loss``)."""
    info, eng, s = run.info, run.engine, run.settings
    eng.ddp_model.train()
    run.data.train_loader.set_epoch(epoch)
    t0 = time.perf_counter()
    # summed on the device: no host sync per step (one at the end of the epoch)
    sums = torch.zeros(3, dtype=torch.float64, device=info.device)
    bar = dict(disable=not info.is_main, leave=False, desc=f"epoch {epoch + 1}/{s.max_epochs}")
    for batch in tqdm(run.data.train_loader, **bar):
        x = batch["image"].to(info.device, non_blocking=True)
        loss, kept = _batch_loss(run, batch, x)
        eng.step(loss, s.clip)
        run.state.step += 1
        sums[0] += loss.detach().double() * x.shape[0]
        sums[1] += x.shape[0]
        if kept is not None:
            sums[2] += kept * x.shape[0]
        if run.tb is not None:
            run.tb.step_loss(loss, run.state.step)
    if info.device.type == "cuda":
        torch.cuda.synchronize(info.device)
    dt = time.perf_counter() - t0
    sums = sums.cpu()  # the epoch's one sync; float64 reduced on the CPU (gloo)
    ddp.all_reduce_sum(sums, info)
    lr = float(eng.optimizer.param_groups[0]["lr"])
    if eng.scheduler is not None:
        eng.scheduler.step()
    record = {
        "epoch": epoch + 1,
        "train_loss": float(sums[0] / sums[1]) if sums[1] > 0 else float("nan"),
        "lr": lr,
        "frames_per_s": float(sums[1]) / max(dt, 1e-9),
    }
    if run.teacher is not None:  # the weighted KL to the teacher, part of train_loss
        record["distill_loss"] = float(sums[2] / sums[1]) if sums[1] > 0 else float("nan")
    if run.tb is not None:
        run.tb.epoch(record, epoch + 1)
    return record


def _log_validation(epoch: int, train_loss: float, val: dict[str, float]) -> None:
    shown = (
        f"{k} {v:.4f}"
        for k, v in val.items()
        if k.startswith(("dice_", "strut_f1", "score")) and "pooled" not in k
    )
    log.info("epoch %d: loss %.4f, val %s", epoch, train_loss, ", ".join(shown))


def validate_epoch(run: Run, epoch: int, record: dict[str, Any]) -> tuple[bool, bool]:
    """Validate after ``epoch`` (1-based) when due; adds ``val/*`` to ``record`` and updates
    the best values. Returns (validated, the checkpoint monitor improved)."""
    s, last = run.settings, epoch == run.settings.max_epochs
    if not (len(run.data.val_ds) > 0 and (epoch % s.val_every == 0 or last)):
        return False, False
    want_img = run.tb is not None and (epoch % s.image_every == 0 or last)
    eng = run.engine
    val, kept = validate(
        eng.eval_model,
        run.data.val_loader,
        run.metrics,
        eng.base_loss,
        run.info,
        eng.autocast,
        s.n_images if want_img else 0,
    )
    run.state.last_val = val
    record.update({f"val/{k}": v for k, v in val.items()})
    improved = run.state.track(val, s)
    if run.tb is not None:
        spacing = run.data.net_grid["spacing_mm"]
        run.tb.validation(val, kept, run.data.classes, spacing, epoch)
    if run.info.is_main:
        _log_validation(epoch, record["train_loss"], val)
    return True, improved


def _should_stop(run: Run, epoch: int, validated: bool) -> bool:
    """Early stopping (patience validation rounds without improvement) or the testing aid
    ``trainer.interrupt_after_epoch``, after ``epoch`` (1-based)."""
    s = run.settings
    if s.patience is not None and validated and run.state.bad >= int(s.patience):
        run.state.stopped_early = True
        if run.info.is_main:
            log.info("early stopping after epoch %d (%s did not improve)", epoch, s.es_monitor)
        return True
    return s.interrupt is not None and epoch >= int(s.interrupt)


def run_epochs(run: Run) -> None:
    """Train, validate, checkpoint epoch after epoch until the last or an early stop."""
    for epoch in range(run.state.start_epoch, run.settings.max_epochs):
        record = train_epoch(run, epoch)
        validated, improved = validate_epoch(run, epoch + 1, record)
        run.state.history.append(record)
        if run.tb is not None:
            run.tb.flush()
        save_epoch(run.out_dir, run.engine, run.meta, run.state, epoch + 1, improved, run.info)
        if _should_stop(run, epoch + 1, validated):
            break


def _prepare(cfg: DictConfig, info: ddp.DistInfo) -> Run:
    """Stages 1-3: run folder, data, model and optimisation, resumed state, logger."""
    rec = check_recommended(cfg_get(cfg, "infer_recommended"), "infer_recommended")
    out_dir = setup_run(cfg, info)
    resume = read_resume(cfg)
    init = read_init(cfg, resume)
    check_resumed(
        resume.get("meta", {}) if resume else None, teacher_record(cfg_get(cfg, "distill"))
    )
    data = build_data(cfg, info, out_dir, resume, init)
    engine = build_engine(cfg, info, data.context_frames, len(data.classes))
    init_weights(init, engine, data.classes, bool(cfg_get(cfg, "init_new_head", False)))
    n_frozen = freeze(engine, list(cfg_get(cfg, "freeze") or []))
    engine.attach_ema(cfg_get(cfg, "trainer.ema_decay"))
    settings = TrainSettings.from_cfg(cfg)
    metrics = SegMetrics(data.classes, data.net_grid["spacing_mm"], settings.strut_tol_mm)
    state = restore(resume, engine, info)
    meta = checkpoint_meta(engine, data, cfg_get(cfg, "data.remap"), rec)
    init_from = (
        init_record(init["path"]) if init else (resume or {}).get("meta", {}).get("init_from")
    )
    if init_from:  # a resumed fine-tuning run keeps the record of where it started
        meta["init_from"] = init_from
    teacher = build_teacher(cfg_get(cfg, "distill"), meta, info.device)
    if teacher is not None:
        meta["distill"] = teacher.record
    tb = None
    if info.is_main and settings.tensorboard:
        tb = TensorBoardLog(out_dir / "tensorboard", settings.log_every)
    if info.is_main:
        log.info(
            "train %d frames (%d pullbacks), val %d frames (%d pullbacks); device %s x%d, "
            "precision %s; %d tensors frozen",
            len(data.train_ds),
            len(data.train_ds.pullbacks),
            len(data.val_ds),
            len(data.val_ds.pullbacks),
            info.device,
            info.world_size,
            engine.precision,
            n_frozen,
        )
    return Run(info, settings, out_dir, data, engine, metrics, meta, state, tb, teacher)


def _summary(run: Run, wall_s: float) -> dict[str, Any]:
    """The run's summary (``train_summary.json``, rank 0)."""
    st = run.state
    summary = {
        "output_dir": str(run.out_dir),
        "epochs_run": len(st.history),
        "last_epoch": st.history[-1]["epoch"] if st.history else st.start_epoch,
        "monitor": run.settings.monitor,
        "best": st.best,
        "stopped_early": st.stopped_early,
        "last_val": st.last_val,
        "wall_s": wall_s,
        "world_size": run.info.world_size,
    }
    if run.info.is_main:
        atomic.write_json(run.out_dir / "train_summary.json", json_safe(summary))
    return summary


def _train(cfg: DictConfig, info: ddp.DistInfo) -> dict[str, Any]:
    t_start = time.perf_counter()
    run = _prepare(cfg, info)
    run_epochs(run)
    if run.tb is not None:
        run.tb.close()
    return _summary(run, time.perf_counter() - t_start)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job from a composed config; returns a summary dict."""
    info = ddp.init_distributed(
        str(cfg_get(cfg, "trainer.accelerator", "auto")),
        cfg_get(cfg, "trainer.ddp_backend", "auto"),
    )
    det_before = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(cfg, info)
    finally:
        torch.use_deterministic_algorithms(det_before)
        ddp.cleanup(info)


def main(cfg: DictConfig) -> float | None:
    """Entry used by ``train.py``: run, log the failure cleanly, return the best metric."""
    try:
        summary = train(cfg)
    except Exception:
        log.exception("training failed")
        raise
    return summary.get("best")
