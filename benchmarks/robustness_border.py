"""Where the product puts the lumen border, suite variant by variant: the median over catheter
rays of the product's contour radius minus the expert's (pixels; negative = inside), averaged
over the frames of each variant of a ``benchmarks/robustness.py`` work folder.

    python benchmarks/robustness_border.py WORK none dim_wall-1 dim_wall-2 dim_wall-3 gamma-2

See octseg.datasets.robustness.lumen_border_offset and docs/real_data.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from octseg.datasets.robustness import lumen_border_offset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path, help="--work folder of benchmarks/robustness.py")
    p.add_argument("variants", nargs="+", help="suite pullback ids, e.g. none dim_wall-2")
    a = p.parse_args(argv)
    print("| variant | frames | border offset px, mean of frame medians | frames within 1 px |")
    print("|---|---|---|---|")
    for pid in a.variants:
        per_frame = lumen_border_offset(
            a.work / "infer" / pid / "labels.npz", a.work / "suite" / "manual" / pid / "labels.npz"
        )
        off = np.fromiter(per_frame.values(), float)
        if not off.size:
            print(f"| {pid} | 0 | no frame with lumen on both sides | |")
            continue
        print(f"| {pid} | {off.size} | {off.mean():+.2f} | {(np.abs(off) <= 1).mean():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
