"""Training's pictures and logs: the TensorBoard log of a run (:class:`TensorBoardLog`, with
[image | label | prediction] overlay panels) and the training curves of a run folder's
``metrics.json`` as a PNG (for docs and reports).

python -m octseg.report.training RUN_DIR OUT.png
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from octseg.core import atomic


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


def _panels(img: np.ndarray, lab: np.ndarray, prd: np.ndarray) -> np.ndarray:
    """[image | label | prediction] side by side."""
    zero = np.zeros_like(lab)
    return np.concatenate([overlay(img, zero), overlay(img, lab), overlay(img, prd)], axis=1)


def overlay_panels(
    image: torch.Tensor, label: torch.Tensor, pred: torch.Tensor, classes: list[int], spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """(polar, Cartesian) RGB panels [image | label | prediction] for TensorBoard; ``label`` and
    ``pred`` are channel maps (indices into ``classes``)."""
    from octseg.core.polar import polar_to_cartesian

    lut = torch.tensor(classes, dtype=torch.uint8)
    lab = lut[label.long().cpu()]
    prd = lut[pred.long().cpu()]
    img = image.float().cpu()
    polar = _panels(img.numpy(), lab.numpy(), prd.numpy())
    n = 2 * img.shape[-1]
    kw = {"out_size": (n, n), "polar_spacing_mm": spacing, "cart_spacing_mm": spacing}
    ci = polar_to_cartesian(img[None], **kw)[0]
    cl, cp = polar_to_cartesian(torch.stack([lab, prd]), mode="nearest", **kw)
    return polar, _panels(ci.numpy(), cl.numpy(), cp.numpy())


class TensorBoardLog:
    """A run's TensorBoard events (``<run>/tensorboard``): the step loss every ``log_every``
    steps, the epoch's training scalars, validation metrics and overlay panels."""

    def __init__(self, log_dir: str | Path, log_every: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))
        self.log_every = int(log_every)

    def step_loss(self, loss: torch.Tensor, step: int) -> None:
        if step % self.log_every == 0:
            self.writer.add_scalar("train/loss_step", float(loss.detach()), step)

    def epoch(self, record: dict[str, Any], epoch: int) -> None:
        """``train_loss``, ``lr``, ``frames_per_s`` (and ``distill_loss``) of an epoch record."""
        self.writer.add_scalar("train/loss", record["train_loss"], epoch)
        self.writer.add_scalar("train/lr", record["lr"], epoch)
        self.writer.add_scalar("train/frames_per_s", record["frames_per_s"], epoch)
        if "distill_loss" in record:
            self.writer.add_scalar("train/distill_loss", record["distill_loss"], epoch)

    def validation(
        self,
        metrics: dict[str, float],
        kept: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        classes: list[int],
        spacing: float,
        epoch: int,
    ) -> None:
        """Defined validation metrics as ``val/*`` scalars; the kept (image, label, prediction)
        samples as polar and Cartesian panels."""
        for key, value in metrics.items():
            if not math.isnan(value):
                self.writer.add_scalar(f"val/{key}", value, epoch)
        for i, (img, lab, prd) in enumerate(kept):
            polar, cart = overlay_panels(img, lab, prd, classes, spacing)
            self.writer.add_image(f"val_polar/{i}", polar, epoch, dataformats="HWC")
            self.writer.add_image(f"val_cartesian/{i}", cart, epoch, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def plot_curves(run_dir: str | Path, out_png: str | Path) -> None:
    """Loss (train, validation) and validation Dice / strut F1 per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = json.loads((Path(run_dir) / "metrics.json").read_text())
    ep = [h["epoch"] for h in hist]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(ep, [h["train_loss"] for h in hist], "o-", label="train loss")
    if any("val/loss" in h for h in hist):
        ax1.plot(
            [h["epoch"] for h in hist if "val/loss" in h],
            [h["val/loss"] for h in hist if "val/loss" in h],
            "o-",
            label="val loss",
        )
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("Dice + CE loss")
    ax1.legend()
    for key, label in (
        ("val/dice_lumen", "Dice lumen"),
        ("val/dice_calcium", "Dice calcium"),
        ("val/dice_guidewire", "Dice guidewire"),
        ("val/strut_f1", "strut F1"),
    ):
        pts = [(h["epoch"], h[key]) for h in hist if h.get(key) is not None]
        if pts:
            ax2.plot(*zip(*pts), "o-", label=label)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation (held-out pullbacks)")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(out_png, buf.getvalue())


if __name__ == "__main__":
    plot_curves(sys.argv[1], sys.argv[2])
