"""``make demo`` / ``python -m octseg.demo``: the whole product on built-in synthetic data.

Generates a small synthetic cohort, trains a small model briefly (or reuses the one a previous
run trained), runs batch inference on held-out pullbacks, evaluates the results against their
true measurements and prints where the HTML reports are. See :mod:`octseg.infer.demo`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m octseg.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo_output"), help="demo output folder")
    ap.add_argument("--retrain", action="store_true", help="train again even if a model exists")
    args = ap.parse_args(argv)
    from octseg.infer.demo import run_demo

    if args.retrain:
        (args.out / "model.ckpt").unlink(missing_ok=True)
    result = run_demo(args.out)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
