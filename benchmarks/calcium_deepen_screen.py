"""Screen (not a verdict): would growing calcium *outward along its own A-lines* into samples of
lower calcium probability read thick calcium less thin?

Session 56 (docs/calcium_candidates.md): calcium thicker than 0.9 mm reads 0.24 mm thin on the
48 fresh hybrid draws (0.27-0.38 mm where it reaches past 2.5 mm from the catheter). The arc extension (:mod:`octseg.model.extend`) grows lesions only onto
A-lines without calcium, so it never thickens. This screen applies the radial analogue, a
hysteresis along the depth axis, on the net grid of a model's probabilities:

- a tissue (background) sample joins when its calcium probability is >= ``low`` and the run of
  such samples, walking back toward the catheter, ends on calcium (the argmax's, after the arc
  extension at ``--extend``, in components of at least ``--seed-mm2``);

and compares, per frame with calcium on both sides, the net-grid thickness (the
most calcium samples on any A-line times the sample step; *not* the product's ray measurement,
so the screen ranks thresholds and does not score them) against the truth's at several ``low``.
No test-time augmentation (one pass per frame, to keep it cheap).

    python benchmarks/calcium_deepen_screen.py --inputs IN --manual MANUAL \
        --frames EVAL/frames_matched.csv --checkpoint octseg-calcium-v2 --out SCREEN.csv

``IN``: the pullback inputs ``infer.py`` read; ``MANUAL``: their Cartesian truth folders
(``labels.npz``, every frame of the pullback, numbered from 0);
``--frames``: an ``evaluate.py`` ``frames_matched.csv`` of the same pullbacks (which frames have
calcium on either side); ``--pullbacks``: a prefix filter (e.g. ``f44,f45``). Prints, for each
``low``, the ICC(A,1) against the truth and the mean error by truth-thickness band.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.core.errors import InputError
from octseg.evaluate.stats import icc_absolute_agreement
from octseg.io import read_pullback
from octseg.io.labels import load_labels
from octseg.model.extend import extend_calcium
from octseg.model.grid import cartesian_to_net_grid
from octseg.model.postprocess import large_components
from octseg.model.predictor import Predictor
from octseg.model.shipped import files_of

LOWS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
BANDS = [0, 0.3, 0.6, 0.9, 1.2, 5]  # truth bands of the printout (net-grid counts reach > 1.2)


def deepen(probs, arg, *, calcium, background, low, seeds):
    """Samples ``(B, A, R)`` that join ``seeds`` outward along their A-line (module docstring)."""
    free = (probs[:, calcium] >= low) & (arg == background)
    depth = torch.arange(arg.shape[-1], device=arg.device).expand_as(arg)
    last_stop, _ = torch.cummax(torch.where(free, -1, depth), dim=-1)
    return free & torch.gather(seeds, -1, last_stop.clamp(min=0)) & (last_stop >= 0)


def frame_rows(pred, pullback, truth, frames, args):
    """One row per frame: the truth's and each ``low``'s net-grid thickness (mm)."""
    ca, bg = pred.classes.index(CALCIUM), pred.classes.index(BACKGROUND)
    sp = pred.net_grid["spacing_mm"]
    grid = pred.to_grid(pullback)
    for f, t in zip(frames, truth, strict=True):
        pr = pred.probabilities(pred.network_inputs(grid, f, f + 1))
        arg = pr.argmax(1)
        seeds = large_components(arg == ca, sp, args.seed_mm2)
        ext = extend_calcium(pr, arg, calcium=ca, background=bg, low=args.extend, seeds=seeds)
        arg, seeds = torch.where(ext, ca, arg), seeds | ext
        row = {"frame": f, "truth": float((t == CALCIUM).sum(-1).max()) * sp}
        for low in LOWS:
            m = arg == ca
            if low:
                m = m | deepen(pr, arg, calcium=ca, background=bg, low=low, seeds=seeds)
            row[f"low_{low}"] = float(m[0].sum(-1).max()) * sp
        yield row


def summary(d: pd.DataFrame) -> None:
    """ICC and banded mean error of each ``low`` over frames with calcium on both sides."""
    true = d[d.truth > 0]
    for col in [c for c in d.columns if c.startswith("low_")]:
        x = true[true[col] > 0]
        err = (x[col] - x.truth).groupby(pd.cut(x.truth, BANDS), observed=False).mean()
        bands = " ".join(f"{b}: {v:+.3f}" for b, v in err.items())
        agreement = icc_absolute_agreement(x[col].values, x.truth.values)["icc"]
        print(f"{col}: n {len(x)}, ICC {agreement:.3f}; {bands}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", required=True)
    p.add_argument("--manual", required=True)
    p.add_argument("--frames", required=True)
    p.add_argument("--checkpoint", default="octseg-calcium-v2")
    p.add_argument("--pullbacks", default="")
    p.add_argument("--extend", type=float, default=0.15)
    p.add_argument("--seed-mm2", type=float, default=0.1)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    pred = Predictor.from_checkpoint(files_of([args.checkpoint]), device="cpu", amp=False)
    d = pd.read_csv(args.frames)
    d = d[(d.manual_calcium_arc_deg > 0) | (d.auto_calcium_arc_deg > 0)]
    if args.pullbacks:
        d = d[d.pullback_id.str.startswith(tuple(args.pullbacks.split(",")))]
    rows = []
    for pb, frames in d.groupby("pullback_id").frame:
        man = load_labels(f"{args.manual}/{pb}/labels.npz")
        if man.space != "cartesian":
            raise InputError(f"{args.manual}/{pb}", "the screen reads Cartesian truth only")
        lab = torch.from_numpy(man.labels[frames.values].astype(np.int64))
        truth = cartesian_to_net_grid(lab, man.pixel_spacing_mm, pred.net_grid, man.center)
        pullback = read_pullback(f"{args.inputs}/{pb}")
        for row in frame_rows(pred, pullback, truth.numpy(), [int(f) for f in frames], args):
            rows.append({"pullback_id": pb, **row})
    out = pd.DataFrame(rows)
    out.to_csv(args.out, index=False)
    summary(out)


if __name__ == "__main__":
    main()
