"""Which pullbacks to process: ``input=`` is a pullback (file or frame folder), a folder of
pullbacks (or a dataset folder as in docs/dataset.md), or a list file (one path per line).

Every candidate becomes a :class:`Task` with a unique, file-system-safe pullback id (never one
of the run-level names, :data:`octseg.infer.safety.RESERVED_IDS`). Files a reader might claim
(``.dcm``, ``.npz``, ``.tif``...) are listed even when they turn out to be unreadable: a corrupt
pullback must be *reported* by the run, never silently skipped; so is a folder in a list file
that holds no pullback. octseg's own output folders (and the outputs an older version wrote into
an input folder) are never taken for pullbacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from octseg.core.errors import InputError
from octseg.infer import manifest as mf
from octseg.infer import safety

# suffixes of single-file pullbacks; a folder of frames is recognised by its content
IMAGE_SUFFIXES = (".dcm", ".dicom", ".npz", ".tif", ".tiff")
FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
LIST_SUFFIXES = (".txt", ".lst", ".list")
IMAGE_STEM = "image"  # dataset layout: <id>/image.npz | image.dcm | image.tif | image/


@dataclass(frozen=True)
class Task:
    """One pullback to segment: its id (the output sub-folder) and its image path; ``error``:
    why it cannot be read, known at discovery (recorded as a failed pullback)."""

    id: str
    path: Path
    error: str | None = None


def _safe_id(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return safe or "pullback"


def _entries(folder: Path) -> list[Path]:
    """The visible entries of ``folder`` without octseg's outputs: sub-folders carrying octseg's
    marker (output folders; never inputs) and, in a folder octseg wrote into (marker or an
    octseg ``done.json``: an older version may have written into an input frame folder), the
    names octseg writes (``labels.npz``, ``overlays/``...)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if safety.is_octseg_output(folder):
        entries = [p for p in entries if p.name not in mf.OUTPUT_NAMES]
    return [p for p in entries if not (p.is_dir() and (p / safety.MARKER_NAME).is_file())]


def _is_frame_folder(path: Path) -> bool:
    """A folder holding >= 1 image frame files and no sub-folders with images: one pullback."""
    try:
        entries = _entries(path)
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
    img = _dataset_image(folder)
    if img is not None:  # one dataset pullback folder (image.* beside labels.npz, truth/ ...)
        return [img]
    entries = _entries(folder)
    if _is_frame_folder(folder) and not any(p.is_dir() for p in entries):
        return [folder]  # the folder itself is one pullback (PNG/TIFF frames)
    found: list[Path] = []
    for child in sorted(entries):
        if child.is_dir():
            img = _dataset_image(child)
            if img is not None:
                found.append(img)
            elif _is_frame_folder(child):
                found.append(child)
        elif child.suffix.lower() in IMAGE_SUFFIXES:
            found.append(child)
    return found


def _from_list(list_file: Path) -> list[Path | Task]:
    """The paths a list file names; a folder holding no pullback becomes a failed :class:`Task`
    (like a missing file, it is reported and the run goes on)."""
    out: list[Path | Task] = []
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
                problem = f"holds no pullback image (line {lineno} of {list_file})"
                out.append(Task("", p, f"{p}: {problem}"))
                continue
            p = img
        out.append(p)
    return out


def unique_tasks(paths: Iterable[Path | Task]) -> list[Task]:
    """Tasks with unique ids (``name``, ``name-2``, ...), in input order, duplicates dropped.

    An id equal to a run-level name (``summary.csv``, ``manifest.json``... in any letter case)
    is taken like a used one: ``summary.csv.npz`` becomes ``summary.csv-2``. Tasks given (failed
    at discovery) keep their error and get an id the same way."""
    tasks: list[Task] = []
    seen_paths: set[Path] = set()
    used: set[str] = set()
    for item in paths:
        p, error = (item.path, item.error) if isinstance(item, Task) else (item, None)
        key = p.resolve() if p.exists() else p.absolute()
        if key in seen_paths:
            continue
        seen_paths.add(key)
        base = _id_for(p)
        tid, n = base, 1
        while tid in used or tid.lower() in safety.RESERVED_IDS:
            n += 1
            tid = f"{base}-{n}"
        used.add(tid)
        tasks.append(Task(tid, p, error))
    return tasks


def discover(inputs: str | Path | Iterable[str | Path]) -> list[Task]:
    """Every pullback named by ``inputs`` (one path or several), in a stable order."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise InputError(None, "no input given (input=<file | folder | list file>)")
    paths: list[Path | Task] = []
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
