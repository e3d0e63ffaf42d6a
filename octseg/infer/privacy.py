"""Anonymised pullback ids (``anonymize_ids=true``): ids in input order, the one private file
that links them to the sources, and error messages (one line each) and report facts that never
name a source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

from octseg.core.errors import OctsegError
from octseg.infer import safety
from octseg.infer.inputs import Task

PRIVATE_IDS_NAME = safety.PRIVATE_IDS_NAME


def anonymize_tasks(tasks: list[Task]) -> list[Task]:
    """Ids ``pullback-0001``, ``pullback-0002``... in input order (file stems of PACS exports
    often carry the patient's name)."""
    width = max(4, len(str(len(tasks))))
    return [
        dataclasses.replace(t, id=f"pullback-{i:0{width}d}") for i, t in enumerate(tasks, start=1)
    ]


def write_private_ids(out_root: Path, tasks: list[Task]) -> Path:
    """``OUT/ids_private.csv``: id -> source path, the only output that links the two."""
    import csv
    import io

    from octseg.core import atomic

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["pullback_id", "source"])
    for t in tasks:
        w.writerow([t.id, str(t.path.resolve() if t.path.exists() else t.path.absolute())])
    path = out_root / PRIVATE_IDS_NAME
    atomic.write_text(path, buf.getvalue())
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return path


def scrub(text: str, task: Task | None, anonymous: bool) -> str:
    """With anonymised ids, an error message names the pullback id, never the source path."""
    if not anonymous or task is None or not text:
        return text
    forms = {str(task.path), str(task.path.absolute()), task.path.name}
    with contextlib.suppress(OSError):
        forms.add(str(task.path.resolve()))
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, f"<{task.id}>")
    return text


def public_info(info: dict[str, Any], task: Task, anonymous: bool) -> dict[str, Any]:
    """A pullback's facts for its report: without the source and, with anonymised ids,
    without any text that names the source file."""
    info = {k: v for k, v in info.items() if k != "source"}
    if not anonymous:
        return info
    names = {str(task.path), task.path.name, task.path.stem}
    return {
        k: v
        for k, v in info.items()
        if not (isinstance(v, str) and any(n and n in v for n in names))
    }


def one_line(exc: BaseException, task: Task | None = None) -> str:
    """An error as one manifest line: octseg's own errors as they are, others with the source
    and the exception type (at most 500 characters)."""
    if isinstance(exc, OctsegError):
        return str(exc)
    where = f"{task.path}: " if task is not None else ""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{where}{type(exc).__name__}: {msg}"[:500]
