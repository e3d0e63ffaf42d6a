"""What the network sees of a lesion it misses: the frames on its net grid, with the truth's
outline, beside each checkpoint's calcium probability (TTA as ``infer.py`` runs it).

    python benchmarks/missed_lesion_figure.py --input POOL/inputs/d1-v0 \
        --manual POOL/manual/d1-v0 --frames 6 10 14 28 \
        --checkpoint stent42=RUN/last.ckpt --out docs/images/missed_lesion.png

Prints, per frame and checkpoint, the mean and maximum calcium probability inside the truth.
The crop is the bounding box, on the net grid, of the truth region most shown frames touch,
widened by a margin (calcium elsewhere in a frame stays outside it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from octseg.core.classes import CALCIUM
from octseg.io import read_pullback
from octseg.io.labels import load_labels
from octseg.model.grid import cartesian_to_net_grid, to_net_grid
from octseg.model.predictor import PredictOptions, Predictor
from octseg.model.shipped import checkpoint_files


def truth_on_grid(manual: Path, frames: list[int], net_grid: dict) -> torch.Tensor:
    """The truth's calcium of ``frames`` on the net grid, bool (F, A', R')."""
    lf = load_labels(manual / "labels.npz")
    ca = torch.from_numpy((lf.labels[frames] == CALCIUM).astype(np.float32))
    if lf.space == "polar":
        return to_net_grid(ca, lf.pixel_spacing_mm, net_grid) > 0.5
    return cartesian_to_net_grid(ca, lf.pixel_spacing_mm, net_grid, lf.center) > 0.5


def calcium_probability(
    predictor: Predictor, pullback, frames: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames on the net grid (F, A', R') and the calcium probability there."""
    grid = predictor.to_grid(pullback)
    x = predictor.network_inputs(grid, 0, pullback.n_frames)[frames]
    p = predictor.probabilities(x)[:, predictor.classes.index(CALCIUM)]
    return grid[frames].float(), p


def crop(truth: torch.Tensor, margin: int = 12) -> tuple[slice, slice]:
    """A-line and sample ranges around the lesion: of the connected regions of every frame's
    truth (projected over frames), the one most frames touch (ties: the larger), widened by
    ``margin`` (4x in depth); calcium of a frame elsewhere stays out of the crop. The whole
    grid without truth."""
    from scipy import ndimage

    regions, n = ndimage.label(truth.any(0).numpy())
    if n == 0:
        return slice(None), slice(None)
    shown = np.zeros(n + 1, int)  # frames that touch each region
    for frame in truth.numpy():
        shown[np.unique(regions[frame])] += 1
    size = np.bincount(regions.ravel(), minlength=n + 1)
    k = max(range(1, n + 1), key=lambda i: (shown[i], size[i]))
    sa, sr = ndimage.find_objects(regions)[k - 1]
    n_a, n_r = truth.shape[1:]
    return (
        slice(max(0, sa.start - margin), min(n_a, sa.stop + margin)),
        slice(max(0, sr.start - 4 * margin), min(n_r, sr.stop + 4 * margin)),
    )


def inside(p: torch.Tensor, truth: torch.Tensor) -> tuple[float | None, float | None]:
    """Mean and maximum of ``p`` inside ``truth`` (None without truth)."""
    if not truth.any():
        return None, None
    return float(p[truth].mean()), float(p[truth].max())


def figure(images, probs: dict[str, torch.Tensor], truth, frames, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sa, sr = crop(truth)
    rows = 1 + len(probs)
    fig, axes = plt.subplots(rows, len(frames), figsize=(2.6 * len(frames), 3.2 * rows))
    axes = np.asarray(axes).reshape(rows, len(frames))
    panels = [("image", images, "gray", None)] + [(n, p, "magma", (0, 1)) for n, p in probs.items()]
    for i, f in enumerate(frames):
        for j, (name, arr, cmap, lim) in enumerate(panels):
            ax = axes[j, i]
            v = (0, 1) if lim else (None, None)
            ax.imshow(arr[i][sa, sr].T.numpy(), cmap=cmap, vmin=v[0], vmax=v[1], aspect="auto")
            ax.contour(truth[i][sa, sr].T.numpy().astype(float), [0.5], colors="c", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"frame {f}" if j == 0 else f"{name}: P(calcium)", fontsize=8)
    axes[0, 0].set_ylabel("depth (net-grid samples) →", fontsize=8)
    fig.suptitle("net grid (A-lines across, depth down); cyan: the truth's calcium", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, required=True, help="the pullback infer.py reads")
    ap.add_argument("--manual", type=Path, required=True, help="folder with its labels.npz")
    ap.add_argument("--frames", type=int, nargs="+", required=True)
    ap.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        help="NAME=PATH (PATH: a checkpoint, or a shipped model's or ensemble's name)",
    )
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    pullback = read_pullback(a.input)
    probs, truth, images, grid = {}, None, None, None
    for spec in a.checkpoint:
        name, _, path = spec.partition("=")
        opts = PredictOptions(device="cpu", tta_rolls=4, tta_flip=True)
        files = [str(f) for f in checkpoint_files([path])]  # a shipped name: its files
        pr = Predictor.from_checkpoint(files if len(files) > 1 else files[0], opts)
        if grid is not None and pr.net_grid != grid:
            ap.error(f"{name}: another net grid than the first checkpoint's ({pr.net_grid})")
        grid = pr.net_grid
        images, probs[name] = calcium_probability(pr, pullback, a.frames)
        truth = truth_on_grid(a.manual, a.frames, grid)
        for i, f in enumerate(a.frames):
            mean, top = inside(probs[name][i], truth[i])
            said = (
                "no truth" if mean is None else f"P(calcium) inside: mean {mean:.3f}, max {top:.3f}"
            )
            print(f"{name} frame {f}: truth samples {int(truth[i].sum())}, {said}")
    figure(images, probs, truth, a.frames, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
