"""``octseg measure LABELS.npz --out DIR``: clinical metrics of a label file.

Writes ``DIR/frames.csv``, ``DIR/struts.csv`` and ``DIR/summary.json`` atomically (columns in
:mod:`octseg.geometry.tables`, definitions in ``docs/metrics.md``).
"""

from __future__ import annotations

import argparse
import json
import sys

from octseg.core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", nargs="?", help="label file (.npz, schema v1)")
    parser.add_argument("--out", help="output folder (required with LABELS)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument(
        "--config",
        help="geometry settings YAML: any subset of the keys --print-defaults lists "
        "(the others keep their defaults)",
    )
    parser.add_argument(
        "--print-defaults",
        action="store_true",
        help="print every geometry setting with its default as YAML (a template for --config)",
    )
    parser.add_argument("--stent-model", help="stent model for the malapposition threshold")
    parser.add_argument("--chunk-frames", type=int, default=64, help="frames per batch")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (default 1: the geometry is memory-bound and already fast on "
        "one core, and more threads can be many times slower on a busy machine; 0 = torch's "
        "default, all cores)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar / summary print")
    parser.add_argument(
        "--allow-unusual-spacing",
        action="store_true",
        help="accept a label file's spacing outside the plausible IVOCT range (docs/io.md)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from octseg.geometry.measure import measure_labels
    from octseg.geometry.settings import GeometrySettings
    from octseg.io.labels import load_labels

    if args.print_defaults:
        import yaml

        print(yaml.safe_dump(GeometrySettings().to_dict(), sort_keys=False), end="")
        return 0
    if not args.labels or not args.out:
        raise InputError(None, "octseg measure needs a label file and --out DIR")
    settings = GeometrySettings.from_yaml(args.config) if args.config else GeometrySettings()
    if args.stent_model:
        settings.stent_model = args.stent_model
        settings.validate(args.config)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, f"--device {args.device}: CUDA is not available on this machine")
    try:
        torch.device(args.device)
    except RuntimeError as exc:
        raise InputError(None, f"--device {args.device}: {exc}") from None
    if args.threads < 0:
        raise InputError(None, f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    lf = load_labels(args.labels, allow_unusual_spacing=args.allow_unusual_spacing)
    m = measure_labels(
        lf,
        settings,
        device=args.device,
        chunk_frames=args.chunk_frames,
        progress=not args.quiet,
    )
    paths = m.write(args.out)
    if not args.quiet:
        from octseg.geometry.tables import clean_json

        print(json.dumps(clean_json(m.summary), indent=2))
        print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
