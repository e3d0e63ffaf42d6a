"""Training curves from a run folder's ``metrics.json`` as a PNG (for docs and reports).

python -m octseg.report.training RUN_DIR OUT.png
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from octseg.core import atomic


def plot_curves(run_dir: str | Path, out_png: str | Path) -> None:
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
