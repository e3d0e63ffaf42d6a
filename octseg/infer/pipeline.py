"""Batch inference over many pullbacks: read -> segment -> measure -> write, overlapped.

Three stages run at once so the model never waits:

* a **reader thread** opens the next pullbacks (any reader, octseg.io), resamples every frame onto
  the network's polar grid, and queues them (``prefetch`` pullbacks ahead);
* the **main thread** runs the network over whole frames in batches (octseg.model.predictor) and
  maps the result back to the input's space;
* a **writer pool** (``writers`` threads) measures (octseg.geometry.measure_labels) and writes
  every output atomically: ``labels.npz``, ``seg.dcm`` (DICOM input), ``frames.csv`` /
  ``struts.csv`` / ``summary.json``, ``overlays/*.png``, ``report.html`` and, last, ``done.json``.

A failing pullback (unreadable, corrupt, missing spacing, ...) is recorded in the manifest and the
run goes on; a failing optional output (DICOM-SEG, overlays, report) is a warning, the pullback
stays done. What the run guarantees about its output folder (no overlap with the inputs, one run
at a time, only octseg's own files replaced) is in :mod:`octseg.infer.safety`. Sharding: under
``torchrun`` each rank takes ``tasks[rank::world_size]``; rank 0 merges the manifest and writes
the cohort ``summary.csv`` after a barrier.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from octseg.core.errors import InputError, OctsegError
from octseg.infer import manifest as mf
from octseg.infer import safety
from octseg.infer.inputs import Task, discover
from octseg.infer.settings import InferSettings

# ------------------------------------------------------------------------------ privacy
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


def _scrub(text: str, task: Task | None, anonymous: bool) -> str:
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


# ------------------------------------------------------------------------------ distributed
def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's variables, or derived from SLURM's."""
    from octseg.core.distributed import export_slurm_env

    export_slurm_env()
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def _init_dist(world: int, device: Any, timeout_min: float) -> bool:
    if world <= 1:
        return False
    import torch
    import torch.distributed as dist

    device = torch.device(device)
    device_type = device.type
    if device_type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # NCCL uses the current device of each rank
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_min))
    return True


def _one_line(exc: BaseException, task: Task | None = None) -> str:
    if isinstance(exc, OctsegError):
        return str(exc)
    where = f"{task.path}: " if task is not None else ""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{where}{type(exc).__name__}: {msg}"[:500]


# ------------------------------------------------------------------------------ one pullback
LABELS_ZLIB_LEVEL = 1  # label maps are long runs of a few values: level 1 is ~2.5x faster than
# zlib's default 6 for files ~2x larger (still ~1/60 of the raw size)


def save_labels_fast(path: Path, lf: Any, level: int = LABELS_ZLIB_LEVEL) -> None:
    """:func:`octseg.io.labels.save_labels` with a fast zlib level (same schema and arrays)."""
    from octseg.io.labels import save_labels

    save_labels(path, lf, compress_level=level)


def warm_up() -> None:
    """Import the post-processing modules and draw one tiny figure (matplotlib's imports and
    font cache cost ~0.5 s): run in the writer pool while the first pullback is read and
    segmented, so that the first pullback's outputs do not pay for it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    import octseg.geometry  # noqa: F401
    import octseg.report.overlay  # noqa: F401
    import octseg.report.pullback  # noqa: F401

    fig = Figure(figsize=(1, 1), dpi=20)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, "octseg ·")
    fig.savefig(__import__("io").BytesIO(), format="png")


def render_outputs(
    out_dir: str,
    jobs: list[dict[str, Any]],
    size: int,
    report: dict[str, Any] | None,
) -> dict[str, Any]:
    """Draw and write the overlays, then the report that embeds them (picklable arguments: runs
    in a render process or in the writer thread). Both are optional outputs: a failure is
    returned as a warning, never raised. Returns ``{"overlays": [written], "report": bool,
    "warnings": [...]}``."""
    from octseg.report.overlay import write_overlay_jobs
    from octseg.report.pullback import write_report

    out = Path(out_dir)
    warnings = []
    overlays, warn = safety.optional_output(
        "overlays", lambda: write_overlay_jobs(out, jobs, size=size), [out / "overlays"]
    )
    if warn:
        warnings.append(warn)
    overlays = overlays or []
    wrote_report = False
    if report is not None:
        _, warn = safety.optional_output(
            "report.html",
            lambda: write_report(out / "report.html", overlays=overlays, **report),
            [out / "report.html"],
        )
        wrote_report = warn is None
        if warn:
            warnings.append(warn)
    return {"overlays": overlays, "report": wrote_report, "warnings": warnings}


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Render worker: end when the inference process is gone (a ``kill -9`` leaves no orphans)."""
    while True:
        time.sleep(every_s)
        if os.getppid() != parent:
            os._exit(0)


def _render_init() -> None:
    import torch

    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="octseg-parent-watch"
    ).start()
    torch.set_num_threads(1)
    warm_up()


class Renderer:
    """Where overlays and reports are drawn: in the writer threads (``processes=0``), or in a pool
    of worker processes. matplotlib holds the GIL while it draws (~0.1 s per overlay), which
    caps a single process at a few hundred frames/s however many cores and writer threads it has;
    render processes lift that cap on machines with cores to spare (a GPU server). Workers are
    spawned (not forked: the parent runs torch threads), import matplotlib once, and use one
    torch thread each. If the pool breaks (a worker killed), drawing goes on in the threads."""

    def __init__(self, processes: int = 0):
        self.processes = max(0, int(processes))
        self._lock = threading.Lock()
        self.pool = None
        if self.processes:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_render_init,
            )
            for _ in range(self.processes):  # start (spawn, import) the workers now
                self.pool.submit(int)

    def run(self, fn: Any, *args: Any) -> Any:
        from concurrent.futures.process import BrokenProcessPool

        pool = self.pool
        if pool is None:
            return fn(*args)
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self.pool is pool:
                    print(
                        "octseg infer: a render process died; drawing in threads from now on",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.pool = None
            return fn(*args)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def finish_pullback(
    task: Task,
    out_dir: Path,
    pullback: Any,
    labels: np.ndarray,
    settings: InferSettings,
    geometry: Any,
    model_info: Mapping[str, Any],
    fp: str,
    timings: dict[str, float],
    renderer: Renderer | None = None,
) -> dict[str, Any]:
    """Measure, write every output atomically, and mark the pullback done (writer thread).

    Overlays and the report are drawn by ``renderer`` (in this thread when None)."""
    from octseg.core.classes import CLASS_NAMES
    from octseg.geometry import measure_labels
    from octseg.io.labels import LabelFile
    from octseg.report.overlay import overlay_jobs

    t0 = time.perf_counter()
    outputs: list[Path] = []
    if settings.postprocess:  # anatomical post-processing of the predicted labels, in place
        from octseg.model.postprocess import postprocess_labels

        cath_c = pullback.catheter_center if pullback.space == "cartesian" else None
        cath_r = getattr(geometry, "catheter_radius_mm", 0.45)
        args = (pullback.space, pullback.pixel_spacing_mm, cath_c, settings.postprocess, cath_r)
        labels = postprocess_labels(labels, *args, device=settings.geometry_device)
        timings["postprocess_s"] = time.perf_counter() - t0
    lf = LabelFile(
        labels=labels,
        space=pullback.space,
        pixel_spacing_mm=pullback.pixel_spacing_mm,
        frame_spacing_mm=pullback.frame_spacing_mm,
        catheter_center=pullback.catheter_center if pullback.space == "cartesian" else None,
    )
    # the label file is compressed on its own thread (zlib releases the GIL) while the
    # geometry measures the same labels
    lab_err: list[BaseException] = []
    lab_s: list[float] = []

    def _write_labels() -> None:
        t = time.perf_counter()
        try:
            save_labels_fast(out_dir / "labels.npz", lf)
        except BaseException as exc:  # re-raised below, in this thread
            lab_err.append(exc)
        lab_s.append(time.perf_counter() - t)

    lab_thread = threading.Thread(target=_write_labels, name="octseg-labels", daemon=True)
    lab_thread.start()
    outputs.append(out_dir / "labels.npz")
    warnings: list[str] = []  # optional outputs that could not be written
    if settings.dicom_seg and pullback.format == "dicom":
        from octseg.io import dicomseg

        seg = out_dir / "seg.dcm"
        _, warn = safety.optional_output(
            "DICOM-SEG (seg.dcm)",
            lambda: dicomseg.write_dicom_seg(
                seg,
                labels,
                pullback.source,
                {c: CLASS_NAMES[c] for c in model_info.get("classes") or CLASS_NAMES},
                pixel_spacing_mm=pullback.pixel_spacing_mm,
                frame_spacing_mm=pullback.frame_spacing_mm,
            ),
            [seg],
        )
        if warn:
            warnings.append(warn)
        else:
            outputs.append(seg)
    t1 = time.perf_counter()
    try:
        m = measure_labels(lf, settings=geometry, device=settings.geometry_device)
        t_measured = time.perf_counter()
    finally:
        lab_thread.join()
    if lab_err:
        raise lab_err[0]
    t2 = time.perf_counter()
    m.write(out_dir)
    outputs += [out_dir / "frames.csv", out_dir / "struts.csv", out_dir / "summary.json"]
    jobs, warn = safety.optional_output(
        "overlays",
        lambda: overlay_jobs(
            pullback,
            labels,
            m.frames,
            m.struts,
            m.summary,
            requested=settings.overlay_frames,
            min_struts=getattr(geometry, "min_struts", 3),
        ),
    )
    if warn:
        warnings.append(warn)
    report = None
    if settings.report:
        info = pullback.describe()
        info.pop("source", None)
        if settings.anonymize_ids:  # nothing that names the source file
            names = {str(task.path), task.path.name, task.path.stem}
            info = {
                k: v
                for k, v in info.items()
                if not (isinstance(v, str) and any(n and n in v for n in names))
            }
        report = dict(
            pullback_id=task.id,
            info=info,
            frames=m.frames,
            struts=m.struts,
            summary=m.summary,
            model=dict(model_info),
            malapposition_threshold_mm=getattr(geometry, "strut_threshold_mm", None),
        )
    renderer = renderer or Renderer(0)
    rendered, warn = safety.optional_output(
        "overlays and report",
        lambda: renderer.run(
            render_outputs, str(out_dir), jobs or [], settings.overlay_size, report
        ),
        [out_dir / "overlays", out_dir / "report.html"],
    )
    rendered = rendered or {"overlays": [], "report": False, "warnings": [warn]}
    warnings += rendered["warnings"]
    outputs += [Path(o["path"]) for o in rendered["overlays"]]
    if rendered["report"]:
        outputs.append(out_dir / "report.html")
    warnings = [_scrub(w, task, settings.anonymize_ids) for w in warnings]
    t3 = time.perf_counter()
    timings.update(  # the label file is written while the geometry measures
        write_labels_s=(t1 - t0) + sum(lab_s),
        measure_s=t_measured - t1,
        write_outputs_s=t3 - t2,
        finish_s=t3 - t0,
    )
    mf.write_done(
        out_dir,
        outputs,
        {
            "id": task.id,
            **({} if settings.anonymize_ids else {"source": str(task.path)}),
            "input": mf.source_identity(task.path, anonymous=settings.anonymize_ids),
            "fingerprint": fp,
            "n_frames": int(labels.shape[0]),
            "frame_spacing_mm": pullback.frame_spacing_mm,
            "timing": {k: round(v, 4) for k, v in timings.items()},
            **({"warnings": warnings} if warnings else {}),
        },
    )
    res: dict[str, Any] = {"outputs": [p.relative_to(out_dir).as_posix() for p in outputs]}
    if warnings:
        res["warnings"] = warnings
    return res


# ------------------------------------------------------------------------------ the run
def worker_count(value: Any, name: str, device: Any, on_cpu: int, minimum: int) -> int:
    """A ``readers`` / ``render_processes`` setting: an integer >= ``minimum``, or ``auto``:
    ``on_cpu`` on the CPU (the model needs the cores), else a quarter of the cores up to 4."""
    if value in (None, "", "auto"):
        if getattr(device, "type", str(device)) == "cpu":
            return on_cpu
        return max(1, min(4, (os.cpu_count() or 1) // 4))
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = minimum - 1
    if n < minimum:
        raise InputError(None, f"{name} must be 'auto' or an integer >= {minimum}, got {value!r}")
    return n


def n_readers(settings: InferSettings, device: Any) -> int:
    """Reader threads (decoding releases the GIL: zlib, JPEG, PNG)."""
    return worker_count(settings.readers, "readers", device, on_cpu=1, minimum=1)


def n_render_processes(settings: InferSettings, device: Any) -> int:
    """Render processes (0: draw in the writer threads)."""
    return worker_count(settings.render_processes, "render_processes", device, 0, 0)


class _Reader:
    """Reader threads: each opens the next pullback, hands it to the model at once as a
    :class:`~octseg.model.predictor.GridStream`, then fills that stream chunk by chunk (decoding
    and resampling onto the net grid), so the model starts on the first frames while the rest are
    decoded. At most ``prefetch + 1`` pullbacks are open at a time (the main thread releases a slot
    when it has segmented one); each thread puts ``None`` on the queue when it runs out of work."""

    def __init__(self, tasks, out_root, predictor, settings, fp, n_threads: int = 1):
        self.tasks, self.out_root, self.predictor, self.s, self.fp = (
            tasks,
            out_root,
            predictor,
            settings,
            fp,
        )
        self.q: queue.Queue = queue.Queue()
        self.slots = threading.BoundedSemaphore(max(1, settings.prefetch) + 1)
        self.stop = threading.Event()
        self.n_threads = max(1, int(n_threads))
        self._next = iter(tasks)
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, daemon=True, name=f"octseg-reader-{i}")
            for i in range(self.n_threads)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _take(self) -> Task | None:
        with self._lock:
            return next(self._next, None)

    def _acquire(self) -> bool:
        while not self.stop.is_set():
            if self.slots.acquire(timeout=0.2):
                return True
        return False

    def release(self) -> None:
        """A pullback handed over as ``ok`` is finished with (segmented or failed)."""
        self.slots.release()

    def _run(self) -> None:
        from octseg.io import read_pullback

        try:
            while not self.stop.is_set():
                task = self._take()
                if task is None:
                    break
                if task.error:  # known unreadable at discovery (a list file's empty folder)
                    self.q.put(("fail", task, {"error": task.error, "stage": "read"}))
                    continue
                done = None
                if self.s.resume:
                    ident = mf.source_identity(task.path, anonymous=self.s.anonymize_ids)
                    if ident is not None:
                        done = mf.is_done(self.out_root / task.id, self.fp, ident)
                if done is not None:
                    self.q.put(("skip", task, done))
                    continue
                if not self._acquire():
                    break
                t0 = time.perf_counter()
                try:
                    pb = read_pullback(
                        task.path,
                        pixel_spacing_mm=self.s.pixel_spacing_mm,
                        frame_spacing_mm=self.s.frame_spacing_mm,
                        format=self.s.format,
                    )
                    if pb.n_frames < 1:
                        raise InputError(task.path, "pullback has no frames")
                    self.predictor.prepare(pb)
                    stream = self.predictor.stream(pb)
                except Exception as exc:  # one bad pullback never stops the run
                    self.release()
                    err = _scrub(_one_line(exc, task), task, self.s.anonymize_ids)
                    self.q.put(("fail", task, {"error": err, "stage": "read"}))
                    continue
                self.q.put(("ok", task, (pb, stream, t0)))
                try:
                    self.predictor.to_grid(pb, chunk=self.s.read_chunk, out=stream)
                except Exception as exc:  # raised in the consumer by stream.wait()
                    stream.fail(exc)
        finally:
            self.q.put(None)


def _claim_output(output: str, rank: int, distributed: bool) -> safety.OutputLock | None:
    """Rank 0 creates (or adopts) and locks the output folder (:func:`safety.claim_output`);
    every rank learns whether the run may go on before it writes anything."""
    lock, err = None, None
    if rank == 0:
        try:
            lock = safety.claim_output(output)
        except OctsegError as exc:
            err = exc
    if distributed:
        import torch.distributed as dist

        box = [None if err is None else str(err)]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None and err is None:
            err = InputError(None, box[0])
    if err is not None:
        raise err
    return lock


def run_inference(settings: InferSettings, predictor: Any = None) -> dict[str, Any]:
    """Run the whole job; returns the merged manifest (rank 0) or this rank's summary.

    ``predictor``: an already built :class:`~octseg.model.predictor.Predictor` (programmatic use,
    benchmarks); by default it is rebuilt from ``settings.checkpoint``.
    """
    import torch
    from tqdm.auto import tqdm

    from octseg.geometry import GeometrySettings
    from octseg.infer.cohort import write_cohort_summary
    from octseg.model.postprocess import PostprocessSettings
    from octseg.model.predictor import Predictor, pick_device

    safety.validate_settings(settings)  # nothing read or written yet
    geometry = GeometrySettings.from_dict(settings.geometry or {})
    PostprocessSettings.from_value(settings.postprocess)  # a bad setting fails before any work
    rank, world, local_rank = dist_env()
    device = predictor.device if predictor is not None else pick_device(settings.device, local_rank)
    distributed = _init_dist(world, device, settings.dist_timeout_min)
    show = bool(settings.progress)
    out_lock: safety.OutputLock | None = None
    try:
        tasks = discover(settings.input)
        safety.check_no_overlap(settings.output, settings.input, tasks)
        out_lock = _claim_output(settings.output, rank, distributed)
        out_root = Path(settings.output)
        if settings.anonymize_ids:
            tasks = anonymize_tasks(tasks)
            if rank == 0:
                write_private_ids(out_root, tasks)
        if settings.geometry_device in (None, "", "auto"):  # the model's device
            settings = dataclasses.replace(settings, geometry_device=str(device))
        t_load = time.perf_counter()
        predictor = predictor or Predictor.from_checkpoint(
            settings.checkpoint,
            device=device,
            batch_size=settings.batch_size,
            amp=settings.amp,
            channels_last=settings.channels_last,
            compile=settings.compile,
            tta_rolls=settings.tta_rolls,
            tta_flip=settings.tta_flip,
            resample=settings.resample,
        )
        model_info = predictor.describe()
        ck = Path(str(settings.checkpoint))
        digest = mf.file_digest(ck) if ck.is_file() else f"object:{type(predictor.model).__name__}"
        fp = mf.fingerprint(digest, settings.output_affecting())
        header = {
            "checkpoint": str(settings.checkpoint),
            "anonymize_ids": bool(settings.anonymize_ids),
            "fingerprint": fp,
            "model": model_info,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "model_load_s": round(time.perf_counter() - t_load, 3),
        }
        mine = tasks[rank::world]
        rman = mf.RankManifest(out_root, rank, world, header)
        rman.flush()
        lock = threading.Lock()
        stats = {"frames": 0, "model_s": 0.0, "failed": 0}

        overall = tqdm(
            total=len(mine),
            desc=f"pullbacks (rank {rank})" if world > 1 else "pullbacks",
            unit="pb",
            position=0,
            disable=not show,
            dynamic_ncols=True,
        )

        def record(task: Task, rec: dict[str, Any]) -> None:
            with lock:
                if rec.get("error"):
                    rec = {**rec, "error": _scrub(str(rec["error"]), task, settings.anonymize_ids)}
                if rec.get("status") != "done":
                    stats["failed"] += 1
                    # nothing that looks like a result of this run stays behind
                    rec = {**rec, **safety.discard_failed(out_root / task.id)}
                    overall.write(f"FAILED {task.id}: {rec.get('error')}")
                for warning in rec.get("warnings") or ():
                    overall.write(f"WARNING {task.id}: {warning}")
                src = {} if settings.anonymize_ids else {"source": str(task.path)}
                rman.record(task.id, {**src, **rec})
                if world == 1:  # a single process keeps manifest.json current as it goes
                    mf.merge_manifests(out_root, [t.id for t in tasks], header, 1, final=False)
                overall.update(1)

        t_start = time.perf_counter()
        n_read, n_render = n_readers(settings, device), n_render_processes(settings, device)
        renderer = Renderer(n_render)  # started first: the workers import while we read
        reader = _Reader(mine, out_root, predictor, settings, fp, n_read)
        reader.start()
        pool = ThreadPoolExecutor(
            max_workers=max(1, settings.writers), thread_name_prefix="octseg-writer"
        )
        if renderer.pool is None:
            warm = pool.submit(warm_up)
            warm.add_done_callback(lambda f: f.exception())  # a failure shows in the real job
        slots = threading.BoundedSemaphore(max(1, settings.writers) + 1)
        futures: list[Future] = []
        try:
            ended = 0
            while ended < reader.n_threads:
                item = reader.q.get()
                if item is None:
                    ended += 1
                    continue
                kind, task, payload = item
                if kind == "skip":
                    record(
                        task,
                        {
                            "status": "done",
                            "skipped": True,
                            "n_frames": payload.get("n_frames"),
                            "timing": payload.get("timing"),
                            "outputs": sorted(payload.get("outputs", {})),
                            **(
                                {"warnings": payload["warnings"]} if payload.get("warnings") else {}
                            ),
                        },
                    )
                    continue
                if kind == "fail":
                    record(task, {"status": "failed", **payload})
                    continue
                pb, stream, t_read = payload
                out_dir = out_root / task.id
                try:  # clean what octseg wrote there before; never touch anything else
                    safety.prepare_pullback_dir(out_dir)
                except (OctsegError, OSError) as exc:
                    reader.release()
                    err = _one_line(exc, task)
                    record(task, {"status": "failed", "stage": "output", "error": err})
                    continue
                timings: dict[str, float] = {}
                bar = tqdm(
                    total=pb.n_frames,
                    desc=task.id[:24],
                    unit="fr",
                    position=1,
                    leave=False,
                    disable=not show,
                    dynamic_ncols=True,
                )
                t0 = time.perf_counter()
                try:
                    labels = predictor.segment(stream, pb, progress=bar.update, timings=timings)
                except Exception as exc:
                    stage = "read" if stream.error is not None else "segment"
                    record(
                        task, {"status": "failed", "stage": stage, "error": _one_line(exc, task)}
                    )
                    continue
                finally:
                    bar.close()
                    reader.release()
                # reading overlaps the model: read_s runs from opening the file to its last frame
                timings["read_s"] = stream.t_complete - t_read
                timings["segment_s"] = time.perf_counter() - t0
                with lock:
                    stats["model_s"] += timings.get("model_s", 0.0)
                del stream
                slots.acquire()

                def job(
                    task=task, out_dir=out_dir, pb=pb, labels=labels, timings=timings, t0=t_read
                ):
                    try:
                        res = finish_pullback(
                            task,
                            out_dir,
                            pb,
                            labels,
                            settings,
                            geometry,
                            model_info,
                            fp,
                            timings,
                            renderer,
                        )
                        timings["total_s"] = time.perf_counter() - t0  # opening -> done.json
                        with lock:
                            stats["frames"] += int(labels.shape[0])
                        record(
                            task,
                            {
                                "status": "done",
                                "skipped": False,
                                "n_frames": int(labels.shape[0]),
                                "timing": {k: round(v, 4) for k, v in timings.items()},
                                **res,
                            },
                        )
                    except Exception as exc:
                        if os.environ.get("OCTSEG_DEBUG"):
                            traceback.print_exc()
                        record(
                            task,
                            {"status": "failed", "stage": "write", "error": _one_line(exc, task)},
                        )
                    finally:
                        slots.release()

                futures.append(pool.submit(job))
        finally:
            reader.stop.set()
            pool.shutdown(wait=True)
            renderer.close()
            overall.close()
        elapsed = time.perf_counter() - t_start
        local = {
            "frames": stats["frames"],
            "elapsed_s": elapsed,
            "model_s": stats["model_s"],
            "failed": stats["failed"],
        }
        if distributed:
            import torch.distributed as dist

            t = torch.tensor([local["frames"], local["failed"]], dtype=torch.float64)
            if device.type == "cuda":
                t = t.to(device)
            dist.all_reduce(t)  # also the barrier: every rank has finished its pullbacks
            total_frames, total_failed = int(t[0].item()), int(t[1].item())
        else:
            total_frames, total_failed = local["frames"], local["failed"]
        result: dict[str, Any] = {
            "rank": rank,
            "world_size": world,
            "local": local,
            "frames": total_frames,
            "n_failed": total_failed,
        }
        if rank == 0:
            header["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            header["elapsed_s"] = round(elapsed, 3)
            header["frames_per_s"] = round(total_frames / elapsed, 3) if elapsed > 0 else None
            manifest = mf.merge_manifests(out_root, [t.id for t in tasks], header, world)
            done = [
                (pid, out_root / pid)
                for pid, r in manifest["pullbacks"].items()
                if r.get("status") == "done"
            ]
            write_cohort_summary(out_root, done)
            result["manifest"] = manifest
            result["n_failed"] = manifest["n_failed"]
            fps = total_frames / elapsed if elapsed > 0 else float("nan")
            mps = local["frames"] / local["model_s"] if local["model_s"] > 0 else float("nan")
            print(
                f"octseg infer: {manifest['n_done']}/{manifest['n_pullbacks']} pullbacks done "
                f"({manifest['n_skipped']} already done, {manifest['n_failed']} failed); "
                f"{total_frames} frames in {elapsed:.1f} s: {fps:.1f} frames/s end to end "
                f"(model {mps:.1f} frames/s{', rank 0' if world > 1 else ''}); "
                f"outputs in {out_root}",
                flush=True,
            )
        if distributed:
            import torch.distributed as dist

            dist.barrier()
        return result
    finally:
        if out_lock is not None:
            out_lock.release()
        if distributed:
            import torch.distributed as dist

            with contextlib.suppress(Exception):
                dist.destroy_process_group()


def main(cfg: Any) -> int:
    """Entry point for infer.py: run, print one-line errors, and return the exit status."""
    try:
        result = run_inference(InferSettings.from_cfg(cfg))
    except OctsegError as exc:
        print(f"infer.py: error: {exc}", file=sys.stderr)
        return 2
    return 1 if result.get("n_failed") else 0
