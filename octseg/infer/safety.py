"""What infer.py guarantees about its output folder and its settings (docs/inference.md, Safety).

* **Settings** are checked before anything is read or written (:func:`validate_settings`): a
  nonsensical value (``read_chunk=0``, ``overlays.size=0``, ``device=bogus``) is refused at start
  with one line naming the setting and its allowed range.
* **No overlap with the inputs** (:func:`check_no_overlap`): the output folder may not be an
  input, lie inside one or contain one; such a run is refused before anything is written.
* **Only octseg's own files are replaced.** The output folder and each pullback folder carry a
  marker (``.octseg-output.json``) written when octseg creates or adopts them
  (:func:`claim_output`, :func:`prepare_pullback_dir`). A pre-existing folder without the marker
  is adopted only when it holds none of the names octseg would write; a pullback folder holding,
  say, a ``labels.npz`` that octseg did not write fails that pullback and is left untouched.
  Folders written by octseg versions before the marker are recognised by their ``done.json`` /
  ``manifest.json``.
* **One run per output folder** (:func:`lock_output`): an exclusive ``flock`` on
  ``OUT/.octseg-lock``, held for the whole run; a second run exits 2 naming the holder's pid. The
  kernel releases the lock when its holder dies, so a ``kill -9`` leaves no stale lock.
* **Run-level names are reserved** (:data:`RESERVED_IDS`): a pullback whose id would be
  ``summary.csv``, ``manifest.json`` or ``ids_private.csv`` gets the next free id
  (``summary.csv-2``), see :func:`octseg.infer.inputs.unique_tasks`.
* **Optional outputs fail alone** (:func:`optional_output`): DICOM-SEG, overlays and the report
  are recorded as warnings (manifest, ``done.json``, printed); the pullback stays done.
* **Failed pullbacks leave no result-looking files** (:func:`discard_failed`): labels, tables,
  ``seg.dcm``... that a failed pullback left are removed and the manifest lists them; a complete
  earlier result (with its ``done.json``) is kept and the manifest says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError
from octseg.infer import manifest as mf

MARKER_NAME = ".octseg-output.json"
LOCK_NAME = ".octseg-lock"
COHORT_NAME = "summary.csv"
PRIVATE_IDS_NAME = "ids_private.csv"
# files and folders at the top of the output folder; no pullback id may take one of these names
RUN_LEVEL_NAMES = (
    mf.MANIFEST_NAME,
    COHORT_NAME,
    PRIVATE_IDS_NAME,
    mf.RANKS_DIR,
    MARKER_NAME,
    LOCK_NAME,
)
RESERVED_IDS = frozenset(n.lower() for n in RUN_LEVEL_NAMES)  # lower: case-insensitive disks


# ------------------------------------------------------------------------------ settings
def _int_in(name: str, value: Any, lo: int, hi: int | None, what: str) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and value >= lo and (hi is None or value <= hi):
        return
    span = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    raise InputError(None, f"{name}={value!r} is not allowed: {span} ({what})")


def _positive(name: str, value: Any, what: str, none_ok: bool = True) -> None:
    if value is None and none_ok:
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (math.isfinite(v) and v > 0):
        span = "null or a finite number > 0" if none_ok else "a finite number > 0"
        raise InputError(None, f"{name}={value!r} is not allowed: {span} ({what})")


def _choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        shown = " | ".join("null" if a is None else str(a) for a in allowed)
        raise InputError(None, f"{name}={value!r} is not allowed: one of {shown}")


def check_device(name: str, value: Any) -> None:
    """``auto`` or a torch device string whose backend is present on this machine."""
    if value in (None, "", "auto"):
        return
    import torch

    try:
        dev = torch.device(str(value))
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise InputError(
            None, f"{name}={value!r} is not allowed: auto | cpu | cuda | cuda:N | mps | xpu"
        )
    if dev.type == "cpu":
        return
    backend = getattr(torch, dev.type, None)
    available = bool(backend is not None and backend.is_available())
    if not available:
        raise InputError(None, f"{name}={value!r}: no {dev.type} device on this machine (use cpu)")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if dev.index is not None and dev.index >= count:
        raise InputError(
            None, f"{name}={value!r}: this machine has {count} {dev.type} device(s), 0-{count - 1}"
        )


def validate_settings(s: Any) -> None:
    """Refuse nonsensical settings before the first pullback (one line: setting and range)."""
    from octseg.model.predictor import AMP_CHOICES

    _int_in("batch_size", s.batch_size, 1, 65536, "whole frames per forward pass")
    _int_in("read_chunk", s.read_chunk, 1, None, "frames decoded per read")
    _int_in("prefetch", s.prefetch, 0, 1024, "pullbacks opened ahead")
    _int_in("writers", s.writers, 1, 256, "writer threads")
    _int_in("tta.rolls", s.tta_rolls, 1, 360, "test-time shifts along the A-lines")
    _choice("tta.enabled", getattr(s, "tta_enabled", None), (True, False, None))
    _int_in("overlays.size", s.overlay_size, 32, 8192, "overlay display size in pixels")
    frames = s.overlay_frames
    if frames not in (None, "auto"):
        seq = isinstance(frames, (list, tuple))
        if not seq or not all(isinstance(f, int) and not isinstance(f, bool) for f in frames):
            raise InputError(
                None, f"overlays.frames={frames!r} is not allowed: auto or a list of frame numbers"
            )
        if any(f < 0 for f in frames):
            raise InputError(None, f"overlays.frames={frames!r}: frame numbers start at 0")
    _positive("pixel_spacing_mm", s.pixel_spacing_mm, "spacing override in mm")
    _positive("frame_spacing_mm", s.frame_spacing_mm, "spacing override in mm")
    _positive("dist_timeout_min", s.dist_timeout_min, "minutes", none_ok=False)
    _choice("resample", s.resample, ("labels", "probs"))
    _choice("amp", s.amp, (*AMP_CHOICES, None, True, False, "none", "false"))
    for flag in (
        "tta_flip",
        "channels_last",
        "compile",
        "report",
        "dicom_seg",
        "resume",
        "progress",
        "anonymize_ids",
    ):
        _choice(flag.replace("tta_", "tta."), getattr(s, flag), (True, False))
    if s.format is not None:
        from octseg.io import readers

        _choice("format", s.format, (None, *sorted(readers())))
    check_device("device", s.device)
    check_device("geometry_device", s.geometry_device)
    check_ensemble_weights(s.ensemble_weights, s.checkpoint)
    if s.net_alines is not None:
        from octseg.model.predictor import check_net_alines

        check_net_alines(s.net_alines)
    from octseg.infer.workers import worker_count

    worker_count(s.readers, "readers", "cpu", on_cpu=1, minimum=1)
    worker_count(s.render_processes, "render_processes", "cpu", on_cpu=0, minimum=0)


def check_ensemble_weights(weights: Any, checkpoint: Any) -> None:
    """``ensemble_weights``: None, or known class names mapped to one weight per checkpoint of an
    ensemble (:func:`octseg.model.ensemble.normalised_weights`; a shipped ensemble's name counts
    its members; whether the models predict each named class is checked when they load)."""
    if not weights:
        return
    from octseg.model.ensemble import checkpoint_paths, normalised_weights
    from octseg.model.shipped import expand_all

    entries = checkpoint_paths(checkpoint) if checkpoint is not None else ["(the default)"]
    members = expand_all(entries)
    if len(members) < 2:
        raise InputError(
            None,
            "ensemble_weights need an ensemble: checkpoint=[A,B,...] (two or more), or a "
            "shipped ensemble's name (checkpoint=octseg-calcium-v2)",
        )
    try:
        normalised_weights(weights, len(members))
    except InputError as exc:
        if len(members) == len(entries):  # no shipped ensemble's name: the message says enough
            raise
        raise InputError(
            None, f"{exc.problem}, one per member in order: {', '.join(members)}"
        ) from None


# ------------------------------------------------------------------------------ inputs vs output
def input_paths(inputs: Any, tasks: Iterable[Any]) -> list[Path]:
    """Every path the run reads: the ``input=`` items (folders, list files), each pullback and,
    for a dataset layout (``<id>/image.npz``), the pullback's folder (it holds the labels)."""
    from octseg.infer.inputs import IMAGE_STEM

    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs or [])
    paths = [Path(str(i)).expanduser() for i in items]
    for t in tasks:
        paths.append(t.path)
        if t.path.stem == IMAGE_STEM or t.path.name == IMAGE_STEM:
            paths.append(t.path.parent)
    return paths


def check_no_overlap(output: str | Path, inputs: Any, tasks: Iterable[Any]) -> None:
    """Refuse an output folder equal to, inside, or containing anything the run reads."""
    out = Path(str(output)).resolve()  # the pipeline writes to output= as given (no ~ expansion)
    for p in input_paths(inputs, tasks):
        q = p.resolve()
        if out == q:
            how = "is"
        elif q in out.parents:
            how = "lies inside"
        elif out in q.parents:
            how = "contains"
        else:
            continue
        raise InputError(
            output,
            f"output folder {how} the input {p}: octseg never writes into its inputs; "
            "choose a separate output= folder",
        )


# ------------------------------------------------------------------------------ ownership
def _json_dict(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def owns_pullback(folder: Path) -> bool:
    """A pullback folder octseg wrote: its marker, or (older versions) an octseg ``done.json``."""
    if (folder / MARKER_NAME).is_file():
        return True
    done = mf.read_done(folder)
    return done is not None and "fingerprint" in done and isinstance(done.get("outputs"), dict)


def owns_run(folder: Path) -> bool:
    """An output folder octseg wrote: its marker, or (older versions) an octseg manifest."""
    if (folder / MARKER_NAME).is_file():
        return True
    data = _json_dict(folder / mf.MANIFEST_NAME)
    return data is not None and "fingerprint" in data and isinstance(data.get("pullbacks"), dict)


def is_octseg_output(folder: Path) -> bool:
    """True for a run's output folder or a pullback's (never a pullback to read)."""
    try:
        return folder.is_dir() and (owns_pullback(folder) or owns_run(folder))
    except OSError:
        return False


def _mark(folder: Path, kind: str) -> None:
    # existence is what counts: a plain write (no fsync) keeps the per-pullback cost negligible
    (folder / MARKER_NAME).write_text(
        json.dumps({"written_by": "octseg infer", "kind": kind}) + "\n", encoding="utf-8"
    )


def _os_error(path: Path, exc: OSError, doing: str) -> InputError:
    why = exc.strerror or type(exc).__name__
    if isinstance(exc, NotADirectoryError) or exc.errno == errno.ENOTDIR:
        why = "a file is in the way (output= must be a folder)"
    return InputError(path, f"cannot {doing}: {why}")


class OutputLock:
    """The exclusive lock of one run on its output folder (released by :meth:`release`, or by
    the kernel when the process ends, however it ends)."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_output(out_root: Path) -> OutputLock:
    """Take ``OUT/.octseg-lock`` exclusively, or raise naming the pid that holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform: no lock
        return OutputLock(out_root / LOCK_NAME, None)
    path = out_root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _os_error(out_root, exc, "write in the output folder") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        try:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        except OSError:
            holder = "unknown"
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            raise _os_error(out_root, exc, "lock the output folder") from None
        raise InputError(
            out_root,
            f"output folder in use by another octseg infer run (pid {holder}); "
            "wait for it to end or choose another output=",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return OutputLock(path, fd)


def claim_output(output: str | Path) -> OutputLock:
    """Create (or adopt) the output folder and lock it for this run.

    A folder that octseg did not write is adopted only when it holds none of the run-level
    names (``manifest.json``, ``summary.csv``...): those are never written over."""
    out_root = Path(str(output))
    if out_root.exists() and not out_root.is_dir():
        raise InputError(out_root, "output= is a file, not a folder")
    existed = out_root.is_dir()
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(out_root, exc, "create the output folder") from None
    if existed and not owns_run(out_root):
        theirs = [n for n in RUN_LEVEL_NAMES if n != LOCK_NAME and (out_root / n).exists()]
        if theirs:
            raise InputError(
                out_root,
                f"holds {', '.join(theirs)} but no {MARKER_NAME}: not written by octseg, "
                "never written over; choose an empty or new output= folder",
            )
    lock = lock_output(out_root)
    try:
        if not (out_root / MARKER_NAME).is_file():
            _mark(out_root, "run")
    except OSError as exc:
        lock.release()
        raise _os_error(out_root, exc, "write in the output folder") from None
    return lock


def prepare_pullback_dir(out_dir: Path) -> None:
    """Make ``OUT/<id>/`` ready for a fresh result: clean what octseg wrote there before, and
    refuse (this pullback fails, nothing is touched) a folder holding output names octseg did
    not write."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder; octseg does not replace it")
    if out_dir.is_dir() and not owns_pullback(out_dir):
        theirs = sorted(n for n in mf.OUTPUT_NAMES if (out_dir / n).exists())
        if theirs:
            raise InputError(
                out_dir,
                f"holds {', '.join(theirs)} but no {MARKER_NAME}: not written by octseg, "
                "never written over; move it away or choose another output=",
            )
    mf.clean_pullback_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (out_dir / MARKER_NAME).is_file():
        _mark(out_dir, "pullback")


def discard_failed(out_dir: Path) -> dict[str, Any]:
    """After a pullback failed: remove what it left (labels, tables, ``seg.dcm``, overlays
    without a ``done.json``), so that nothing in ``OUT/<id>/`` looks like a result of this run.

    Returns what to add to its manifest record: ``removed_outputs`` (the names removed), or
    ``earlier_result_kept`` when the folder holds a complete result of an earlier run (its
    ``done.json`` names the input it was made from; a pullback failing at read, e.g. a moved
    input, does not destroy it). A folder octseg does not own is left alone."""
    if not out_dir.is_dir() or not owns_pullback(out_dir):
        return {}
    if mf.is_done(out_dir) is not None:
        return {"earlier_result_kept": True}
    removed = sorted(
        c.name for c in out_dir.iterdir() if c.name in mf.OUTPUT_NAMES or c.name.startswith(".tmp-")
    )
    mf.clean_pullback_dir(out_dir)
    rest = [c.name for c in out_dir.iterdir()]
    if rest == [MARKER_NAME] or not rest:
        with contextlib.suppress(OSError):
            (out_dir / MARKER_NAME).unlink()
            out_dir.rmdir()
    return {"removed_outputs": removed} if removed else {}


# ------------------------------------------------------------------------------ optional outputs
def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    msg = text.splitlines()[0] if text else ""
    return (msg if isinstance(exc, InputError) else f"{type(exc).__name__}: {msg}")[:400]


def optional_output(
    what: str, fn: Callable[[], Any], leftovers: Iterable[Path] = ()
) -> tuple[Any, str | None]:
    """Run ``fn`` (one optional output); on failure remove ``leftovers`` and return the
    warning ``"<what> not written: <one line>"`` instead of raising."""
    try:
        return fn(), None
    except Exception as exc:
        for p in leftovers:
            p = Path(p)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
        return None, f"{what} not written: {one_line(exc)}"
