"""Measurement tables: the one writer used by ``octseg measure``, ``octseg synth`` (true values),
inference, and the reader used by evaluation.

Per pullback folder:

``frames.csv``   one row per label frame, columns :data:`FRAME_COLUMNS`; a blank cell means
                 "not applicable" (no calcium in the frame, no stent, ...).
``struts.csv``   one row per strut, columns :data:`STRUT_COLUMNS`.
``summary.json`` per-pullback results, see :data:`SUMMARY_EXAMPLE`.

Conventions: angles in degrees in [0, 360) about the **lumen centroid**, measured from the +x
(column) axis towards +y (row axis, pointing down), i.e. clockwise on screen; ``x_mm``/``y_mm``
are offsets from the catheter centre; ``position_mm = frame * frame_spacing_mm``.

Manual measurements (what a core lab fills in a spreadsheet, and what ``octseg synth`` writes as
its truth) use the same column names plus ``pullback_id``; any subset of measurement columns may
be present and blank cells mean "not measured": :data:`MANUAL_FRAME_COLUMNS`,
:data:`MANUAL_LESION_COLUMNS`, :data:`MANUAL_STRUT_COLUMNS`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from octseg.core import atomic
from octseg.core.errors import SchemaError

FRAME_COLUMNS: list[str] = [
    "frame",
    "position_mm",
    "lumen_area_mm2",
    "lumen_mean_diameter_mm",
    "lumen_min_diameter_mm",
    "lumen_max_diameter_mm",
    "lumen_eccentricity",
    "lumen_centroid_x_mm",
    "lumen_centroid_y_mm",
    "lumen_open_percent",
    "calcium_arc_deg",
    "calcium_max_thickness_mm",
    "calcium_min_depth_mm",
    "calcium_area_mm2",
    "calcium_max_thickness_angle_deg",
    "n_struts",
    "n_malapposed",
    "stent_area_mm2",
    "max_malapposition_mm",
    "malapposition_area_mm2",
    "lipid_arc_deg",
    "lipid_min_depth_mm",
    "cap_min_thickness_um",
    "cap_min_angle_deg",
    "tcfa",
]
STRUT_COLUMNS: list[str] = ["frame", "angle_deg", "x_mm", "y_mm", "distance_mm", "malapposed"]

LESION_KEYS: list[str] = [
    "start_frame",
    "end_frame",
    "length_mm",
    "max_arc_deg",
    "max_thickness_mm",
    "min_depth_mm",
    "volume_mm3",
    "calcium_score",
    "kind",
    "risk_flags",
    "score_borderline",
]
STENT_KEYS: list[str] = [
    "start_frame",
    "end_frame",
    "length_mm",
    "msa_mm2",
    "msa_frame",
    "reference_proximal_area_mm2",
    "reference_distal_area_mm2",
    "expansion",
    "underexpanded",
    "n_struts",
    "n_malapposed",
    "malapposed_percent",
    "max_malapposition_mm",
    "malapposition_length_mm",
    "malapposition_volume_mm3",
    "significant_malapposition",
]
LIPID_LESION_KEYS: list[str] = [
    "start_frame",
    "end_frame",
    "length_mm",
    "max_lipid_arc_deg",
    "mean_lipid_arc_deg",
    "lipid_index",
    "min_cap_thickness_um",
    "min_cap_frame",
    "n_tcfa_frames",
    "tcfa",
]
SUMMARY_EXAMPLE: dict[str, Any] = {
    # n_open_frames: frames whose lumen reaches the image's edge (lumen_open_percent > 0)
    "lumen": {"mla_mm2": 3.1, "mla_frame": 120, "n_open_frames": 0},
    "calcium_lesions": [
        {
            "start_frame": 40,
            "end_frame": 90,
            "length_mm": 10.2,
            "max_arc_deg": 210.0,
            "max_thickness_mm": 0.8,
            "min_depth_mm": 0.05,
            "volume_mm3": 4.2,
            "calcium_score": 4,
            "kind": "macro",
            "risk_flags": [],
            # criteria within their margin of the score's cut-off (arc, thickness, length)
            "score_borderline": [],
        }
    ],
    "stent": None,
    "lipid_lesions": [],
    # the version of the definitions that made these numbers (octseg.geometry.settings);
    # evaluate.py re-measures tables of older rules from their labels.npz
    "measurement_rules": 3,
}

#: summary.json key of tables that are exact truth (a generator's), not measured by any rules;
#: evaluate.py never re-measures them
ANALYTIC_TRUTH = "analytic_truth"

MANUAL_FRAME_COLUMNS: list[str] = ["pullback_id"] + FRAME_COLUMNS
MANUAL_LESION_COLUMNS: list[str] = [
    "pullback_id",
    "start_frame",
    "end_frame",
    "start_mm",
    "end_mm",
    "length_mm",
    "max_arc_deg",
    "max_thickness_mm",
    "min_depth_mm",
    "volume_mm3",
    "calcium_score",
    "kind",
]
MANUAL_STRUT_COLUMNS: list[str] = ["pullback_id"] + STRUT_COLUMNS


def _cell(value: Any) -> str:
    """CSV cell text: blank for None/NaN, 0/1 for booleans, compact floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    try:
        import numpy as np

        if isinstance(value, np.bool_):
            return "1" if bool(value) else "0"
        if isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            raise ValueError("infinite value in a measurement table")
        return f"{value:.6g}"
    return str(value)


def write_csv(path: str | Path, columns: list[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows (dicts; missing keys are blank, unknown keys are an error) atomically."""
    with atomic.atomic_open(path, "w") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            unknown = set(row) - set(columns)
            if unknown:
                raise ValueError(f"{path}: unknown column(s) {sorted(unknown)}")
            writer.writerow([_cell(row.get(c)) for c in columns])


def clean_json(obj: Any) -> Any:
    """Replace NaN by None and numpy scalars by Python ones, recursively."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, Mapping):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if np is not None and isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    if np is not None and isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


def write_measurements(
    out_dir: str | Path,
    frames: Iterable[Mapping[str, Any]],
    struts: Iterable[Mapping[str, Any]],
    summary: Mapping[str, Any],
) -> dict[str, Path]:
    """Write ``frames.csv``, ``struts.csv`` and ``summary.json`` into ``out_dir`` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "frames": out / "frames.csv",
        "struts": out / "struts.csv",
        "summary": out / "summary.json",
    }
    write_csv(paths["frames"], FRAME_COLUMNS, frames)
    write_csv(paths["struts"], STRUT_COLUMNS, struts)
    atomic.write_json(paths["summary"], clean_json(dict(summary)))
    return paths


#: columns kept as text when reading a CSV ("001" stays "001", never the number 1)
TEXT_COLUMNS = frozenset({"pullback_id", "kind", "risk_flags", "score_borderline"})


def read_csv(
    path: str | Path, required: Iterable[str] = (), *, line_numbers: bool = False
) -> list[dict[str, Any]]:
    """Read a measurement CSV: blank cells become None, numbers become int/float, the text
    columns (:data:`TEXT_COLUMNS`) stay text.

    Comma- or semicolon-separated (whichever the first 4 KiB hold more of; spreadsheets in
    decimal-comma locales write ';'), UTF-8 with or without BOM; parsed by pandas, every cell as
    text. Blank rows are skipped; empty trailing cells beyond the header are ignored.
    ``required`` columns must be present in the header. ``line_numbers``: add ``"_line"`` (the
    1-based line of each row) for messages. Errors are :class:`SchemaError` naming the file
    (and line).
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError(path, "no such file")
    cells = _read_cells(path)
    header = _header(path, cells[0], required)
    out = []
    for line, row_cells in enumerate(cells[1:], start=2):
        if row_cells and row_cells[0] == _MORE_CELLS:
            raise SchemaError(path, f"line {line} has more cells than the header")
        if not any(c.strip() for c in row_cells):
            continue  # blank spreadsheet rows
        row = {
            h: (c.strip() or None) if h in TEXT_COLUMNS else _parse(c)
            for h, c in zip(header, row_cells, strict=True)
        }
        if line_numbers:
            row["_line"] = line
        out.append(row)
    return out


def _header(path: Path, cells: list[str], required: Iterable[str]) -> list[str]:
    """The column names of a CSV header row, checked: none blank, none repeated, ``required``
    present."""
    header = [h.strip() for h in cells]
    if any(h == "" for h in header):
        raise SchemaError(path, "line 1: the header has a blank column name")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise SchemaError(path, f"line 1: repeated column(s): {', '.join(dup)}")
    missing = [c for c in required if c not in header]
    if missing:
        raise SchemaError(path, f"CSV lacks column(s): {', '.join(missing)}")
    return header


#: first cell of a row that held non-blank cells beyond the header (see :func:`_read_cells`)
_MORE_CELLS = "\x00more cells"


def _read_cells(path: Path) -> list[list[str]]:
    """Every row of a CSV file (header first, blank rows kept) as text cells, padded to the
    header's width; a row with more non-blank cells starts with :data:`_MORE_CELLS`."""
    import pandas as pd

    try:
        with open(path, encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
    except UnicodeDecodeError:
        raise SchemaError(path, "not a UTF-8 text CSV file") from None
    except OSError as exc:
        raise SchemaError(path, f"cannot read ({exc.strerror or exc})") from None

    def long_row(cells: list[str]) -> list[str]:
        return [_MORE_CELLS] if any(c.strip() for c in cells[width:]) else cells[:width]

    first = sample.lstrip("\r\n").splitlines()[:1]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    width = len(next(csv.reader(first, delimiter=delimiter), []))
    try:
        table = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            names=range(width) if width else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            engine="python",
            on_bad_lines=long_row,
        )
    except pd.errors.EmptyDataError:
        raise SchemaError(path, "empty file (no header line)") from None
    except UnicodeDecodeError:
        raise SchemaError(path, "not a UTF-8 text CSV file") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise SchemaError(path, f"not a readable CSV file ({exc})") from None
    return table.fillna("").to_numpy(dtype=object).tolist()


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    text = text.strip()
    if text == "" or text.lower() in ("na", "nan", "none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_summary(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SchemaError(path, "no such file") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(path, f"not valid JSON ({exc})") from None
