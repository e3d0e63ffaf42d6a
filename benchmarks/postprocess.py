"""Benchmark of the anatomical post-processing of predicted labels (octseg/model/postprocess.py).

    .venv/bin/python benchmarks/postprocess.py [--frames 32] [--specks 5] [--repeat 3]
        [--threads 1] [--device cpu] [--calcium-rules] [--json PATH]

Frames/s of ``postprocess_labels`` (each lumen contour rule: ``first_wall``, the baseline, and
``smooth``, the default) on the label maps of ``benchmarks/geometry.py`` (1024x1024
Cartesian, 504x968 polar; elliptic lumen, calcium, guidewire shadow, struts) with ``--specks``
non-lumen specks in every lumen and a lumen ring beyond the wall in every other frame (what it
has to repair), and the share of pixels it changed. ``--calcium-rules`` adds ``--specks``
calcium specks (3x3 pixels) in the tissue of every frame and measures, with the ``smooth``
contour, the calcium rules of ``experiment=hybrid`` models (minimum area 0.1 mm², minimum
length 0.4 mm at 0.2 mm frames) without and with ``calcium_track_frames=3``
(octseg/model/track.py), ``calcium_frame_vote=3`` (octseg/model/frame_vote.py) or
``calcium_outer_median=3`` (octseg/model/outer_median.py), against the contour alone in the same run. Writes JSON (default
``benchmarks/results/postprocess_<device>.json``, with ``--calcium-rules``
``postprocess_calcium_<device>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* beside octseg

from benchmarks.geometry import make_frames  # noqa: E402
from octseg.core.atomic import write_text
from octseg.core.classes import BACKGROUND, CALCIUM, LUMEN
from octseg.model.postprocess import postprocess_labels

HERE = Path(__file__).resolve().parent


def dirty_frames(n: int, space: str, specks: int) -> tuple[np.ndarray, float, tuple | None]:
    labels, ps = make_frames(n, space, specks=specks)
    h, w = labels.shape[1:]
    if space == "cartesian":
        c = ((h - 1) / 2, (w - 1) / 2)
        i, j = np.mgrid[0:h, 0:w]
        r = np.hypot(i - c[0], j - c[1]) * ps
    else:
        c = None
        r = np.broadcast_to(np.arange(w) * ps, (h, w))
    ring = (r > 2.3) & (r < 2.45)  # beyond every lumen of make_frames (<= 2.2 mm)
    labels[::2][:, ring] = LUMEN
    return labels, ps, c


CALCIUM_RULES = {"calcium_min_area_mm2": 0.1, "calcium_min_length_mm": 0.4}
VARIANTS = {  # name -> (lumen contour, calcium rules)
    "first_wall": ("first_wall", {}),
    "smooth": ("smooth", {}),
    "smooth+calcium": ("smooth", CALCIUM_RULES),
    "smooth+calcium+track3": ("smooth", {**CALCIUM_RULES, "calcium_track_frames": 3}),
    "smooth+calcium+vote3": ("smooth", {**CALCIUM_RULES, "calcium_frame_vote": 3}),
    "smooth+calcium+outer3": ("smooth", {**CALCIUM_RULES, "calcium_outer_median": 3}),
}


def calcium_specks(labels: np.ndarray, n: int, seed: int = 0) -> None:
    """``n`` calcium specks (3x3 pixels) on tissue pixels of every frame, in place."""
    rng = np.random.default_rng(seed)
    for lab in labels:
        ys, xs = np.nonzero(lab[1:-1, 1:-1] == BACKGROUND)
        for k in rng.choice(len(ys), size=min(n, len(ys)), replace=False):
            lab[ys[k] : ys[k] + 3, xs[k] : xs[k] + 3] = CALCIUM


def bench(space: str, args, variant: str) -> dict:
    labels, ps, c = dirty_frames(args.frames, space, args.specks)
    if args.calcium_rules:
        calcium_specks(labels, args.specks)
    rule, calcium = VARIANTS[variant]
    kw = {
        "device": args.device,
        "settings": {"lumen_contour": rule, **calcium},
        "frame_spacing_mm": 0.2,
    }
    postprocess_labels(labels[:2].copy(), space, ps, c, **kw)  # warm-up
    rates, changed = [], 0.0
    for _ in range(args.repeat):
        work = labels.copy()
        t0 = time.perf_counter()
        postprocess_labels(work, space, ps, c, **kw)
        rates.append(args.frames / (time.perf_counter() - t0))
        changed = float((work != labels).mean())
    return {
        "variant": variant,
        "lumen_contour": rule,
        "space": space,
        "shape": list(labels.shape[1:]),
        "frames": args.frames,
        "specks": args.specks,
        "best_fps": max(rates),
        "median_fps": statistics.median(rates),
        "changed_pixel_fraction": changed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--specks", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--calcium-rules", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = (
        [
            "smooth",
            "smooth+calcium",
            "smooth+calcium+track3",
            "smooth+calcium+vote3",
            "smooth+calcium+outer3",
        ]
        if args.calcium_rules
        else [
            "first_wall",  # the baseline first, in the same run
            "smooth",
        ]
    )
    rows = [bench(space, args, name) for space in ("cartesian", "polar") for name in names]
    print(
        f"postprocess benchmark  torch {torch.__version__}  {platform.machine()} x{os.cpu_count()}"
    )
    print(f"load average {os.getloadavg()}  threads {args.threads}  device {args.device}")
    print(
        f"{'space':<10} {'frame':<10} {'variant':<22} {'best f/s':>9} {'median':>8}"
        f" {'vs ' + names[0]:>13} {'changed px':>11}"
    )
    base = {r["space"]: r["median_fps"] for r in rows if r["variant"] == names[0]}
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        r[f"median_vs_{names[0]}"] = ratio = r["median_fps"] / base[r["space"]]
        print(
            f"{r['space']:<10} {shape:<10} {r['variant']:<22} {r['best_fps']:>9.1f}"
            f" {r['median_fps']:>8.1f} {ratio:>12.2f}x"
            f" {100 * r['changed_pixel_fraction']:>10.2f}%"
        )
    stem = "postprocess_calcium" if args.calcium_rules else "postprocess"
    out = Path(args.json or HERE / "results" / f"{stem}_{args.device.split(':')[0]}.json")
    meta = {"load_average": os.getloadavg(), "threads": args.threads, "torch": torch.__version__}
    write_text(out, json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
