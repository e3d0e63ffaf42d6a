"""Table cells of the evaluation report and its summary lines: numbers, CIs, proportions."""

from __future__ import annotations

import html
import math
from typing import Any


def fmt(v: Any, digits: int = 3) -> str:
    """A number at ``digits`` decimals (scientific when smaller, one decimal from 100), yes/no
    for a flag, – for a missing value; other values HTML-escaped."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if abs(v) < 1e-9:
            return "0"
        if abs(v) < 10 ** (-digits):
            return f"{v:.1e}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def fixed(v: Any, digits: int = 3) -> str:
    """A number at exactly ``digits`` decimals (no "-0.000"); – for a missing value."""
    if v is None:
        return "–"
    return f"{0.0 if abs(v) < 0.5 * 10**-digits else v:.{digits}f}"


def ci(bounds: Any, digits: int = 3) -> str:
    """`` [lo, hi]`` in a grey span; empty where there is no interval."""
    if not bounds or bounds[0] is None or bounds[1] is None:
        return ""
    return f" <span class=ci>[{fmt(bounds[0], digits)}, {fmt(bounds[1], digits)}]</span>"


def prop(p: dict[str, Any]) -> str:
    """A proportion with its CI and k/n (:func:`octseg.evaluate.stats.proportion`)."""
    if not p or p.get("value") is None:
        return "–"
    return f"{fmt(p['value'])}{ci(p.get('ci'))} <span class=ci>({p['k']}/{p['n']})</span>"


def share_cis(p: dict[str, Any]) -> str:
    """A share's CIs as text: "Wilson 95% CI lo-hi, over pullbacks lo-hi" (the second where
    ``p`` has ``ci_pullbacks``)."""
    lo, hi = p["ci"]
    plo, phi = p.get("ci_pullbacks") or (None, None)
    over = "" if plo is None else f", over pullbacks {fixed(plo, 2)}-{fixed(phi, 2)}"
    return f"Wilson 95% CI {fixed(lo, 2)}-{fixed(hi, 2)}{over}"
