"""Malapposition distance error by true distance band, and the malapposed struts missed, from
``evaluate.py``'s ``struts_matched.csv`` (the product's strut pairs; nothing re-measured).

    python benchmarks/strut_distance_bins.py EVAL/struts_matched.csv [--edges 0 0.03 0.06 ...]

Tells a systematic error (e.g. malapposed struts read closer to the wall) from scatter around
the malapposition threshold: a strut 0.005 mm beyond it is missed by any error of that size.
With ``frames_matched.csv`` beside it (or ``--frames``), each band's bias is split into two parts,
bias = ``lumen_mm`` - ``strut_mm`` (docs/metrics.md: distance = ``rho_L(phi) - |p - c|`` about the
lumen centroid ``c``): the strut's (``strut_mm``: how much farther out the automated strut point
lies than the manual one, both about the manual lumen centroid) and the lumen's (``lumen_mm``:
the rest: the automated contour behind the strut against the manual one, the automated
centroid's shift, and the small change of the contour radius with the strut's angle where the
two strut points differ in angle). A short read with ``strut_mm`` near 0 is the lumen's, not the
strut detection's. Only frames read on both sides with one manual centroid are used; pairs on
other frames are counted (``n_split``) and left out of the two parts.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

EDGES = (-math.inf, 0.0, 0.03, 0.06, 0.09, 0.15, 0.3, math.inf)


def _band(pairs: pd.DataFrame, edges) -> pd.Series:
    """Each pair's band of the true (manual) distance, closed on the left."""
    return pd.cut(pairs["manual_distance_mm"], list(edges), right=False)


def bands(pairs: pd.DataFrame, edges=EDGES) -> pd.DataFrame:
    """Per band of the true (manual) distance: n, bias and SD of auto - manual (mm)."""
    err = pairs["auto_distance_mm"] - pairs["manual_distance_mm"]
    out = err.groupby(_band(pairs, edges), observed=True).agg(["count", "mean", "std"])
    return out.rename(columns={"count": "n", "mean": "bias_mm", "std": "sd_mm"})


def split_bias(pairs: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` with ``strut_mm`` and ``lumen_mm`` (module docstring), the manual lumen centroid
    of each frame from ``frames_matched.csv`` (its matched frames; a frame listed twice there
    is ambiguous and gives NaN, as does a frame it does not list)."""
    keys = ["pullback_id", "frame"]
    cent = ["manual_lumen_centroid_x_mm", "manual_lumen_centroid_y_mm"]
    f = frames if "match" not in frames else frames[frames["match"] == "matched"]
    f = f.dropna(subset=cent).drop_duplicates(keys, keep=False)
    both = pairs.merge(f[keys + cent], on=keys, how="left", validate="many_to_one")
    radius = {
        s: np.hypot(both[f"{s}_x_mm"] - both[cent[0]], both[f"{s}_y_mm"] - both[cent[1]])
        for s in ("auto", "manual")
    }
    out = pairs.copy()
    out["strut_mm"] = (radius["auto"] - radius["manual"]).to_numpy()
    err = out["auto_distance_mm"] - out["manual_distance_mm"]
    out["lumen_mm"] = err + out["strut_mm"]
    return out


def split_bands(pairs: pd.DataFrame, edges=EDGES) -> pd.DataFrame:
    """:func:`bands` with, per band, how many pairs have a manual centroid (``n_split``) and the
    mean ``strut_mm`` and ``lumen_mm`` over those (pairs from :func:`split_bias`)."""
    parts = pairs[["strut_mm", "lumen_mm"]].groupby(_band(pairs, edges), observed=True)
    split = parts.mean().assign(n_split=parts["strut_mm"].count())
    return bands(pairs, edges).join(split[["n_split", "strut_mm", "lumen_mm"]])


def missed(pairs: pd.DataFrame) -> pd.DataFrame:
    """The truly malapposed struts found but read apposed."""
    m = (pairs["manual_malapposed"] == 1) & (pairs["auto_malapposed"] != 1)
    cols = ["pullback_id", "frame", "manual_distance_mm", "auto_distance_mm"]
    return pairs.loc[m, cols]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("struts_matched")
    ap.add_argument("--edges", type=float, nargs="+", help="band edges (mm), open at both ends")
    ap.add_argument(
        "--frames", type=Path, help="frames_matched.csv (default: the one beside struts_matched)"
    )
    a = ap.parse_args(argv)
    if a.frames is not None and not a.frames.is_file():
        ap.error(f"--frames {a.frames}: no such file")
    df = pd.read_csv(a.struts_matched, dtype={"pullback_id": str})
    pairs = df.dropna(subset=["auto_distance_mm", "manual_distance_mm"])
    edges = (-math.inf, *a.edges, math.inf) if a.edges else EDGES
    print(f"{len(pairs)} matched struts of {len(df)} rows")
    frames = a.frames or Path(a.struts_matched).with_name("frames_matched.csv")
    if frames.is_file():
        table = split_bands(
            split_bias(pairs, pd.read_csv(frames, dtype={"pullback_id": str})), edges
        )
        print(f"bias split into strut and lumen parts with {frames}")
    else:
        table = bands(pairs, edges)
    print(table.round(4).to_string())
    gone = missed(pairs)
    print(f"\nmalapposed struts read apposed: {len(gone)}")
    if len(gone):
        print(gone.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
