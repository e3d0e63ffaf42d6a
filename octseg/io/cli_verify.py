"""``octseg verify DATASET``: check a labelled-pullback dataset and list every problem."""

from __future__ import annotations

import argparse

from octseg.io.dataset import list_pullbacks, verify_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset folder (layout: docs/dataset.md)")
    parser.add_argument(
        "--no-pixels",
        action="store_true",
        help="skip decoding every frame (faster; NaN/corrupt-frame checks are skipped)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    problems = verify_dataset(
        args.dataset, check_pixels=not args.no_pixels, progress=not args.quiet
    )
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) found in {args.dataset}")
        return 1
    print(f"OK: {len(list_pullbacks(args.dataset))} pullback(s) in {args.dataset}")
    return 0
