"""The training loop behind ``train.py``: one function, :func:`train`, taking the Hydra config.

Stages: process group and device -> data (split by pullback, cached on the net grid) -> model,
loss, optimiser, scheduler, AMP scaler -> optional resume (``ckpt_path``) -> epochs of training
and validation with TensorBoard logging, ``last.ckpt`` / ``best.ckpt`` and early stopping.
Rank 0 alone writes files; metrics are summed over ranks before anything is decided, so every
rank takes the same decisions (best checkpoint, early stop).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from octseg import __version__
from octseg.core import atomic
from octseg.core import distributed as ddp
from octseg.core.classes import CLASS_NAMES, check_classes
from octseg.core.errors import InputError
from octseg.model.checkpoint import (
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap,
)
from octseg.model.grid import check_net_grid, compute_normalization
from octseg.model.networks import build_from_parts, has_deep_supervision, net_config, wrap_config
from octseg.train.augment import build_augmentation
from octseg.train.data import (
    EpochLoader,
    PullbackFrames,
    class_lut,
    ensure_synthetic,
    list_entries,
    load_pullback,
    split_pullbacks,
)
from octseg.train.metrics import SegMetrics

log = logging.getLogger("octseg.train")


def _plain(x: Any) -> Any:
    return OmegaConf.to_container(x, resolve=True) if isinstance(x, DictConfig) else x


def _cfg_get(cfg: Any, dotted: str, default: Any = None) -> Any:
    val = OmegaConf.select(cfg, dotted, default=default)
    return _plain(val)


# ------------------------------------------------------------------------------------ pieces


def resolve_precision(precision: Any, device: torch.device) -> str:
    """ "32", "bf16" or "16" for this device ("auto": bf16 on CUDA where supported, else fp16;
    32 on CPU)."""
    p = str(precision).lower().replace("-mixed", "")
    if device.type != "cuda":
        return "32"
    if p == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "16"
    if p not in ("32", "16", "bf16"):
        raise ValueError(f"trainer.precision must be auto, 32, 16 or bf16, got {precision!r}")
    return p


def build_loss(cfg: Any, n_classes: int, deep_supervision: bool) -> nn.Module:
    from hydra.utils import instantiate

    loss_cfg = dict(_plain(cfg.loss))
    weight = loss_cfg.pop("weight", None)
    kwargs: dict[str, Any] = {}
    if weight is not None:
        if len(weight) != n_classes:
            raise ValueError(f"loss.weight has {len(weight)} entries for {n_classes} classes")
        kwargs["weight"] = torch.tensor([float(w) for w in weight])
    loss = instantiate(loss_cfg, **kwargs)
    if deep_supervision:
        from monai.losses import DeepSupervisionLoss

        loss = DeepSupervisionLoss(loss, weight_mode="exp")
    return loss


def _palette() -> np.ndarray:
    pal = np.zeros((256, 3), dtype=np.float32)
    pal[1] = (0.2, 0.45, 1.0)  # lumen
    pal[2] = (1.0, 0.95, 0.2)  # calcium
    pal[3] = (1.0, 0.15, 0.15)  # strut
    pal[4] = (0.2, 0.9, 0.3)  # guidewire
    return pal


def overlay(image: np.ndarray, classes_map: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Grey image (H, W) in any range + class map (H, W) -> uint8 RGB (H, W, 3)."""
    img = image.astype(np.float32)
    lo, hi = np.percentile(img, 1), np.percentile(img, 99)
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(img[..., None], 3, axis=2)
    col = _palette()[classes_map.astype(np.int64)]
    m = (classes_map > 0)[..., None]
    rgb = np.where(m, (1 - alpha) * rgb + alpha * col, rgb)
    return (rgb * 255).round().astype(np.uint8)


def overlay_panels(
    image: torch.Tensor, label: torch.Tensor, pred: torch.Tensor, classes: list[int], spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """(polar, Cartesian) RGB panels [image | label | prediction] for TensorBoard."""
    from octseg.core.polar import polar_to_cartesian

    lut = torch.tensor(classes, dtype=torch.uint8)
    lab = lut[label.long().cpu()]
    prd = lut[pred.long().cpu()]
    img = image.float().cpu()
    zero = torch.zeros_like(lab)
    polar = np.concatenate(
        [
            overlay(img.numpy(), zero.numpy()),
            overlay(img.numpy(), lab.numpy()),
            overlay(img.numpy(), prd.numpy()),
        ],
        axis=1,
    )
    n = 2 * img.shape[-1]
    kw = {"out_size": (n, n), "polar_spacing_mm": spacing, "cart_spacing_mm": spacing}
    ci = polar_to_cartesian(img[None], **kw)[0]
    cl, cp = polar_to_cartesian(torch.stack([lab, prd]), mode="nearest", **kw)
    cart = np.concatenate(
        [
            overlay(ci.numpy(), torch.zeros_like(cl).numpy()),
            overlay(ci.numpy(), cl.numpy()),
            overlay(ci.numpy(), cp.numpy()),
        ],
        axis=1,
    )
    return polar, cart


def add_score(metrics: dict[str, float]) -> dict[str, float]:
    """``score``: mean of the foreground per-class Dice values and strut F1 (where defined)."""
    vals = [
        v
        for k, v in metrics.items()
        if (
            k.startswith("dice_")
            and not k.startswith("dice_pooled")
            and k != "dice_mean"
            and k != "dice_background"
        )
        or k == "strut_f1"
    ]
    vals = [v for v in vals if not math.isnan(v)]
    metrics["score"] = float(np.mean(vals)) if vals else float("nan")
    return metrics


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    metrics: SegMetrics,
    loss_fn: nn.Module,
    info: ddp.DistInfo,
    autocast: Any,
    keep: int = 0,
) -> tuple[dict[str, float], list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    net = unwrap(model)
    net.eval()
    metrics.reset()
    loss_sum = torch.zeros(2, dtype=torch.float64)
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
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


def early_stopping_settings(cfg: Any, monitor: str, mode: str) -> dict[str, Any]:
    """``callbacks.early_stopping`` with its defaults: monitor and mode default to the model
    checkpoint's; ``mode`` is the early stopper's own when given (e.g. ``min`` for a loss)."""
    es = _cfg_get(cfg, "callbacks.early_stopping") or {}
    es_mode = str(es.get("mode", mode))
    if es_mode not in ("min", "max"):
        raise ValueError(f"callbacks.early_stopping.mode must be min or max, got {es_mode!r}")
    return {
        "patience": es.get("patience"),
        "min_delta": float(es.get("min_delta", 0.0)),
        "monitor": str(es.get("monitor", monitor)),
        "mode": es_mode,
    }


def _better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


# ------------------------------------------------------------------------------------ main


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job from a composed config; returns a summary dict."""
    info = ddp.init_distributed(
        str(_cfg_get(cfg, "trainer.accelerator", "auto")),
        _cfg_get(cfg, "trainer.ddp_backend", "auto"),
    )
    det_before = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(cfg, info)
    finally:
        torch.use_deterministic_algorithms(det_before)
        ddp.cleanup(info)


def _load_split(
    cfg: DictConfig, info: ddp.DistInfo, resume_meta: dict | None
) -> tuple[list[Any], list[Any], dict]:
    root = Path(str(cfg.data.root))
    val_root = _cfg_get(cfg, "data.val_root")
    gen = _cfg_get(cfg, "data.generate")
    if gen and info.is_main:
        ensure_synthetic(
            root, n=int(gen["n"]), seed=int(gen["seed"]), preset=gen.get("preset", "small")
        )
        if val_root and gen.get("n_val"):
            ensure_synthetic(
                val_root,
                n=int(gen["n_val"]),
                seed=int(gen["seed"]) + 1,
                preset=gen.get("preset", "small"),
            )
    ddp.barrier(info)
    entries = {e.id: e for e in list_entries(root)}
    if val_root:
        val_entries = {e.id: e for e in list_entries(val_root)}
        train_ids, val_ids = sorted(entries), sorted(val_entries)
        return (
            [entries[i] for i in train_ids],
            [val_entries[i] for i in val_ids],
            {
                "root": str(root),
                "val_root": str(val_root),
                "train": train_ids,
                "val": val_ids,
            },
        )
    if resume_meta and resume_meta.get("split"):
        train_ids = list(resume_meta["split"]["train"])
        val_ids = list(resume_meta["split"]["val"])
        missing = sorted(set(train_ids + val_ids) - set(entries))
        if missing:
            raise InputError(root, f"pullbacks of the resumed run's split are missing: {missing}")
    else:
        train_ids, val_ids = split_pullbacks(
            list(entries),
            val_fraction=float(_cfg_get(cfg, "data.val_fraction", 0.2)),
            seed=int(cfg.seed),
            val_ids=_cfg_get(cfg, "data.val_ids"),
        )
    assert not set(train_ids) & set(val_ids)
    split = {"root": str(root), "val_root": None, "train": train_ids, "val": val_ids}
    return [entries[i] for i in train_ids], [entries[i] for i in val_ids], split


def _train(cfg: DictConfig, info: ddp.DistInfo) -> dict[str, Any]:
    t_start = time.perf_counter()
    seed = int(cfg.seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    import random

    random.seed(seed)
    threads = _cfg_get(cfg, "trainer.num_threads")
    if threads:
        torch.set_num_threads(int(threads))
    if bool(_cfg_get(cfg, "trainer.deterministic", False)):
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    out_dir = Path(str(cfg.paths.output_dir))
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    ddp.barrier(info)

    # ---------------------------------------------------------------- resume state
    ckpt_path = _cfg_get(cfg, "ckpt_path")
    resume = read_checkpoint(ckpt_path) if ckpt_path else None
    resume_meta = resume["meta"] if resume else None

    # ---------------------------------------------------------------- data
    classes = check_classes(_plain(cfg.data.classes))
    k = int(cfg.data.context_frames)
    net_grid = check_net_grid(_plain(cfg.data.net_grid))
    if resume_meta:
        for key, now in (("classes", classes), ("context_frames", k), ("net_grid", net_grid)):
            if _plain(resume_meta[key]) != now:
                raise InputError(
                    ckpt_path,
                    f"checkpoint {key} {resume_meta[key]!r} differs from the config {now!r}",
                )
    lut = class_lut(classes, _cfg_get(cfg, "data.remap"))
    train_entries, val_entries, split = _load_split(cfg, info, resume_meta)
    if info.is_main:
        atomic.write_json(out_dir / "split.json", split)
    bar = dict(disable=not info.is_main, leave=False)
    train_cache = [
        load_pullback(e, net_grid, k, lut) for e in tqdm(train_entries, desc="load train", **bar)
    ]
    val_cache = [
        load_pullback(e, net_grid, k, lut) for e in tqdm(val_entries, desc="load val", **bar)
    ]
    if resume_meta:
        norm = dict(resume_meta["normalization"])
    else:
        norm = compute_normalization(
            [pb.images for pb in train_cache], str(_cfg_get(cfg, "data.normalization", "zscore"))
        )
    train_ds = PullbackFrames(
        train_cache, k, norm, build_augmentation(_cfg_get(cfg, "data.augment"))
    )
    val_ds = PullbackFrames(val_cache, k, norm, None)
    bs = int(cfg.data.batch_size)
    workers = int(_cfg_get(cfg, "data.num_workers", 0))
    pin = bool(_cfg_get(cfg, "data.pin_memory", False)) and info.device.type == "cuda"
    train_loader = EpochLoader(
        train_ds,
        batch_size=bs,
        shuffle=True,
        num_workers=workers,
        seed=seed,
        rank=info.rank,
        world_size=info.world_size,
        drop_last=bool(_cfg_get(cfg, "data.drop_last", True)),
        pin_memory=pin,
    )
    val_shard = Subset(val_ds, list(range(info.rank, len(val_ds), info.world_size)))
    val_loader = DataLoader(
        val_shard,
        batch_size=int(_cfg_get(cfg, "data.val_batch_size", bs)),
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
    )

    # ---------------------------------------------------------------- model & optimisation
    from hydra.utils import instantiate

    net_cfg = net_config(cfg.model, k, len(classes))
    wrap = wrap_config(cfg.model)
    model = build_from_parts(net_cfg, wrap).to(info.device)
    if bool(_cfg_get(cfg, "trainer.sync_batchnorm", False)) and info.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    deep_sup = has_deep_supervision(net_cfg)
    loss_fn = build_loss(cfg, len(classes), deep_sup).to(info.device)
    base_loss = loss_fn.loss if deep_sup else loss_fn
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer) if cfg.get("scheduler") else None
    precision = resolve_precision(_cfg_get(cfg, "trainer.precision", "auto"), info.device)
    amp_dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "16")

    def autocast() -> Any:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=info.device.type, dtype=amp_dtype)

    ddp_model: nn.Module = model
    if info.distributed:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )

    monitor = str(_cfg_get(cfg, "callbacks.model_checkpoint.monitor", "score"))
    mode = str(_cfg_get(cfg, "callbacks.model_checkpoint.mode", "max"))
    es = early_stopping_settings(cfg, monitor, mode)
    patience, min_delta, es_monitor, es_mode = (
        es["patience"],
        es["min_delta"],
        es["monitor"],
        es["mode"],
    )
    max_epochs = int(cfg.trainer.max_epochs)
    val_every = int(_cfg_get(cfg, "trainer.val_every_n_epochs", 1))
    clip = _cfg_get(cfg, "trainer.gradient_clip_val")
    interrupt = _cfg_get(cfg, "trainer.interrupt_after_epoch")
    strut_tol = float(_cfg_get(cfg, "trainer.strut_tolerance_mm", 0.1))
    metrics = SegMetrics(classes, net_grid["spacing_mm"], strut_tol)

    start_epoch, best, best_es, bad, step = 0, None, None, 0, 0
    history: list[dict[str, Any]] = []
    if resume:
        ts = resume.get("train_state")
        if not ts:
            raise InputError(ckpt_path, "checkpoint has no training state to resume from")
        model.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(ts["optimizer"])
        if scheduler is not None and ts.get("scheduler") is not None:
            scheduler.load_state_dict(ts["scheduler"])
        if ts.get("scaler"):
            scaler.load_state_dict(ts["scaler"])
        start_epoch, best, best_es = int(ts["epoch"]), ts.get("best"), ts.get("best_es")
        bad, step = int(ts.get("bad_epochs", 0)), int(ts.get("global_step", 0))
        history = list(ts.get("history", []))
        per_rank = ts.get("rng_per_rank")
        if per_rank and len(per_rank) == info.world_size:
            set_rng_state(per_rank[info.rank])  # each rank continues its own streams
        else:
            set_rng_state(ts["rng"])
            if info.distributed:
                log.warning(
                    "checkpoint has no RNG state for each of the %d ranks: every rank resumes "
                    "from rank 0's (not bit-exact)",
                    info.world_size,
                )
        log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)

    meta = {
        "model": net_cfg,
        "wrap": wrap,
        "classes": classes,
        "class_names": [CLASS_NAMES[c] for c in classes],
        "context_frames": k,
        "net_grid": net_grid,
        "normalization": norm,
        "remap": {int(a): int(b) for a, b in (_cfg_get(cfg, "data.remap") or {}).items()},
        "split": split,
        "octseg_version": __version__,
    }

    writer = None
    if info.is_main and bool(_cfg_get(cfg, "logger.tensorboard.enabled", False)):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tensorboard"))
    log_every = int(_cfg_get(cfg, "logger.tensorboard.log_every_n_steps", 10))
    img_every = int(_cfg_get(cfg, "logger.tensorboard.image_every_n_epochs", 5))
    n_img = int(_cfg_get(cfg, "logger.tensorboard.n_images", 2))

    if info.is_main:
        log.info(
            "train %d frames (%d pullbacks), val %d frames (%d pullbacks); device %s x%d, precision %s",
            len(train_ds),
            len(train_cache),
            len(val_ds),
            len(val_cache),
            info.device,
            info.world_size,
            precision,
        )

    stopped_early = False
    last_val: dict[str, float] = {}
    epoch = start_epoch
    for epoch in range(start_epoch, max_epochs):
        ddp_model.train()
        train_loader.set_epoch(epoch)
        t0 = time.perf_counter()
        # summed on the device: no host sync per step (one at the end of the epoch)
        sums = torch.zeros(2, dtype=torch.float64, device=info.device)
        for batch in tqdm(train_loader, desc=f"epoch {epoch + 1}/{max_epochs}", **bar):
            x = batch["image"].to(info.device, non_blocking=True)
            y = batch["label"].to(info.device, non_blocking=True)
            with autocast():
                out = ddp_model(x)
            out = out.float()
            loss = (
                loss_fn(list(out.unbind(1)), y) if (deep_sup and out.ndim == 5) else loss_fn(out, y)
            )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), float(clip))
            scaler.step(optimizer)
            scaler.update()
            step += 1
            sums[0] += loss.detach().double() * x.shape[0]
            sums[1] += x.shape[0]
            if writer is not None and step % log_every == 0:
                writer.add_scalar("train/loss_step", float(loss.detach()), step)
        if info.device.type == "cuda":
            torch.cuda.synchronize(info.device)
        dt = time.perf_counter() - t0
        sums = sums.cpu()  # the epoch's one sync; float64 reduced on the CPU (gloo)
        ddp.all_reduce_sum(sums, info)
        train_loss = float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")
        fps = float(sums[1]) / max(dt, 1e-9)
        lr = float(optimizer.param_groups[0]["lr"])
        if scheduler is not None:
            scheduler.step()
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "lr": lr,
            "frames_per_s": fps,
        }
        if writer is not None:
            writer.add_scalar("train/loss", train_loss, epoch + 1)
            writer.add_scalar("train/lr", lr, epoch + 1)
            writer.add_scalar("train/frames_per_s", fps, epoch + 1)

        improved = False
        do_val = len(val_ds) > 0 and ((epoch + 1) % val_every == 0 or epoch + 1 == max_epochs)
        if do_val:
            want_img = writer is not None and (
                (epoch + 1) % img_every == 0 or epoch + 1 == max_epochs
            )
            last_val, kept = validate(
                ddp_model, val_loader, metrics, base_loss, info, autocast, n_img if want_img else 0
            )
            record.update({f"val/{k_}": v for k_, v in last_val.items()})
            value = last_val.get(monitor.removeprefix("val/"), float("nan"))
            improved = _better(value, best, mode, 0.0)
            if improved:
                best = value
            es_value = last_val.get(es_monitor.removeprefix("val/"), float("nan"))
            if _better(es_value, best_es, es_mode, min_delta):
                best_es, bad = es_value, 0
            else:
                bad += 1
            if writer is not None:
                for k_, v in last_val.items():
                    if not math.isnan(v):
                        writer.add_scalar(f"val/{k_}", v, epoch + 1)
                for i, (img, lab, prd) in enumerate(kept):
                    polar, cart = overlay_panels(img, lab, prd, classes, net_grid["spacing_mm"])
                    writer.add_image(f"val_polar/{i}", polar, epoch + 1, dataformats="HWC")
                    writer.add_image(f"val_cartesian/{i}", cart, epoch + 1, dataformats="HWC")
            if info.is_main:
                log.info(
                    "epoch %d: loss %.4f, val %s",
                    epoch + 1,
                    train_loss,
                    ", ".join(
                        f"{k_} {v:.4f}"
                        for k_, v in last_val.items()
                        if k_.startswith(("dice_", "strut_f1", "score")) and "pooled" not in k_
                    ),
                )
        history.append(record)
        if writer is not None:
            writer.flush()
        rngs = ddp.all_gather_object(rng_state(), info)  # collective: every rank's RNG state
        if info.is_main:
            meta_now = {
                **meta,
                "epoch": epoch + 1,
                "metrics": {k_: v for k_, v in last_val.items() if not math.isnan(v)},
            }
            train_state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "epoch": epoch + 1,
                "best": best,
                "best_es": best_es,
                "bad_epochs": bad,
                "global_step": step,
                "history": _json_safe(history),
                "rng": rngs[0],
                "rng_per_rank": rngs,
            }
            save_checkpoint(out_dir / "last.ckpt", model, meta_now, train_state)
            if improved:
                save_checkpoint(out_dir / "best.ckpt", model, meta_now, train_state)
            atomic.write_json(out_dir / "metrics.json", _json_safe(history))
        ddp.barrier(info)
        if patience is not None and do_val and bad >= int(patience):
            stopped_early = True
            if info.is_main:
                log.info(
                    "early stopping after epoch %d (%s did not improve)", epoch + 1, es_monitor
                )
            break
        if interrupt is not None and epoch + 1 >= int(interrupt):
            break

    if writer is not None:
        writer.close()
    summary = {
        "output_dir": str(out_dir),
        "epochs_run": len(history),
        "last_epoch": history[-1]["epoch"] if history else start_epoch,
        "monitor": monitor,
        "best": best,
        "stopped_early": stopped_early,
        "last_val": last_val,
        "wall_s": time.perf_counter() - t_start,
        "world_size": info.world_size,
    }
    if info.is_main:
        atomic.write_json(out_dir / "train_summary.json", _json_safe(summary))
    return summary


def _json_safe(obj: Any) -> Any:
    """NaN -> None so the JSON stays strict."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def main(cfg: DictConfig) -> float | None:
    """Entry used by ``train.py``: run, log the failure cleanly, return the best metric."""
    try:
        summary = train(cfg)
    except Exception:
        log.exception("training failed")
        raise
    return summary.get("best")
