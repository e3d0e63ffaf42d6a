"""Which pullbacks to process: ``input=`` is a pullback (file or frame folder), a folder of
pullbacks (or a dataset folder as in docs/dataset.md), or a list file (one path per line).

Every candidate becomes a :class:`Task` with a unique, file-system-safe pullback id. Files a
reader might claim (``.dcm``, ``.npz``, ``.tif``...) are listed even when they turn out to be
unreadable: a corrupt pullback must be *reported* by the run, never silently skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from octseg.errors import InputError

# suffixes of single-file pullbacks; a folder of frames is recognised by its content
IMAGE_SUFFIXES = (".dcm", ".dicom", ".npz", ".tif", ".tiff")
FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
LIST_SUFFIXES = (".txt", ".lst", ".list")
IMAGE_STEM = "image"  # dataset layout: <id>/image.npz | image.dcm | image.tif | image/


@dataclass(frozen=True)
class Task:
    """One pullback to segment: its id (the output sub-folder) and its image path."""

    id: str
    path: Path


def _safe_id(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return safe or "pullback"


def _is_frame_folder(path: Path) -> bool:
    """A folder holding >= 1 image frame files and no sub-folders with images: one pullback."""
    try:
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    except OSError:
        return False
    frames = [p for p in entries if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
    return len(frames) >= 1 and not any(p.suffix.lower() in (".dcm", ".npz") for p in entries)


def _dataset_image(folder: Path) -> Path | None:
    """The ``image.*`` (or ``image/``) of a dataset pullback folder, if any."""
    cands = sorted(p for p in folder.iterdir() if p.stem == IMAGE_STEM or p.name == IMAGE_STEM)
    for p in cands:
        if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES:
            return p
    return None


def _id_for(path: Path) -> str:
    """``a/b/case7.dcm`` -> ``case7``; ``a/case7/image.npz`` -> ``case7``."""
    stem = path.name if path.is_dir() else path.stem
    if stem == IMAGE_STEM and path.parent.name:
        stem = path.parent.name
    return _safe_id(stem)


def _from_folder(folder: Path) -> list[Path]:
    if _is_frame_folder(folder) and not any(p.is_dir() for p in folder.iterdir()):
        return [folder]  # the folder itself is one pullback (PNG/TIFF frames)
    found: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            img = _dataset_image(child)
            if img is not None:
                found.append(img)
            elif _is_frame_folder(child):
                found.append(child)
        elif child.suffix.lower() in IMAGE_SUFFIXES:
            found.append(child)
    return found


def _from_list(list_file: Path) -> list[Path]:
    out = []
    for lineno, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        p = Path(text).expanduser()
        if not p.is_absolute():
            p = list_file.parent / p
        if not p.exists():
            # keep it: the run records "no such file" for it rather than dropping it
            pass
        if p.is_dir() and not _is_frame_folder(p):
            img = _dataset_image(p)
            if img is None:
                raise InputError(list_file, f"line {lineno}: {p} holds no pullback image")
            p = img
        out.append(p)
    return out


def unique_tasks(paths: Iterable[Path]) -> list[Task]:
    """Tasks with unique ids (``name``, ``name-2``, ...), in input order, duplicates dropped."""
    tasks: list[Task] = []
    seen_paths: set[Path] = set()
    used: set[str] = set()
    for p in paths:
        key = p.resolve() if p.exists() else p.absolute()
        if key in seen_paths:
            continue
        seen_paths.add(key)
        base = _id_for(p)
        tid, n = base, 1
        while tid in used:
            n += 1
            tid = f"{base}-{n}"
        used.add(tid)
        tasks.append(Task(tid, p))
    return tasks


def discover(inputs: str | Path | Iterable[str | Path]) -> list[Task]:
    """Every pullback named by ``inputs`` (one path or several), in a stable order."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise InputError(None, "no input given (input=<file | folder | list file>)")
    paths: list[Path] = []
    for item in items:
        p = Path(str(item)).expanduser()
        if not p.exists():
            raise InputError(p, "no such file or folder")
        if p.is_dir():
            found = _from_folder(p)
            if not found:
                raise InputError(p, "folder holds no pullback images (.dcm, .npz, .tif, frames)")
            paths.extend(found)
        elif p.suffix.lower() in LIST_SUFFIXES:
            found = _from_list(p)
            if not found:
                raise InputError(p, "list file names no pullbacks")
            paths.extend(found)
        else:
            paths.append(p)
    return unique_tasks(paths)
