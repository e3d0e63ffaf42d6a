"""Malapposition distance error by true distance band, and the malapposed struts missed, from
``evaluate.py``'s ``struts_matched.csv`` (the product's strut pairs; nothing re-measured).

    python benchmarks/strut_distance_bins.py EVAL/struts_matched.csv [--edges 0 0.03 0.06 ...]

Tells a systematic error (e.g. malapposed struts read closer to the wall) from scatter around
the malapposition threshold: a strut 0.005 mm beyond it is missed by any error of that size.
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

EDGES = (-math.inf, 0.0, 0.03, 0.06, 0.09, 0.15, 0.3, math.inf)


def bands(pairs: pd.DataFrame, edges=EDGES) -> pd.DataFrame:
    """Per band of the true (manual) distance: n, bias and SD of auto - manual (mm)."""
    err = pairs["auto_distance_mm"] - pairs["manual_distance_mm"]
    band = pd.cut(pairs["manual_distance_mm"], list(edges), right=False)
    out = err.groupby(band, observed=True).agg(["count", "mean", "std"])
    return out.rename(columns={"count": "n", "mean": "bias_mm", "std": "sd_mm"})


def missed(pairs: pd.DataFrame) -> pd.DataFrame:
    """The truly malapposed struts found but read apposed."""
    m = (pairs["manual_malapposed"] == 1) & (pairs["auto_malapposed"] != 1)
    cols = ["pullback_id", "frame", "manual_distance_mm", "auto_distance_mm"]
    return pairs.loc[m, cols]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("struts_matched")
    ap.add_argument("--edges", type=float, nargs="+", help="band edges (mm), open at both ends")
    a = ap.parse_args(argv)
    df = pd.read_csv(a.struts_matched)
    pairs = df.dropna(subset=["auto_distance_mm", "manual_distance_mm"])
    edges = (-math.inf, *a.edges, math.inf) if a.edges else EDGES
    print(f"{len(pairs)} matched struts of {len(df)} rows")
    print(bands(pairs, edges).round(4).to_string())
    gone = missed(pairs)
    print(f"\nmalapposed struts read apposed: {len(gone)}")
    if len(gone):
        print(gone.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
