"""Read automated results and manual measurements into one in-memory form per pullback.

Automated results (``auto``): a folder with one sub-folder per pullback (or one pullback folder)
holding either the measurement tables ``frames.csv`` / ``struts.csv`` / ``summary.json``
(inference output, ``octseg measure``), or a label file ``labels.npz`` that is measured on the fly
with :func:`octseg.geometry.measure_labels`, or (synthetic cohorts) a ``truth/`` folder with the
tables. A ``labels.npz`` beside the tables is also used for the overlap metrics.

Manual measurements (``manual``): ``manual_frames.csv``, ``manual_lesions.csv``,
``manual_struts.csv`` (columns in :mod:`octseg.geometry.tables`, formats in ``docs/evaluation.md``)
anywhere up to two folders deep, and/or per-pullback folders with ``labels.npz`` (manual label
maps, measured with :func:`octseg.geometry.measure_labels` where no CSV or table gives a measure)
or with measurement tables (``frames.csv``/``summary.json``/``struts.csv``, e.g. the
synthetic generator's ``truth/``), which are then read as if a core lab had written them.

Every problem is an :class:`octseg.core.errors.SchemaError` / :class:`InputError` naming the file (and
the line for CSV rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError, SchemaError
from octseg.geometry.tables import (
    ANALYTIC_TRUTH,
    FRAME_COLUMNS,
    MANUAL_LESION_COLUMNS,
    MANUAL_STRUT_COLUMNS,
    STRUT_COLUMNS,
    TEXT_COLUMNS,
    read_summary,
)
from octseg.geometry.tables import read_csv as _read_csv
from octseg.io.labels import LabelFile, load_labels

TABLES = ("frames.csv", "struts.csv", "summary.json")
MANUAL_FILES = {
    "frames": "manual_frames.csv",
    "lesions": "manual_lesions.csv",
    "struts": "manual_struts.csv",
}
#: frame columns not compared as measures: the keys, the flag, the angles where a frame's
#: thinnest cap / thickest calcium lies (where, not how much) and the image-quality flag
NOT_MEASURES = (
    "frame",
    "position_mm",
    "tcfa",
    "cap_min_angle_deg",
    "calcium_max_thickness_angle_deg",
    "lumen_open_percent",
)
#: per-frame measurement columns compared between auto and manual
FRAME_MEASURES: list[str] = [c for c in FRAME_COLUMNS if c not in NOT_MEASURES]
#: per-frame yes/no measures (Cohen's kappa); a frame without lipid counts as "no"
FRAME_FLAGS: list[str] = ["tcfa"]
#: per-lesion continuous measures
LESION_MEASURES: list[str] = [
    "length_mm",
    "max_arc_deg",
    "max_thickness_mm",
    "min_depth_mm",
    "volume_mm3",
]
RISK_FLAGS: list[str] = ["arc_gt_270", "thickness_gt_1mm", "length_gt_15mm"]
INT_COLUMNS = {"frame", "start_frame", "end_frame", "n_struts", "n_malapposed", "calcium_score"}
BOOL_COLUMNS = {"malapposed", "tcfa"}


@dataclass
class PullbackData:
    """One pullback's measurements from one side (auto or manual).

    ``frames``: rows keyed by frame columns (``frame`` and/or ``position_mm`` and measures);
    ``lesions``: rows with ``start_frame``/``end_frame`` (or ``start_mm``/``end_mm``) and lesion
    measures; ``struts``: rows of strut columns. ``None`` cells mean "not measured" /
    "not applicable". ``source`` names where each table came from (for messages and the report).
    """

    id: str
    frames: list[dict[str, Any]] | None = None
    lesions: list[dict[str, Any]] | None = None
    struts: list[dict[str, Any]] | None = None
    summary: dict[str, Any] | None = None
    labels: LabelFile | None = None
    frame_spacing_mm: float | None = None
    source: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- cell checks
def read_csv(path: str | Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """:func:`octseg.geometry.tables.read_csv` with each row's line number (``"_line"``)."""
    return _read_csv(path, required, line_numbers=True)


def _bool(value: Any, path: Path, line: int, col: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise SchemaError(path, f"line {line}: column '{col}': {value!r} is not yes/no (1/0)")


def _number(value: Any, path: Path, line: int, col: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(path, f"line {line}: column '{col}': {value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(path, f"line {line}: column '{col}': {value!r} is not finite")
    if col in INT_COLUMNS:
        if float(value) != int(value):
            raise SchemaError(path, f"line {line}: column '{col}': {value!r} is not a whole number")
        return int(value)
    return float(value)


def _clean_row(
    raw: dict[str, Any], path: Path, line: int, known: set[str], extra_ok: set[str] = frozenset()
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for col, val in raw.items():
        if col not in known and col not in extra_ok:
            continue  # unknown columns (comments, reader initials) are ignored; listed in warnings
        if col in BOOL_COLUMNS:
            row[col] = _bool(val, path, line, col)
        elif col in TEXT_COLUMNS:
            row[col] = None if val is None else str(val).strip()
        else:
            row[col] = _number(val, path, line, col)
    return row


def _unknown_columns(rows: list[dict[str, Any]], known: set[str]) -> list[str]:
    cols: set[str] = set()
    for r in rows:
        cols.update(r)
    return sorted(c for c in cols if c not in known and c != "_line")


# ----------------------------------------------------------------------------- manual CSVs
def read_manual_frames(
    path: Path, default_id: str | None = None, warnings: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``manual_frames.csv`` -> {pullback_id: rows}. Needs ``frame`` or ``position_mm``."""
    known = {"pullback_id", *FRAME_COLUMNS}
    raw = read_csv(path, required=() if default_id else ("pullback_id",))
    _note_unknown(raw, known, path, warnings)
    header = set(raw[0]) if raw else set()
    if raw and not ({"frame", "position_mm"} & header):
        raise SchemaError(path, "CSV needs a 'frame' or a 'position_mm' column")
    out: dict[str, list[dict[str, Any]]] = {}
    seen: dict[tuple[str, str, float], int] = {}
    for r in raw:
        line = r["_line"]
        row = _clean_row(r, path, line, known)
        pid = _pid(row, default_id, path, line)
        if row.get("frame") is None and row.get("position_mm") is None:
            raise SchemaError(path, f"line {line}: neither 'frame' nor 'position_mm' is given")
        if row.get("frame") is not None and row["frame"] < 0:
            raise SchemaError(path, f"line {line}: 'frame' must be >= 0, got {row['frame']}")
        key = (
            (pid, "frame", float(row["frame"]))
            if row.get("frame") is not None
            else (pid, "mm", float(row["position_mm"]))
        )
        if key in seen:
            raise SchemaError(
                path,
                f"line {line}: repeats pullback {pid!r} {key[1]} {key[2]:g} (line {seen[key]})",
            )
        seen[key] = line
        row["_line"] = line
        out.setdefault(pid, []).append(row)
    return out


def read_manual_lesions(
    path: Path, default_id: str | None = None, warnings: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``manual_lesions.csv`` -> {pullback_id: rows}. Needs start/end as frames or mm."""
    known = set(MANUAL_LESION_COLUMNS) | {"risk_flags"}
    raw = read_csv(path, required=() if default_id else ("pullback_id",))
    _note_unknown(raw, known, path, warnings)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in raw:
        line = r["_line"]
        row = _clean_row(r, path, line, known)
        pid = _pid(row, default_id, path, line)
        _check_lesion_interval(row, path, line)
        _check_lesion_values(row, path, line)
        if row.get("risk_flags") is not None:
            row["risk_flags"] = _parse_flags(row["risk_flags"], path, line)
        row["_line"] = line
        out.setdefault(pid, []).append(row)
    return out


def _check_lesion_interval(row: dict[str, Any], path: Path, line: int) -> None:
    """A lesion row gives start and end as frames or as mm, the end not before the start."""
    for unit in ("frame", "mm"):
        start, end = row.get(f"start_{unit}"), row.get(f"end_{unit}")
        if start is not None and end is not None:
            if end < start:
                raise SchemaError(path, f"line {line}: end_{unit} < start_{unit}")
            return
    raise SchemaError(path, f"line {line}: give start_frame and end_frame, or start_mm and end_mm")


def _check_lesion_values(row: dict[str, Any], path: Path, line: int) -> None:
    """``calcium_score`` 0..4 and ``kind`` spotty or macro (lower-cased in ``row``)."""
    score = row.get("calcium_score")
    if score is not None and not 0 <= score <= 4:
        raise SchemaError(path, f"line {line}: calcium_score must be 0..4, got {score}")
    kind = row.get("kind")
    if kind is None:
        return
    if kind.lower() not in ("spotty", "macro"):
        raise SchemaError(path, f"line {line}: kind must be 'spotty' or 'macro', got {kind!r}")
    row["kind"] = kind.lower()


def read_manual_struts(
    path: Path, default_id: str | None = None, warnings: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``manual_struts.csv`` -> {pullback_id: rows}. Needs ``frame`` and a position
    (``x_mm`` + ``y_mm``, or ``angle_deg``)."""
    known = set(MANUAL_STRUT_COLUMNS)
    raw = read_csv(path, required=("frame",) if default_id else ("pullback_id", "frame"))
    _note_unknown(raw, known, path, warnings)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in raw:
        line = r["_line"]
        row = _clean_row(r, path, line, known)
        pid = _pid(row, default_id, path, line)
        if row.get("frame") is None:
            raise SchemaError(path, f"line {line}: 'frame' is blank")
        has_xy = row.get("x_mm") is not None and row.get("y_mm") is not None
        if not has_xy and row.get("angle_deg") is None:
            raise SchemaError(path, f"line {line}: a strut needs x_mm and y_mm, or angle_deg")
        row["_line"] = line
        out.setdefault(pid, []).append(row)
    return out


def _parse_flags(value: Any, path: Path, line: int) -> list[str]:
    text = str(value).strip()
    if not text or text == "[]":
        return []
    flags = [f.strip().strip("'\"[]") for f in text.replace(";", ",").replace("|", ",").split(",")]
    flags = [f for f in flags if f]
    bad = [f for f in flags if f not in RISK_FLAGS]
    if bad:
        raise SchemaError(
            path, f"line {line}: unknown risk flag(s) {bad}; known: {', '.join(RISK_FLAGS)}"
        )
    return flags


def _pid(row: dict[str, Any], default: str | None, path: Path, line: int) -> str:
    pid = row.pop("pullback_id", None)
    if pid is None:
        pid = default
    if pid is None or str(pid).strip() == "":
        raise SchemaError(path, f"line {line}: 'pullback_id' is blank")
    pid = str(pid).strip()
    return pid


def _note_unknown(
    raw: list[dict[str, Any]], known: set[str], path: Path, warnings: list[str] | None
) -> None:
    unknown = _unknown_columns(raw, known)
    if unknown and warnings is not None:
        warnings.append(f"{path}: ignored unknown column(s): {', '.join(unknown)}")


# ----------------------------------------------------------------------------- tables
def _read_table(path: Path, columns: list[str]) -> list[dict[str, Any]]:
    """Rows of a ``frames.csv`` / ``struts.csv`` written by ``octseg.geometry.tables``."""
    known = set(columns)
    return [_clean_row(r, path, r["_line"], known) for r in read_csv(path, required=("frame",))]


def lesions_from_summary(summary: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    lesions = summary.get("calcium_lesions") or []
    if not isinstance(lesions, list):
        raise SchemaError(path, "'calcium_lesions' must be a list")
    out = []
    for i, les in enumerate(lesions):
        if not isinstance(les, dict) or les.get("start_frame") is None:
            raise SchemaError(path, f"calcium_lesions[{i}] lacks 'start_frame'")
        row = dict(les)
        row["risk_flags"] = list(les.get("risk_flags") or [])
        out.append(row)
    return out


def _spacing_from_frames(rows: list[dict[str, Any]]) -> float | None:
    pairs = [
        (r["frame"], r["position_mm"])
        for r in rows
        if r.get("frame") is not None and r.get("position_mm") is not None
    ]
    pairs.sort()
    for (f0, p0), (f1, p1) in zip(pairs, pairs[1:]):
        if f1 != f0:
            return (p1 - p0) / (f1 - f0)
    for f, p in pairs:
        if f:
            return p / f
    return None


def read_tables(folder: Path, pid: str) -> PullbackData:
    """A pullback from ``frames.csv`` / ``struts.csv`` / ``summary.json`` in ``folder``."""
    pb = PullbackData(id=pid)
    if (folder / "frames.csv").exists():
        pb.frames = _read_table(folder / "frames.csv", FRAME_COLUMNS)
        pb.source["frames"] = str(folder / "frames.csv")
        pb.frame_spacing_mm = _spacing_from_frames(pb.frames)
    if (folder / "struts.csv").exists():
        pb.struts = _read_table(folder / "struts.csv", STRUT_COLUMNS)
        pb.source["struts"] = str(folder / "struts.csv")
    if (folder / "summary.json").exists():
        pb.summary = read_summary(folder / "summary.json")
        if not isinstance(pb.summary, dict):
            raise SchemaError(folder / "summary.json", "summary must be a JSON object")
        pb.lesions = lesions_from_summary(pb.summary, folder / "summary.json")
        pb.source["lesions"] = str(folder / "summary.json")
    return pb


def measure_label_file(
    path: Path, pid: str, geometry: Any = None, device: str = "cpu", lf: LabelFile | None = None
) -> PullbackData:
    """Measure a label file with the geometry module (lazily imported); ``lf``: the file's
    contents when already loaded."""
    try:
        from octseg.geometry import measure_labels
    except (ImportError, AttributeError) as exc:  # pragma: no cover - depends on the build
        raise InputError(
            path, f"measuring a label file needs octseg.geometry.measure_labels ({exc})"
        ) from None
    lf = lf if lf is not None else load_labels(path)
    m = measure_labels(lf, geometry, device=device)
    pb = PullbackData(
        id=pid,
        frames=[dict(r) for r in m.frames],
        struts=[dict(r) for r in m.struts],
        summary=dict(m.summary),
        labels=lf,
        frame_spacing_mm=lf.frame_spacing_mm,
    )
    pb.lesions = lesions_from_summary(pb.summary, path)
    for key in ("frames", "struts", "lesions"):
        pb.source[key] = f"{path} (measured)"
    pb.source["labels"] = str(path)
    return pb


#: the first MEASUREMENT_RULES that octseg recorded in summary.json
RULES_RECORDED_SINCE = 3


def refresh_stale_tables(
    pbs: dict[str, PullbackData],
    side: str,
    warnings: list[str],
    geometry: Any = None,
    device: str = "cpu",
    progress: bool = False,
) -> None:
    """Re-measure, from their label maps, the tables (``frames.csv`` / ``struts.csv`` /
    ``summary.json``) octseg wrote under older measurement rules
    (:data:`octseg.geometry.settings.MEASUREMENT_RULES`, recorded in ``summary.json``), so that
    both sides follow today's definitions; warn about tables that cannot be re-measured (no label
    map), that come from a newer octseg, or that do not record their rules. What manual CSVs
    give, and exact truth tables (a ``truth/`` folder or ``"analytic_truth"``), are kept."""
    from octseg.geometry.settings import MEASUREMENT_RULES as now

    found: dict[str, list[str]] = {"redone": [], "kept": [], "newer": [], "unknown": []}
    redo = []
    for pid, pb in pbs.items():
        rules = (pb.summary or {}).get("measurement_rules")
        if not _octseg_tables(pb) or rules == now:
            continue
        if not isinstance(rules, int) or isinstance(rules, bool):
            found["unknown"].append(pid)
        elif rules > now:
            found["newer"].append(f"{pid} ({rules})")
        elif pb.labels is None or "labels" not in pb.source:
            found["kept"].append(f"{pid} ({rules})")
        else:
            redo.append(pb)
            found["redone"].append(f"{pid} ({rules})")
    for pb in with_progress(redo, f"re-measuring {side} results (older rules)", progress):
        _remeasure_tables(pb, geometry, device)
    warnings += _rules_warnings(side, found, now)


def _octseg_tables(pb: PullbackData) -> bool:
    """Whether ``pb``'s frames come from a pullback folder's tables that are not exact truth."""
    frames = Path(pb.source.get("frames", ""))
    return (
        frames.name == "frames.csv"
        and frames.parent.name != "truth"
        and not (pb.summary or {}).get(ANALYTIC_TRUTH)
    )


def _remeasure_tables(pb: PullbackData, geometry: Any, device: str) -> None:
    """Replace what ``pb``'s folder tables gave (not what a manual CSV gave) by the
    measurements of its label map."""
    m = measure_label_file(Path(pb.source["labels"]), pb.id, geometry, device, pb.labels)
    for kind in ("frames", "lesions", "struts"):
        if Path(pb.source.get(kind, "")).name in TABLES:
            setattr(pb, kind, getattr(m, kind))
            pb.source[kind] = m.source[kind]
    pb.summary = m.summary


def _rules_warnings(side: str, found: dict[str, list[str]], now: int) -> list[str]:
    rules = f"today's measurement rules ({now}, docs/metrics.md)"
    texts = {
        "redone": f"re-measured from labels.npz under {rules}, as their tables were measured "
        "under older rules (given in brackets)",
        "kept": f"tables measured under older rules than {rules} and no labels.npz to "
        "re-measure them; read as they are",
        "newer": f"tables measured under newer rules than {rules} (a newer octseg); read as "
        "they are",
        "unknown": "tables that do not say which measurement rules made them (octseg before "
        f"{RULES_RECORDED_SINCE}, another tool, or a generator's exact truth written before "
        "it was marked); if an older octseg measured them, re-measure them (`octseg measure`, "
        f"or settings.manual_tables=false / auto_source=labels) to compare under {rules}",
    }
    return [
        f"{side}: {len(ids)} pullback(s) with {texts[key]}: {', '.join(ids)}"
        for key, ids in found.items()
        if ids
    ]


# ----------------------------------------------------------------------------- discovery
def _has_tables(d: Path) -> bool:
    return any((d / t).exists() for t in TABLES)


def _is_pullback_dir(d: Path) -> bool:
    return _has_tables(d) or (d / "labels.npz").exists() or _has_tables(d / "truth")


def pullback_dirs(root: Path) -> dict[str, Path]:
    """``root`` itself if it is one pullback folder, else its pullback sub-folders by name."""
    if not root.exists():
        raise InputError(root, "no such file or folder")
    if not root.is_dir():
        raise InputError(root, "expected a folder")
    if _is_pullback_dir(root) and root.name != "truth":
        return {root.name: root}
    return {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and _is_pullback_dir(d)}


def model_classes(auto: str | Path) -> list[int] | None:
    """The classes of the model that wrote an ``infer.py`` output folder (``manifest.json``
    ``model.classes``), or None when the folder has no readable manifest (tables from another
    tool, a cohort folder)."""
    import json

    try:
        classes = json.loads((Path(auto) / "manifest.json").read_text())["model"]["classes"]
        return [int(c) for c in classes]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_auto(
    root: str | Path,
    *,
    source: str = "auto",
    geometry: Any = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, PullbackData]:
    """Automated results per pullback id.

    ``source``: ``"auto"`` (tables in the pullback folder, else measure ``labels.npz``, else
    ``truth/`` tables), ``"tables"``, ``"labels"`` (always measure ``labels.npz``) or ``"truth"``.
    """
    if source not in ("auto", "tables", "labels", "truth"):
        raise InputError(None, f"auto source must be auto|tables|labels|truth, got {source!r}")
    root = Path(root)
    dirs = pullback_dirs(root)
    if not dirs:
        raise InputError(
            root,
            "no pullback results found (expected sub-folders with frames.csv/summary.json, "
            "labels.npz or truth/)",
        )
    out: dict[str, PullbackData] = {}
    for pid, d in with_progress(list(dirs.items()), "reading automated results", progress):
        out[pid] = _load_auto_one(pid, d, source, geometry, device)
    return out


def with_progress(items: list[Any], desc: str, progress: bool) -> Any:
    """``items`` behind a tqdm progress bar (per pullback) when ``progress`` is on."""
    if not progress or not items:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="pullback")


def _load_auto_one(pid: str, d: Path, source: str, geometry: Any, device: str) -> PullbackData:
    """The automated results of one pullback folder from the ``source`` :func:`load_auto`
    names."""
    lab = d / "labels.npz"
    if source == "tables" or (source == "auto" and _has_tables(d)):
        if not _has_tables(d):
            raise InputError(d, "no frames.csv/struts.csv/summary.json")
        pb = read_tables(d, pid)
        if lab.exists():
            pb.labels = load_labels(lab)
            pb.source["labels"] = str(lab)
            pb.frame_spacing_mm = pb.frame_spacing_mm or pb.labels.frame_spacing_mm
        return pb
    if source == "labels" or (source == "auto" and lab.exists()):
        if not lab.exists():
            raise InputError(d, "no labels.npz")
        return measure_label_file(lab, pid, geometry, device)
    if not _has_tables(d / "truth"):
        raise InputError(d, "no truth/ tables")
    return read_tables(d / "truth", pid)


def _find(root: Path, name: str, max_depth: int = 2) -> list[Path]:
    found = []
    for depth in range(max_depth + 1):
        pattern = "/".join(["*"] * depth + [name])
        found.extend(sorted(root.glob(pattern)))
    return found


def _folder_id(path: Path, root: Path) -> str | None:
    """Pullback id implied by where a per-pullback manual file lies (None at the top)."""
    parent = path.parent
    if parent.name == "truth":
        parent = parent.parent
    if parent == root or parent == root.parent:
        return None
    return parent.name


def load_manual(
    root: str | Path,
    *,
    use_tables: bool = True,
    warnings: list[str] | None = None,
    geometry: Any = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, PullbackData]:
    """Manual measurements per pullback id (see module docstring for what is read); a pullback
    folder's label map is measured (``geometry``, ``device``) for what neither a manual CSV nor
    (``use_tables``) its tables give."""
    root = Path(root)
    if not root.exists():
        raise InputError(root, "no such file or folder")
    out: dict[str, PullbackData] = {}
    found, root = _manual_csvs(root)
    for kind, paths in found.items():
        for path in paths:
            _add_manual_csv(out, kind, path, _folder_id(path, root), warnings)
    if root.is_dir():
        dirs = list(pullback_dirs(root).items())
        for pid, d in with_progress(dirs, "reading manual measurements", progress):
            _add_pullback_folder(out, pid, d, use_tables, (geometry, device))
    if not out:
        raise InputError(
            root,
            "no manual measurements found (expected manual_frames.csv, manual_lesions.csv, "
            "manual_struts.csv, or pullback folders with labels.npz or measurement tables)",
        )
    return out


def _manual_csvs(root: Path) -> tuple[dict[str, list[Path]], Path]:
    """The manual CSVs by kind under ``root`` (or ``root`` itself, one CSV named on the command
    line), and the folder they are relative to."""
    if not root.is_file():
        return {kind: _find(root, name) for kind, name in MANUAL_FILES.items()}, root
    kinds = [k for k, n in MANUAL_FILES.items() if root.name == n]
    if not kinds:
        raise InputError(root, f"expected one of {', '.join(MANUAL_FILES.values())}")
    return {kinds[0]: [root]}, root.parent


def _add_manual_csv(
    out: dict[str, PullbackData],
    kind: str,
    path: Path,
    default: str | None,
    warnings: list[str] | None,
) -> None:
    """Read one manual CSV of ``kind`` into ``out`` (a pullback's table given twice: an error)."""
    readers = {
        "frames": read_manual_frames,
        "lesions": read_manual_lesions,
        "struts": read_manual_struts,
    }
    for pid, rows in readers[kind](path, default, warnings).items():
        p = out.setdefault(pid, PullbackData(id=pid))
        if getattr(p, kind) is not None:
            raise SchemaError(path, f"pullback {pid!r} already has {kind} from {p.source[kind]}")
        setattr(p, kind, rows)
        p.source[kind] = str(path)


def _add_pullback_folder(
    out: dict[str, PullbackData], pid: str, d: Path, use_tables: bool, measure: tuple
) -> None:
    """Label maps of a manual pullback folder, and what no manual CSV gave from its measurement
    tables (``use_tables``); a folder whose label map is the pullback's only manual source (no
    CSV, no tables or ``use_tables`` false) is measured, ``measure = (geometry, device)``."""
    lab = d / "labels.npz"
    p = out.setdefault(pid, PullbackData(id=pid))
    if lab.exists():
        p.labels = load_labels(lab)
        p.source["labels"] = str(lab)
        p.frame_spacing_mm = p.labels.frame_spacing_mm
    tdir = d if _has_tables(d) else d / "truth"
    from_csv = any(getattr(p, k) is not None for k in ("frames", "lesions", "struts"))
    if use_tables and _has_tables(tdir):
        t = read_tables(tdir, pid)
    elif p.labels is not None and not from_csv:
        t = measure_label_file(lab, pid, *measure, p.labels)
    else:
        if not p.source:
            del out[pid]  # nothing here
        return
    for kind in ("frames", "lesions", "struts"):
        if getattr(p, kind) is None and getattr(t, kind) is not None:
            setattr(p, kind, getattr(t, kind))
            p.source[kind] = t.source[kind]
    p.summary = p.summary or t.summary
    p.frame_spacing_mm = p.frame_spacing_mm or t.frame_spacing_mm
