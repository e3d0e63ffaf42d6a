"""Which pullbacks carry a frame-level bias: the bias of each measure per pullback.

A pooled bias over a cohort can come from every pullback a little or from one pullback a lot
(one hard lesion, one badly flushed run). :func:`summarize` tells them apart: per
measure and pullback, the number of matched frames, the mean and mean absolute difference
(automated - manual), and the pullback's **part of the pooled bias** (the sum of its
differences over the number of pairs in the cohort; the parts add up to the pooled bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def summarize(
    differences: dict[str, dict[str, list[float]]],
) -> dict[str, dict[str, dict[str, float | int]]]:
    """``{measure: {pullback_id: {n, bias, mae, part_of_pooled_bias}}}`` from the automated -
    manual differences of each measure per pullback (matched frames giving both values);
    measures without a difference are left out, pullbacks without one too."""
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for c, per in differences.items():
        total = sum(len(d) for d in per.values())
        if total:
            out[c] = {pid: _row(d, total) for pid, d in sorted(per.items()) if d}
    return out


def _row(d: list[float], total: int) -> dict[str, Any]:
    v = np.asarray(d, dtype=float)
    return {
        "n": int(v.size),
        "bias": float(v.mean()),
        "mae": float(np.abs(v).mean()),
        "part_of_pooled_bias": float(v.sum() / total),
    }
