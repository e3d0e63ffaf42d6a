"""The model stage of a training run: network, loss, optimiser, scheduler, AMP scaler and the
DDP wrapper, held by :class:`Engine`, which also runs one optimisation step."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from octseg.core import distributed as ddp
from octseg.model.networks import build_from_parts, has_deep_supervision, net_config, wrap_config
from octseg.train.settings import cfg_get, plain


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
    """``cfg.loss`` instantiated (``weight`` as a tensor, one per class), wrapped in MONAI's
    ``DeepSupervisionLoss`` for networks with deep supervision."""
    from hydra.utils import instantiate

    loss_cfg = dict(plain(cfg.loss))
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


@dataclass
class Engine:
    """The network and everything that optimises it."""

    model: nn.Module  # the bare network: checkpoints, clipping
    ddp_model: nn.Module  # what runs the training batches (DDP-wrapped when distributed)
    net_cfg: dict[str, Any]
    wrap: dict[str, Any]
    loss_fn: nn.Module  # with deep supervision: over the decoder's outputs
    base_loss: nn.Module  # on the final output (validation)
    deep_supervision: bool
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    precision: str
    device: torch.device
    ema: Any = None  # torch.optim.swa_utils.AveragedModel of ``model`` (trainer.ema_decay)

    @property
    def eval_model(self) -> nn.Module:
        """What validation runs and the checkpoints hold: the weights' exponential moving
        average when ``trainer.ema_decay`` is set, else the trained network itself."""
        return self.ema.module if self.ema is not None else self.ddp_model

    def attach_ema(self, decay: float | None) -> None:
        """Keep an exponential moving average of the weights and buffers (BatchNorm statistics
        too), updated after every optimiser step (also one the fp16 GradScaler skipped):
        ``ema = decay * ema + (1 - decay) * w``.
        Call after the weights are final for the start (init_from, freeze)."""
        if decay is None:
            return
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"trainer.ema_decay must be in (0, 1) or null, got {decay!r}")
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.ema = AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(float(decay)), use_buffers=True
        )
        self.ema.update_parameters(self.model)  # starts as a copy of the weights

    def autocast(self) -> Any:
        """The forward pass's autocast context (none at 32-bit precision)."""
        amp_dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(self.precision)
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=amp_dtype)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss of the network output (deep supervision: outputs stacked on dim 1)."""
        if self.deep_supervision and out.ndim == 5:
            return self.loss_fn(list(out.unbind(1)), y)
        return self.loss_fn(out, y)

    def step(self, loss: torch.Tensor, clip: float | None) -> None:
        """Backward pass (scaled for fp16), optional gradient-norm clipping, optimiser step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)


def build_engine(cfg: DictConfig, info: ddp.DistInfo, k: int, n_classes: int) -> Engine:
    """Network (``model``), loss, optimiser, scheduler, precision, scaler, DDP wrapper."""
    from hydra.utils import instantiate

    net_cfg = net_config(cfg.model, k, n_classes)
    wrap = wrap_config(cfg.model)
    model = build_from_parts(net_cfg, wrap).to(info.device)
    if bool(cfg_get(cfg, "trainer.sync_batchnorm", False)) and info.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    deep_sup = has_deep_supervision(net_cfg)
    loss_fn = build_loss(cfg, n_classes, deep_sup).to(info.device)
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer) if cfg.get("scheduler") else None
    precision = resolve_precision(cfg_get(cfg, "trainer.precision", "auto"), info.device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "16")
    ddp_model: nn.Module = model
    if info.distributed:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )
    return Engine(
        model=model,
        ddp_model=ddp_model,
        net_cfg=net_cfg,
        wrap=wrap,
        loss_fn=loss_fn,
        base_loss=loss_fn.loss if deep_sup else loss_fn,
        deep_supervision=deep_sup,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        precision=precision,
        device=info.device,
    )
