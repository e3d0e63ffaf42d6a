"""Spacing resolution shared by every reader: explicit arguments, a ``spacing.json`` sidecar, or
what the file records - in that order of precedence. Spacing is never assumed silently: where none
of the three supplies a value, :class:`~octseg.core.errors.MissingSpacingError` names the file and says
how to supply it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError, MissingSpacingError
from octseg.io import limits

SIDECAR_NAME = "spacing.json"
KEYS = ("pixel_spacing_mm", "frame_spacing_mm")
_ARG_HINT = {
    "pixel_spacing_mm": "read_pullback(..., pixel_spacing_mm=...) / --pixel-spacing-mm",
    "frame_spacing_mm": "read_pullback(..., frame_spacing_mm=...) / --frame-spacing-mm",
}


def _positive(value: Any) -> float | None:
    try:
        val = float(value)
    except (TypeError, ValueError):
        return None
    return val if math.isfinite(val) and val > 0 else None


def find_sidecar(path: Path) -> Path | None:
    """The ``spacing.json`` that belongs to ``path``: inside it (folder) or beside it (file)."""
    candidates = [path / SIDECAR_NAME] if path.is_dir() else []
    candidates.append(path.parent / SIDECAR_NAME)
    for cand in candidates:
        if cand.is_file():
            return cand
    return None


def _sidecar_json(sidecar: Path) -> dict[str, Any]:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(sidecar, f"not a readable JSON spacing sidecar ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(sidecar, f"spacing sidecar must be a JSON object with keys {KEYS}")
    return data


def read_sidecar_layout(sidecar: Path) -> tuple[str, tuple[float, float] | None]:
    """``(space, catheter_center)`` of a ``spacing.json``: ``"cartesian"`` unless it says
    ``"space": "polar"``; the centre ``[cy, cx]`` where given (Cartesian only, else None)."""
    data = _sidecar_json(sidecar)
    space = str(data.get("space", "cartesian"))
    if space not in ("polar", "cartesian"):
        raise InputError(sidecar, f"'space' must be 'polar' or 'cartesian', got {space!r}")
    center = None
    if "catheter_center" in data:
        try:
            cc = [float(v) for v in data["catheter_center"]]
        except (TypeError, ValueError):
            cc = []
        if len(cc) != 2 or not all(math.isfinite(v) for v in cc):
            raise InputError(sidecar, "'catheter_center' must be [cy, cx]")
        center = (cc[0], cc[1])
    return space, center if space == "cartesian" else None


def read_sidecar(sidecar: Path) -> dict[str, float]:
    """Validated values of a ``spacing.json`` (only the keys it has)."""
    data = _sidecar_json(sidecar)
    out: dict[str, float] = {}
    for key in KEYS:
        if key in data:
            val = _positive(data[key])
            if val is None:
                raise InputError(sidecar, f"'{key}' must be a positive number, got {data[key]!r}")
            out[key] = val
    unknown = sorted(set(data) - set(KEYS) - {"space", "catheter_center"})
    if unknown:
        raise InputError(
            sidecar,
            f"unknown key(s) {unknown}; expected {list(KEYS)} (and optionally 'space', 'catheter_center')",
        )
    return out


def resolve(
    path: str | Path,
    key: str,
    *,
    argument: float | None,
    sidecar: dict[str, float] | None,
    sidecar_path: Path | None,
    from_file: float | None,
    file_source: str = "file",
    sources: dict[str, str] | None = None,
    allow_unusual: bool = False,
) -> float:
    """Pick ``key`` from argument > sidecar > file; raise a helpful error where none has it.
    A value from the file must lie in the plausible range (:func:`octseg.io.limits.check_spacing`)
    unless ``allow_unusual``; explicit values (argument, sidecar) are the user's and are not
    range-checked."""
    if argument is not None:
        val = _positive(argument)
        if val is None:
            raise InputError(path, f"{key} argument must be a positive number, got {argument!r}")
        src = "argument"
    elif sidecar and key in sidecar:
        val, src = sidecar[key], f"sidecar {sidecar_path}"
    elif from_file is not None and _positive(from_file) is not None:
        val, src = float(from_file), file_source
        limits.check_spacing(path, key, val, source=src, allow=allow_unusual)
    else:
        where = Path(path)
        side = (where if where.is_dir() else where.parent) / SIDECAR_NAME
        raise MissingSpacingError(
            path,
            f"no {key.replace('_mm', '').replace('_', ' ')} recorded in the image; give it with "
            f"{_ARG_HINT[key]} or a sidecar {side} like "
            '{"pixel_spacing_mm": 0.01, "frame_spacing_mm": 0.2}',
        )
    if sources is not None:
        sources[key] = src
    return val


def spacing_for(
    path: str | Path,
    options: dict[str, Any],
    *,
    file_pixel: float | None = None,
    file_frame: float | None = None,
    pixel_source: str = "file",
    frame_source: str = "file",
) -> tuple[float, float, dict[str, str]]:
    """``(pixel_spacing_mm, frame_spacing_mm, sources)`` for a reader.

    ``options`` are the reader's keyword options (``pixel_spacing_mm``/``frame_spacing_mm`` from
    the caller, may be None; ``allow_unusual_spacing`` accepts file values outside the plausible
    range). The sidecar is looked up beside/inside ``path``.
    """
    path = Path(path)
    side_path = find_sidecar(path)
    side = read_sidecar(side_path) if side_path else None
    sources: dict[str, str] = {}
    common = {
        "sidecar": side,
        "sidecar_path": side_path,
        "sources": sources,
        "allow_unusual": bool(options.get("allow_unusual_spacing")),
    }
    px = resolve(
        path,
        "pixel_spacing_mm",
        argument=options.get("pixel_spacing_mm"),
        from_file=file_pixel,
        file_source=pixel_source,
        **common,
    )
    fr = resolve(
        path,
        "frame_spacing_mm",
        argument=options.get("frame_spacing_mm"),
        from_file=file_frame,
        file_source=frame_source,
        **common,
    )
    return px, fr, sources
