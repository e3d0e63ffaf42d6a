"""``make demo`` / ``python -m octseg.demo``: the main job on built-in synthetic data.

For now: generate a small synthetic cohort (preset ``small``) into ``demo_output/cohort`` and
print what was made. A second run reuses the cohort when it was made with the same settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_DIR = Path("demo_output")
DEMO_N = 6
DEMO_SEED = 0
DEMO_PRESET = "small"


def make_cohort(out: Path, n: int = DEMO_N, seed: int = DEMO_SEED, preset: str = DEMO_PRESET):
    """The demo cohort in ``out``: generated, or reused when ``out/synth.json`` matches."""
    from octseg.synth.cohort import (
        PullbackResult,
        cohort_spec,
        describe_cohort,
        generate_cohort,
        grid_from,
        load_spec,
    )
    from octseg.synth.params import PullbackParams

    grid = grid_from(preset)
    want = cohort_spec(n, seed, grid, "npz", False, None)
    have = load_spec(out)
    if have == want and all(
        (out / pid / "truth" / "summary.json").is_file() for pid in want["ids"]
    ):
        import json

        from octseg.measurements import read_csv, read_summary

        results = []
        for pid in want["ids"]:
            d = out / pid
            params = PullbackParams.from_dict(json.loads((d / "params.json").read_text()))
            results.append(
                PullbackResult(
                    params,
                    read_csv(d / "truth" / "frames.csv"),
                    read_csv(d / "truth" / "struts.csv"),
                    read_summary(d / "truth" / "summary.json"),
                )
            )
        print(f"reusing the synthetic cohort in {out} (same settings; delete it to regenerate)")
        print(describe_cohort(out, results))
        return out
    print(f"generating {n} synthetic pullbacks (preset {preset}, seed {seed}) into {out}")
    generate_cohort(out, n, seed, grid, log=print)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m octseg.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEMO_DIR, help="demo output folder")
    args = ap.parse_args(argv)
    make_cohort(args.out / "cohort")
    return 0


if __name__ == "__main__":
    sys.exit(main())
