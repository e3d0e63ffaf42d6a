"""Per-draw calcium Dice and arc bias of scored runs, side by side (a figure for the docs).

    python benchmarks/pool_draws_figure.py benchmarks/results/hybrid_pool_s43_rule21_pool8.json \
        --runs v1 rfdv ens_v1_rfdv --out docs/images/pool8_draws_s43.png

Reads the JSON that ``benchmarks/hybrid_pool.py score`` writes (run -> {"pooled", draw, ...} ->
evaluate.py's summary) and draws, for each draw and the pool, the mean calcium Dice per pullback
and the calcium arc bias of each run; the issue's targets (Dice 0.75, |bias| 5 deg) as lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* beside octseg

from benchmarks.hybrid_strata import dice_arc_bars  # noqa: E402


def draw_values(results: dict, runs: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Draw names (the pool last), Dice and arc bias as (run, draw) arrays."""
    missing = [r for r in runs if r not in results]
    if missing:
        raise SystemExit(f"runs not in the results: {missing} (there: {sorted(results)})")
    draws = [d for d in results[runs[0]] if d != "pooled"] + ["pooled"]
    for r in runs:
        lacking = [d for d in draws if d not in results[r]]
        if lacking:
            raise SystemExit(f"run {r!r} lacks draws {lacking}")
    dice = np.array([[results[r][d]["calcium_dice"] for d in draws] for r in runs], float)
    arc = np.array([[results[r][d]["calcium_arc"]["bias"] for d in draws] for r in runs], float)
    return draws, dice, arc


def figure(draws: list[str], runs: list[str], dice: np.ndarray, arc: np.ndarray, out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes, x = dice_arc_bars(runs, dice, arc, figsize=(9, 6))
    axes[0].axhline(0.75, color="k", ls="--", lw=1, label="target 0.75")
    axes[0].set_ylabel("calcium Dice (mean per pullback)")
    axes[0].set_ylim(0, 1)
    for y in (-5, 5):
        axes[1].axhline(y, color="k", ls="--", lw=1)
    axes[1].axhline(0, color="grey", lw=0.5)
    axes[1].set_ylabel("calcium arc bias (deg)")
    axes[1].set_xticks(x, draws)
    axes[0].legend(fontsize=8, ncol=len(runs) + 1)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="hybrid_pool.py score --out JSON")
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    draws, dice, arc = draw_values(json.loads(args.results.read_text()), args.runs)
    figure(draws, args.runs, dice, arc, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
