"""Validation of the JSON the browser sends: every problem is a ``ValueError`` whose message
names the field (the server answers it with HTTP 400)."""

from __future__ import annotations

import math
from typing import Any

MAX_POINTS = 4096
MAX_MM = 100.0  # no IVOCT frame reaches 100 mm from the catheter
BRUSH_CLASSES = ("calcium", "lipid", "fibrous_cap")  # names of octseg.core.classes.CLASS_NAMES
OPS = ("lumen", "brush", "strut_add", "strut_delete", "strut_move", "guidewire")


def _num(obj: dict[str, Any], key: str, lo: float = -MAX_MM, hi: float = MAX_MM) -> float:
    if key not in obj:
        raise ValueError(f"'{key}' is missing")
    val = obj[key]
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
        raise ValueError(f"'{key}' must be a finite number, got {val!r}")
    if not lo <= val <= hi:
        raise ValueError(f"'{key}' must lie in [{lo}, {hi}], got {val}")
    return float(val)


def _point(val: Any, name: str) -> list[float]:
    if not isinstance(val, (list, tuple)) or len(val) != 2:
        raise ValueError(f"'{name}' must be a point [x_mm, y_mm], got {val!r}")
    return [_num({"x": val[0]}, "x"), _num({"y": val[1]}, "y")]


def _points(obj: dict[str, Any], key: str, min_n: int) -> list[list[float]]:
    pts = obj.get(key)
    if not isinstance(pts, list) or not min_n <= len(pts) <= MAX_POINTS:
        raise ValueError(f"'{key}' must be a list of {min_n}..{MAX_POINTS} points [x_mm, y_mm]")
    return [_point(p, f"{key}[{i}]") for i, p in enumerate(pts)]


def edit(obj: Any) -> dict[str, Any]:
    """A validated edit operation (see :func:`octseg.review.state.run_edit`)."""
    if not isinstance(obj, dict):
        raise ValueError("the edit must be a JSON object")
    op = obj.get("op")
    if op not in OPS:
        raise ValueError(f"'op' must be one of {', '.join(OPS)}, got {op!r}")
    if op == "lumen":
        return {"op": op, "points": _points(obj, "points", 3)}
    if op == "brush":
        mode = obj.get("mode")
        if mode not in ("paint", "erase"):
            raise ValueError(f"'mode' must be 'paint' or 'erase', got {mode!r}")
        r = _num(obj, "radius_mm", 0.001, 5.0)
        cls = obj.get("class", "calcium")
        if cls not in BRUSH_CLASSES:
            raise ValueError(f"'class' must be one of {', '.join(BRUSH_CLASSES)}, got {cls!r}")
        pts = _points(obj, "points", 1)
        return {"op": op, "mode": mode, "radius_mm": r, "points": pts, "class": cls}
    if op in ("strut_add", "strut_delete"):
        return {"op": op, "x": _num(obj, "x"), "y": _num(obj, "y")}
    if op == "strut_move":
        return {
            "op": op,
            "src": _point(obj.get("src"), "src"),
            "dst": _point(obj.get("dst"), "dst"),
        }
    return {
        "op": op,
        "start_deg": _num(obj, "start_deg", -720, 720),
        "end_deg": _num(obj, "end_deg", -720, 720),
        "radius_mm": _num(obj, "radius_mm", 0.0, MAX_MM),
    }


def flag(obj: Any, key: str) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), bool):
        raise ValueError(f"expected a JSON object with a boolean '{key}'")
    return obj[key]


def reviewer(obj: Any, default: str) -> str:
    if obj is None:
        return default
    if not isinstance(obj, dict):
        raise ValueError("the save request must be a JSON object")
    name = obj.get("reviewer", default)
    if not isinstance(name, str) or not 0 < len(name) <= 100 or not name.isprintable():
        raise ValueError("'reviewer' must be a printable name of 1..100 characters")
    return name
