"""Training throughput: frames/s of the data loader alone and of full training steps.

    python benchmarks/train_throughput.py [--root DATASET] [--model unet] [--steps 20]
                                          [--batch-size 8] [--workers 2] [--k 3]

Without --root a toy cohort (octseg.datasets.toy) at the synthetic-demo grid (128 x 160) is made in a
temporary folder. On CUDA the training step runs with AMP (bf16 where supported, else fp16).
The loader must outpace the training step: the script prints both and their ratio, and the
seconds from the start of an epoch to its first batch (the workers start again every epoch).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from octseg.datasets.toy import make_toy_dataset
from octseg.io.dataset import list_pullbacks
from octseg.model.grid import compute_normalization
from octseg.model.networks import build_model, has_deep_supervision, net_config
from octseg.train.augment import build_augmentation
from octseg.train.data import EpochLoader, PullbackFrames, class_lut, load_pullback
from octseg.train.engine import build_loss, resolve_precision

CONFIGS = Path(__file__).resolve().parents[1] / "octseg" / "configs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path)
    ap.add_argument("--model", default="unet")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--grid", type=int, nargs=2, default=(128, 160))
    ap.add_argument("--spacing", type=float, default=0.03)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    grid = {"n_alines": args.grid[0], "n_samples": args.grid[1], "spacing_mm": args.spacing}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or make_toy_dataset(
            Path(tmp) / "toy",
            n_pullbacks=2,
            # an epoch longer than the timed steps: the loader's workers restart every epoch
            # (timed apart below), which a 2-batch toy epoch would measure instead
            n_frames=max(32, -(-(args.steps + 3) * args.batch_size // 2)),
            a=args.grid[0],
            r=args.grid[1],
            spacing_mm=args.spacing,
        )
        classes = [0, 1, 2, 3, 4]
        lut = class_lut(classes)
        cache = [load_pullback(e, grid, args.k, lut) for e in list_pullbacks(root) if e.labels_path]
    norm = compute_normalization([c.images for c in cache])
    ds = PullbackFrames(cache, args.k, norm, build_augmentation({"enabled": True}))
    loader = EpochLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        seed=0,
        drop_last=True,
        pin_memory=device.type == "cuda",
    )

    def epoch(e: int):
        """A fresh epoch (the workers start again: not persistent, for an exactly reproducible
        order); the cohort holds enough batches that neither timed phase crosses an epoch."""
        loader.set_epoch(e)
        return iter(loader)

    t0 = time.perf_counter()
    it = epoch(0)
    next(it)
    start_s = time.perf_counter() - t0
    # loader alone
    t0 = time.perf_counter()
    n = 0
    for _ in range(args.steps):
        n += next(it)["image"].shape[0]
    loader_fps = n / (time.perf_counter() - t0)

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={args.model}"])
    model = build_model(cfg.model, args.k, len(classes)).to(device)
    deep = has_deep_supervision(net_config(cfg.model, args.k, len(classes)))
    loss_fn = build_loss(cfg, len(classes), deep).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    precision = resolve_precision("auto", device)
    dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "16")

    def step(batch) -> None:
        x = batch["image"].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(x)
        out = out.float()
        loss = loss_fn(list(out.unbind(1)), y) if deep and out.ndim == 5 else loss_fn(out, y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    model.train()
    it = epoch(1)
    for _ in range(2):
        step(next(it))  # warm-up (and the workers' start-up)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    n = 0
    for _ in range(args.steps):
        b = next(it)
        step(b)
        n += b["image"].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_fps = n / (time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "device": str(device),
                "precision": precision,
                "model": args.model,
                "grid": list(args.grid),
                "k": args.k,
                "batch_size": args.batch_size,
                "workers": args.workers,
                "torch_threads": torch.get_num_threads(),
                "epoch_start_s": round(start_s, 2),
                "loader_frames_per_s": round(loader_fps, 1),
                "train_frames_per_s": round(train_fps, 1),
                "loader_over_train": round(loader_fps / train_fps, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
