"""Run bookkeeping: per-pullback done markers and the run manifest.

A pullback's outputs live in ``OUT/<id>/``. Every output is written atomically (octseg.core.atomic);
the **done marker** ``OUT/<id>/done.json`` is written last and lists every output with its size,
plus a fingerprint of the model and settings that produced them and the identity of the input
(:func:`source_identity`: resolved path, size and mtime_ns - or only a digest of them when ids are
anonymised). A pullback counts as done only when the marker is readable, its fingerprint and input
identity match the current run and every listed file exists with the recorded size. Anything else
(no marker after a ``kill -9``, a missing file, another checkpoint, another or a modified input
file under the same id) is redone from scratch.

``OUT/manifest.json`` records every pullback of the run: status (``done`` | ``failed`` |
``pending`` - not processed yet, only while a single-process run is going; at the end a pullback
without a record is ``failed``), ``skipped`` (done by an earlier run), the error message, frame
count and timings. With several ranks each writes ``OUT/.ranks/rank-<r>.json`` as it goes; rank 0
merges them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from octseg.core import atomic

DONE_NAME = "done.json"
MANIFEST_NAME = "manifest.json"
RANKS_DIR = ".ranks"
# every file/folder name inference may write into a pullback folder (cleaned before a redo)
OUTPUT_NAMES = (
    "labels.npz",
    "seg.dcm",
    "frames.csv",
    "struts.csv",
    "summary.json",
    "report.html",
    "overlays",
    DONE_NAME,
)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file (hex, first 16 characters)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def checkpoint_digest(paths: list[Path], ordered: bool = False) -> str:
    """The checkpoint file's digest; an ensemble's (several files): one over its members'
    digests, whatever their order (the mean does not depend on it) unless ``ordered`` (member
    weights given per class follow the members' order: ``ensemble_weights``)."""
    digests = [file_digest(p) for p in paths]
    digests = digests if ordered else sorted(digests)
    if len(digests) == 1:
        return digests[0]
    return "ensemble:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def fingerprint(checkpoint_digest: str, settings: Mapping[str, Any]) -> str:
    """Identity of "what produced these outputs": the model and the settings that change them."""
    blob = json.dumps({"ckpt": checkpoint_digest, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def source_identity(path: str | Path, anonymous: bool = False) -> dict[str, Any] | None:
    """What identifies an input's content cheaply: resolved path, size and ``mtime_ns`` (a frame
    folder: the number of files, their total size and the newest mtime). None if unreadable.

    ``anonymous``: only a digest of those values (no path in the outputs)."""
    try:
        p = Path(path).resolve()
        st = p.stat()
        if p.is_dir():
            files = [c.stat() for c in p.iterdir() if c.is_file()]
            size = sum(f.st_size for f in files)
            mtime = max([f.st_mtime_ns for f in files] + [st.st_mtime_ns])
            ident = {
                "path": str(p),
                "size": int(size),
                "mtime_ns": int(mtime),
                "n_files": len(files),
            }
        else:
            ident = {"path": str(p), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}
    except OSError:
        return None
    if anonymous:
        blob = json.dumps(ident, sort_keys=True).encode()
        return {"digest": hashlib.sha256(blob).hexdigest()}
    return ident


def read_done(out_dir: Path) -> dict[str, Any] | None:
    try:
        with open(out_dir / DONE_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(
    out_dir: Path, fp: str | None = None, source: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The done marker if ``out_dir`` holds a complete result (of fingerprint ``fp`` and, when
    given, made from the input with identity ``source``, see :func:`source_identity`), else None."""
    data = read_done(out_dir)
    if data is None or not isinstance(data.get("outputs"), dict):
        return None
    if fp is not None and data.get("fingerprint") != fp:
        return None
    if source is not None and data.get("input") != dict(source):
        return None
    for rel, size in data["outputs"].items():
        p = out_dir / rel
        try:
            if p.stat().st_size != int(size):
                return None
        except (OSError, ValueError, TypeError):
            return None
    return data


def clean_pullback_dir(out_dir: Path) -> None:
    """Remove a partial result: the marker first, then known outputs and temporary files.

    Only names inference writes are removed, so a mistaken output folder loses nothing else.
    """
    with contextlib.suppress(FileNotFoundError):
        (out_dir / DONE_NAME).unlink()
    if not out_dir.is_dir():
        return
    for child in out_dir.iterdir():
        if child.name in OUTPUT_NAMES or child.name.startswith(".tmp-"):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()


def write_done(out_dir: Path, outputs: Iterable[Path], info: Mapping[str, Any]) -> dict[str, Any]:
    """Write the done marker last, listing each output (relative path -> size in bytes)."""
    listing = {}
    for p in outputs:
        p = Path(p)
        listing[p.relative_to(out_dir).as_posix()] = p.stat().st_size
    data = {**info, "outputs": listing, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic.write_json(out_dir / DONE_NAME, data)
    return data


class RankManifest:
    """Records of one rank, rewritten atomically after every pullback."""

    def __init__(self, out_root: Path, rank: int, world_size: int, header: Mapping[str, Any]):
        self.path = out_root / RANKS_DIR / f"rank-{rank}.json"
        self.rank = rank
        self.world_size = world_size
        self.header = dict(header)
        self.records: dict[str, dict[str, Any]] = {}

    def record(self, pullback_id: str, rec: Mapping[str, Any]) -> None:
        self.records[pullback_id] = {**rec, "rank": self.rank}
        self.flush()

    def flush(self) -> None:
        atomic.write_json(
            self.path,
            {"header": self.header, "world_size": self.world_size, "pullbacks": self.records},
        )


def merge_manifests(
    out_root: Path,
    order: list[str],
    header: Mapping[str, Any],
    world_size: int,
    final: bool = True,
) -> dict[str, Any]:
    """Merge the rank files into ``OUT/manifest.json`` (pullbacks in input order).

    ``final=False`` (a run still going): pullbacks without a record yet are ``pending``; at the
    end (``final=True``) a missing record means the worker stopped: ``failed``."""
    recs: dict[str, dict[str, Any]] = {}
    for r in range(world_size):
        p = out_root / RANKS_DIR / f"rank-{r}.json"
        try:
            with open(p, encoding="utf-8") as fh:
                recs.update(json.load(fh).get("pullbacks", {}))
        except (OSError, ValueError):
            continue
    pullbacks = {}
    missing = (
        {"status": "failed", "error": "no record: the worker processing it stopped"}
        if final
        else {"status": "pending"}
    )
    for pid in order:
        pullbacks[pid] = recs.get(pid, dict(missing))
    n_failed = sum(1 for r in pullbacks.values() if r.get("status") == "failed")
    n_pending = sum(1 for r in pullbacks.values() if r.get("status") == "pending")
    n_done = sum(1 for r in pullbacks.values() if r.get("status") == "done")
    frames = sum(int(r.get("n_frames") or 0) for r in pullbacks.values() if not r.get("skipped"))
    manifest = {
        **header,
        "world_size": world_size,
        "n_pullbacks": len(order),
        "n_done": n_done,
        "n_failed": n_failed,
        "n_pending": n_pending,
        "n_skipped": sum(1 for r in pullbacks.values() if r.get("skipped")),
        "frames_processed": frames,
        "pullbacks": pullbacks,
    }
    atomic.write_json(out_root / MANIFEST_NAME, manifest)
    return manifest
