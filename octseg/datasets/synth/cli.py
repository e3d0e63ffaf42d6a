"""``octseg synth OUT --n N --seed S [--preset small] [--image-format npz|dicom] [--cartesian]
[--lipid]``"""

from __future__ import annotations

import argparse

from octseg.datasets.synth.params import PRESETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output folder (the dataset layout of docs/dataset.md)")
    p.add_argument("--n", type=int, default=6, help="number of pullbacks (default 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="frame/pullback size: 'default' (504 A-lines x 968 samples, 270 frames) or "
        "'small' (128 x 160, 96 frames; tests and CPU training)",
    )
    p.add_argument("--n-alines", type=int, help="A-lines per frame (overrides the preset)")
    p.add_argument("--n-samples", type=int, help="samples per A-line (overrides the preset)")
    p.add_argument("--pixel-spacing", type=float, help="mm per depth sample (overrides the preset)")
    p.add_argument("--n-frames", type=int, help="frames per pullback (overrides the preset)")
    p.add_argument("--frame-spacing", type=float, help="mm between frames (overrides the preset)")
    p.add_argument(
        "--image-format",
        choices=("npz", "dicom"),
        default="npz",
        help="image.npz (octseg image npz, default) or image.dcm (IVOCT DICOM, For Processing)",
    )
    p.add_argument(
        "--cartesian",
        action="store_true",
        help="also write image_cartesian.npz and labels_cartesian.npz",
    )
    p.add_argument(
        "--cartesian-size",
        type=int,
        help="Cartesian frame size in pixels (default min(1024, 2 * samples))",
    )
    p.add_argument(
        "--lipid",
        action="store_true",
        help="give every pullback a lipid core under a fibrous cap (classes 6 and 5), with exact "
        "truth; thin (TCFA) caps in even pullbacks. Off by default",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from octseg.datasets.synth.cohort import generate_cohort, grid_from

    grid = grid_from(
        args.preset,
        n_alines=args.n_alines,
        n_samples=args.n_samples,
        pixel_spacing_mm=args.pixel_spacing,
        n_frames=args.n_frames,
        frame_spacing_mm=args.frame_spacing,
    )
    generate_cohort(
        args.out,
        args.n,
        args.seed,
        grid,
        image_format=args.image_format,
        cartesian=args.cartesian,
        cart_size=args.cartesian_size,
        lipid=args.lipid,
        progress=not args.quiet,
        log=print,
    )
    return 0
