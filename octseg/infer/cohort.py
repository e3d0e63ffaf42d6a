"""Cohort-level ``summary.csv``: one row per calcium lesion, lipid lesion and stent, across every
pullback of the run (a pullback with neither gets one ``pullback`` row carrying its MLA, so each appears).

Columns: ``pullback_id``, ``item`` (``calcium_lesion`` | ``lipid_lesion`` | ``stent`` | ``pullback``), ``index`` (1-based
within the pullback), ``start_mm`` / ``end_mm``, the pullback's ``mla_mm2`` / ``mla_frame`` and
``n_open_frames`` (frames whose lumen runs out of the image: their areas are lower bounds), then
the lesion, stent and lipid-lesion keys of octseg.geometry.tables (blank where not applicable; the lists,
risk flags and ``score_borderline``, joined by ``;``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from octseg.geometry.tables import LESION_KEYS, LIPID_LESION_KEYS, STENT_KEYS, write_csv

COHORT_COLUMNS: list[str] = (
    ["pullback_id", "item", "index", "start_mm", "end_mm", "mla_mm2", "mla_frame", "n_open_frames"]
    + LESION_KEYS
    + [k for k in STENT_KEYS if k not in LESION_KEYS]
    + [k for k in LIPID_LESION_KEYS if k not in LESION_KEYS + STENT_KEYS]
)


def rows_for(
    pullback_id: str, summary: Mapping[str, Any], frame_spacing_mm: float | None
) -> list[dict]:
    lum = summary.get("lumen") or {}
    base = {
        "pullback_id": pullback_id,
        "mla_mm2": lum.get("mla_mm2"),
        "mla_frame": lum.get("mla_frame"),
        "n_open_frames": lum.get("n_open_frames"),
    }

    def span(item: Mapping[str, Any]) -> dict[str, Any]:
        if frame_spacing_mm is None:
            return {}
        return {
            "start_mm": item["start_frame"] * frame_spacing_mm,
            "end_mm": (item["end_frame"] + 1) * frame_spacing_mm,
        }

    rows: list[dict[str, Any]] = []
    for i, les in enumerate(summary.get("calcium_lesions") or [], start=1):
        row = {**base, "item": "calcium_lesion", "index": i, **span(les)}
        for k in LESION_KEYS:
            v = les.get(k)
            row[k] = ";".join(v) if isinstance(v, (list, tuple)) else v
        rows.append(row)
    st = summary.get("stent")
    if st:
        row = {**base, "item": "stent", "index": 1, **span(st)}
        row.update({k: st.get(k) for k in STENT_KEYS})
        rows.append(row)
    for i, les in enumerate(summary.get("lipid_lesions") or [], start=1):
        row = {**base, "item": "lipid_lesion", "index": i, **span(les)}
        row.update({k: les.get(k) for k in LIPID_LESION_KEYS})
        rows.append(row)
    if not rows:
        rows.append({**base, "item": "pullback"})
    return rows


def write_cohort_summary(out_root: Path, pullbacks: Iterable[tuple[str, Path]]) -> Path:
    """Collect ``<dir>/summary.json`` of each (id, dir) and write ``out_root/summary.csv``."""
    rows: list[dict[str, Any]] = []
    for pid, d in pullbacks:
        try:
            with open(d / "summary.json", encoding="utf-8") as fh:
                summary = json.load(fh)
            with open(d / "done.json", encoding="utf-8") as fh:
                fs = json.load(fh).get("frame_spacing_mm")
        except (OSError, ValueError):
            continue
        rows.extend(rows_for(pid, summary, fs))
    path = out_root / "summary.csv"
    write_csv(path, COHORT_COLUMNS, rows)
    return path
