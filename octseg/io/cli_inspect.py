"""``octseg inspect FILE [--json]``: what the readers understand of an image file or folder.

Prints only non-identifying values (never patient name, ID, birth date, accession number...).
"""

from __future__ import annotations

import argparse
import json

from octseg.io import read_pullback, readers

JSON_KEYS = (
    "format",
    "sop_class_uid",
    "space",
    "frames",
    "height",
    "width",
    "pixel_spacing_mm",
    "frame_spacing_mm",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="image file or folder (DICOM, .npz, TIFF, PNG/TIFF folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--format", choices=sorted(readers()), help="force a reader")
    parser.add_argument("--pixel-spacing-mm", type=float, help="pixel spacing (mm) if not recorded")
    parser.add_argument("--frame-spacing-mm", type=float, help="frame spacing (mm) if not recorded")
    parser.add_argument(
        "--allow-unusual-spacing",
        action="store_true",
        help="accept a recorded spacing outside the plausible IVOCT range (docs/io.md)",
    )


def describe(path: str, **kwargs) -> dict:
    pb = read_pullback(path, **kwargs)
    info = pb.describe()
    info.setdefault("sop_class_uid", None)
    ordered = {k: info[k] for k in JSON_KEYS}
    ordered.update({k: v for k, v in info.items() if k not in ordered})
    return ordered


def run(args: argparse.Namespace) -> int:
    info = describe(
        args.path,
        pixel_spacing_mm=args.pixel_spacing_mm,
        frame_spacing_mm=args.frame_spacing_mm,
        format=args.format,
        allow_unusual_spacing=args.allow_unusual_spacing,
    )
    if args.json:
        print(json.dumps(info, default=str))
    else:
        width = max(len(k) for k in info)
        for key, val in info.items():
            if isinstance(val, dict):
                val = ", ".join(f"{k}: {v}" for k, v in val.items())
            print(f"{key:<{width}}  {val}")
    return 0
