"""What an opened folder holds: the pullbacks to review, where their labels and images are, and
the path rules (nothing outside the opened folders is read as a pullback or written).

Two layouts:

- an **inference output** (``infer.py``, docs/inference.md): ``manifest.json`` lists the
  pullbacks; labels are ``OUT/<id>/labels.npz``; the image comes from ``--data DATASET``
  (``DATASET/<id>/image.*``) or else from the source path recorded in ``done.json`` / the manifest
  / ``ids_private.csv`` (anonymised ids);
- a **dataset** (docs/dataset.md): ``DATASET/<id>/image.*`` + ``labels.npz``.

Corrections are saved to ``<opened>/_reviewed/<id>/`` (see :mod:`octseg.review.save`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError

MANIFEST = "manifest.json"
PRIVATE_IDS = "ids_private.csv"  # written by infer.py with anonymize_ids=true
REVIEWED_DIR = "_reviewed"
CORRECTED_DIR = "_corrected"


@dataclass
class Entry:
    id: str
    folder: Path  # the pullback folder inside the opened root (labels live here)
    labels_path: Path | None
    image_path: Path | None
    status: str = "done"
    error: str | None = None
    model: dict[str, Any] = field(default_factory=dict)  # what produced the labels

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "error": self.error}


def inside(root: Path, path: Path) -> Path | None:
    """``path`` with symlinks resolved if it lies inside ``root`` (resolved), else None."""
    try:
        real = path.resolve(strict=False)
        real.relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    return real


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _dataset_images(data: Path | None) -> dict[str, Path]:
    if data is None:
        return {}
    from octseg.io.dataset import list_pullbacks

    return {e.id: e.image_path for e in list_pullbacks(data)}


def _private_sources(root: Path) -> dict[str, str]:
    """``OUT/ids_private.csv`` (``anonymize_ids=true``): pullback id -> source image."""
    import csv

    path = root / PRIVATE_IDS
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {r["pullback_id"]: r["source"] for r in csv.DictReader(fh) if r.get("source")}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return {}


def _inference_entries(root: Path, manifest: dict[str, Any], data: Path | None) -> list[Entry]:
    pbs = manifest.get("pullbacks")
    if not isinstance(pbs, dict):
        raise InputError(root / MANIFEST, "manifest has no 'pullbacks' object")
    # infer.py's merged manifest carries the run header at the top level (older: "header")
    header = manifest.get("header") if isinstance(manifest.get("header"), dict) else manifest
    model = {k: header.get(k) for k in ("checkpoint", "fingerprint") if header.get(k)}
    images = _dataset_images(data)
    private = _private_sources(root)
    entries = []
    for pid, rec in pbs.items():
        rec = rec if isinstance(rec, dict) else {}
        folder = inside(root, root / str(pid))
        if folder is None or "/" in str(pid) or str(pid).startswith("."):
            entries.append(
                _failed(root, str(pid), "pullback folder lies outside the opened folder")
            )
            continue
        done = read_json_object(folder / "done.json") or {}
        src = (
            images.get(str(pid)) or done.get("source") or rec.get("source") or private.get(str(pid))
        )
        status = str(rec.get("status", "unknown"))
        labels = folder / "labels.npz"
        if labels.exists() and inside(root, labels) is None:
            entries.append(_failed(root, str(pid), "labels.npz lies outside the opened folder"))
            continue
        e = Entry(str(pid), folder, labels if labels.exists() else None, Path(src) if src else None)
        e.status, e.error = status, rec.get("error")
        e.model = {
            **model,
            **({"fingerprint": done["fingerprint"]} if "fingerprint" in done else {}),
        }
        entries.append(e)
    return entries


def _failed(root: Path, pid: str, msg: str) -> Entry:
    return Entry(pid, root, None, None, status="error", error=msg)


def _dataset_entries(root: Path) -> list[Entry]:
    from octseg.io.dataset import list_pullbacks

    entries = []
    for e in list_pullbacks(root):
        folder = inside(root, root / e.id)
        if folder is None:
            entries.append(_failed(root, e.id, "pullback folder lies outside the opened folder"))
            continue
        labels = e.labels_path
        if labels is not None and inside(root, labels) is None:
            entries.append(_failed(root, e.id, "labels.npz lies outside the opened folder"))
            continue
        entry = Entry(e.id, folder, labels, e.image_path)
        entry.model = {"labels": "dataset labels.npz"}
        if e.labels_path is None:
            entry.status, entry.error = "unlabelled", None
        entries.append(entry)
    return entries


def open_folder(root: str | Path, data: str | Path | None = None) -> tuple[str, list[Entry]]:
    """The layout of ``root`` (``"inference"`` or ``"dataset"``) and its pullbacks."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(root, "no such folder")
    data_path = Path(data).resolve() if data is not None else None
    if data_path is not None and not data_path.is_dir():
        raise InputError(data_path, "--data: no such dataset folder")
    if (root / MANIFEST).exists():
        manifest = read_json_object(root / MANIFEST)
        if manifest is None:
            raise InputError(root / MANIFEST, "not a readable JSON object")
        return "inference", _inference_entries(root, manifest, data_path)
    entries = _dataset_entries(root)
    if not entries:
        raise InputError(root, "neither an inference output (manifest.json) nor a dataset")
    return "dataset", entries
