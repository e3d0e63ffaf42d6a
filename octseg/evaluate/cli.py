"""``octseg evaluate``: agreement of automated with manual measurements (same job as
``python evaluate.py``; settings in :class:`~octseg.evaluate.settings.EvaluationSettings`, formats in ``docs/evaluation.md``).

    octseg evaluate --auto RESULTS --manual MANUAL --out OUT [--strut-tolerance-mm 0.1] ...
    octseg evaluate --self-check DATASET --out OUT [--noise 1.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--auto",
        type=Path,
        help="automated results: inference output folder (one sub-folder per pullback with "
        "frames.csv/struts.csv/summary.json or labels.npz), or a cohort folder",
    )
    p.add_argument(
        "--manual",
        type=Path,
        help="manual measurements: folder with manual_frames.csv / manual_lesions.csv / "
        "manual_struts.csv and/or pullback folders with labels.npz",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--self-check",
        type=Path,
        metavar="DATASET",
        help="evaluate a synthetic cohort's truth against itself with noise added (see docs)",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=1.0,
        help="self-check noise scale (1.0 = default noise levels; 0 = identical)",
    )
    p.add_argument("--strut-tolerance-mm", type=float, default=None, help="default 0.1")
    p.add_argument("--strut-angle-tolerance-deg", type=float, default=None, help="default 5")
    p.add_argument("--frame-tolerance", type=float, default=None, help="frames; default 0.5")
    p.add_argument("--lesion-min-overlap-frames", type=float, default=None, help="default 1")
    p.add_argument("--frame-spacing-mm", type=float, default=None, help="override the spacing")
    p.add_argument(
        "--auto-source",
        choices=["auto", "tables", "labels", "truth"],
        default=None,
        help="what to read from automated pullback folders (default: tables, else labels.npz "
        "measured on the fly, else truth/)",
    )
    p.add_argument(
        "--n-bootstrap", type=int, default=None, help="resamples of the per-pair MAE CI; 2000"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the per-pair MAE CI; 0")
    p.add_argument("--classes", type=int, nargs="+", default=None, help="default 1 2 3 4")
    p.add_argument("--no-segmentation", action="store_true", help="skip overlap metrics")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--device", default=None, help="device for measuring label files (cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for key in (
        "strut_tolerance_mm",
        "strut_angle_tolerance_deg",
        "frame_tolerance",
        "lesion_min_overlap_frames",
        "frame_spacing_mm",
        "auto_source",
        "n_bootstrap",
        "seed",
        "classes",
        "device",
    ):
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    if args.no_segmentation:
        d["segmentation"] = False
    if args.no_plots:
        d["plots"] = False
    if args.quiet:
        d["progress"] = False
    return d


def run(args: argparse.Namespace) -> int:
    from octseg.core.errors import InputError
    from octseg.evaluate import evaluate
    from octseg.report.evaluation import print_summary

    settings = settings_from_args(args)
    if args.self_check is not None:
        from octseg.evaluate.selfcheck import self_check

        result = self_check(args.self_check, args.out, noise=args.noise, settings=settings)
    else:
        if args.auto is None or args.manual is None:
            raise InputError(None, "give --auto and --manual (or --self-check DATASET)")
        result = evaluate(args.auto, args.manual, args.out, settings)
    print_summary(result.metrics)
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0
