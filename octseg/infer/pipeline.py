"""Batch inference over many pullbacks: read -> segment -> measure -> write, overlapped.

Three stages run at once so the model never waits (:mod:`octseg.infer.workers`):

* **reader threads** open the next pullbacks (any reader, octseg.io), resample every frame onto
  the network's polar grid, and queue them (``prefetch`` pullbacks ahead);
* the **main thread** runs the network over whole frames in batches (octseg.model.predictor) and
  maps the result back to the input's space;
* a **writer pool** (``writers`` threads) measures (octseg.geometry.measure_labels) and writes
  every output atomically (:mod:`octseg.infer.outputs`): ``labels.npz``, ``seg.dcm`` (DICOM
  input), ``frames.csv`` / ``struts.csv`` / ``summary.json``, ``overlays/*.png``,
  ``report.html`` and, last, ``done.json``.

A failing pullback (unreadable, corrupt, missing spacing, ...) is recorded in the manifest and the
run goes on; a failing optional output (DICOM-SEG, overlays, report) is a warning, the pullback
stays done. What the run guarantees about its output folder (no overlap with the inputs, one run
at a time, only octseg's own files replaced) is in :mod:`octseg.infer.safety`. Sharding: under
``torchrun`` each rank takes ``tasks[rank::world_size]``; rank 0 merges the manifest and writes
the cohort ``summary.csv`` after a barrier.

:func:`run_inference` runs the stages in order on one :class:`Run`: :func:`start_run`,
:func:`discover_tasks`, :func:`load_model`, :func:`segment_all`, :func:`merge_and_summarize`,
:func:`close_run`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError, OctsegError
from octseg.infer import manifest as mf
from octseg.infer import safety
from octseg.infer.inputs import Task, discover
from octseg.infer.outputs import (
    LABELS_ZLIB_LEVEL,
    OutputSpec,
    Segmented,
    finish_pullback,
    save_labels_fast,
)
from octseg.infer.privacy import (
    PRIVATE_IDS_NAME,
    anonymize_tasks,
    one_line,
    scrub,
    write_private_ids,
)
from octseg.infer.settings import InferSettings, with_extension
from octseg.infer.workers import (
    Opened,
    Reader,
    Renderer,
    Workers,
    n_readers,
    n_render_processes,
    render_outputs,
    warm_up,
    worker_count,
)
from octseg.io.color import display_sample
from octseg.io.levels import level_metadata

__all__ = [  # the names other modules, tests and benchmarks import from here
    "LABELS_ZLIB_LEVEL",
    "PRIVATE_IDS_NAME",
    "InferSettings",
    "Reader",
    "Renderer",
    "Run",
    "anonymize_tasks",
    "dist_env",
    "finish_pullback",
    "main",
    "n_readers",
    "n_render_processes",
    "render_outputs",
    "run_inference",
    "save_labels_fast",
    "warm_up",
    "worker_count",
    "write_private_ids",
]


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


# ------------------------------------------------------------------------------ the run
@dataclass
class Run:
    """One inference run, shared by its stages: where it runs, what it works on, and what it
    has recorded so far (the main thread and the writer threads record under ``lock``)."""

    settings: InferSettings
    geometry: Any  # octseg.geometry.GeometrySettings
    rank: int
    world: int
    device: Any  # torch.device
    distributed: bool
    out_root: Path
    out_lock: safety.OutputLock | None = None
    tasks: list[Task] = field(default_factory=list)  # every rank's, in input order
    predictor: Any = None  # octseg.model.predictor.Predictor
    spec: OutputSpec | None = None
    header: dict[str, Any] = field(default_factory=dict)  # the manifest's run facts
    manifest: mf.RankManifest | None = None
    bar: Any = None  # the pullbacks' progress bar (tqdm)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict[str, Any] = field(
        default_factory=lambda: {"frames": 0, "model_s": 0.0, "failed": 0}
    )

    @property
    def mine(self) -> list[Task]:
        """This rank's share of the tasks."""
        return self.tasks[self.rank :: self.world]

    def record(self, task: Task, rec: dict[str, Any]) -> None:
        """One pullback's outcome into this rank's manifest (and, for a single process, the
        merged manifest.json at once); a failed pullback leaves no result-looking files."""
        anonymous = self.settings.anonymize_ids
        with self.lock:
            if rec.get("error"):
                rec = {**rec, "error": scrub(str(rec["error"]), task, anonymous)}
            if rec.get("status") != "done":
                self.stats["failed"] += 1
                # nothing that looks like a result of this run stays behind
                rec = {**rec, **safety.discard_failed(self.out_root / task.id)}
                self.bar.write(f"FAILED {task.id}: {rec.get('error')}")
            for warning in rec.get("warnings") or ():
                self.bar.write(f"WARNING {task.id}: {warning}")
            src = {} if anonymous else {"source": str(task.path)}
            self.manifest.record(task.id, {**src, **rec})
            if self.world == 1:  # a single process keeps manifest.json current as it goes
                ids = [t.id for t in self.tasks]
                mf.merge_manifests(self.out_root, ids, self.header, 1, final=False)
            self.bar.update(1)


def run_inference(settings: InferSettings, predictor: Any = None) -> dict[str, Any]:
    """Run the whole job; returns the merged manifest (rank 0) or this rank's summary.

    ``predictor``: an already built :class:`~octseg.model.predictor.Predictor` (programmatic use,
    benchmarks); by default it is rebuilt from ``settings.checkpoint``.
    """
    run = start_run(settings, predictor)
    try:
        discover_tasks(run)
        load_model(run, predictor)
        elapsed = segment_all(run)
        return merge_and_summarize(run, elapsed)
    finally:
        close_run(run)


def start_run(settings: InferSettings, predictor: Any = None) -> Run:
    """Check every setting (nothing read or written yet; no checkpoint: the shipped model's
    file, checked), pick the device and join the distributed group (torchrun)."""
    from octseg.geometry import GeometrySettings
    from octseg.model.postprocess import PostprocessSettings
    from octseg.model.predictor import pick_device

    safety.validate_settings(settings)
    if predictor is None:  # the job and the API: no checkpoint, or a shipped model's name
        settings = dataclasses.replace(settings, checkpoint=_shipped_files(settings.checkpoint))
    geometry = GeometrySettings.from_dict(settings.geometry or {})
    # a bad setting fails before any work (unset ones checked as their no-recommendation value)
    PostprocessSettings.from_value(settings.with_recommended({})[0].postprocess)
    rank, world, local_rank = dist_env()
    device = predictor.device if predictor is not None else pick_device(settings.device, local_rank)
    distributed = _init_dist(world, device, settings.dist_timeout_min)
    if settings.geometry_device in (None, "", "auto"):  # the model's device
        settings = dataclasses.replace(settings, geometry_device=str(device))
    out_root = Path(settings.output)
    return Run(settings, geometry, rank, world, device, distributed, out_root)


def _shipped_files(checkpoint: str | list[str] | None) -> str | list[str]:
    """``checkpoint=`` with the shipped models' files, checked (present, SHA-256): the default
    model's for None, a shipped model's for its name, a shipped ensemble's members' for its
    name; paths are left to the loader."""
    from octseg.model.shipped import default_checkpoint, files_of

    if checkpoint in (None, ""):
        return str(default_checkpoint())
    entries = checkpoint if isinstance(checkpoint, (list, tuple)) else [checkpoint]
    files = files_of([str(c) for c in entries])
    return files[0] if len(files) == 1 else files


def discover_tasks(run: Run) -> list[Task]:
    """Find the pullbacks, make sure the output folder is apart from them, claim (lock) it and,
    with ``anonymize_ids``, rename them (rank 0 writes the private id list)."""
    s = run.settings
    tasks = discover(s.input)
    safety.check_no_overlap(s.output, s.input, tasks)
    run.out_lock = _claim_output(s.output, run.rank, run.distributed)
    if s.anonymize_ids:
        tasks = anonymize_tasks(tasks)
        if run.rank == 0:
            write_private_ids(run.out_root, tasks)
    run.tasks = tasks
    return tasks


def load_model(run: Run, predictor: Any = None) -> None:
    """Build the predictor (unless given), fingerprint the outputs (checkpoint + settings) and
    start this rank's manifest."""
    t_load = time.perf_counter()
    applied = _build_predictor(run, predictor)
    s = run.settings
    model_info = run.predictor.describe()
    digest = _model_digest(s.checkpoint, run.predictor, ordered=bool(s.ensemble_weights))
    fp = mf.fingerprint(digest, s.output_affecting())
    run.spec = OutputSpec(s, run.geometry, model_info, fp)
    run.header = {
        "checkpoint": s.checkpoint,
        "anonymize_ids": bool(s.anonymize_ids),
        "fingerprint": fp,
        "model": model_info,
        "recommended_applied": applied,
        "geometry": run.geometry.to_dict(),  # what measured the tables (octseg review re-uses it)
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "model_load_s": round(time.perf_counter() - t_load, 3),
    }
    run.manifest = mf.RankManifest(run.out_root, run.rank, run.world, run.header)
    run.manifest.flush()


def _model_digest(checkpoint: Any, predictor: Any, ordered: bool = False) -> str:
    """What identifies the model: the checkpoint file's digest; an ensemble's, one over its
    members' digests (in their order when ``ordered``: class weights given per member; the
    order the predictor was built in, whatever ``checkpoint=`` lists); a given predictor's
    network without a file, its class name."""
    from octseg.model.ensemble import checkpoint_paths

    members = [
        m["checkpoint"] for m in (getattr(predictor, "meta", {}) or {}).get("ensemble") or ()
    ]
    paths = [Path(p) for p in (members if ordered and members else checkpoint_paths(checkpoint))]
    if not all(p.is_file() for p in paths):
        return f"object:{type(predictor.model).__name__}"
    return mf.checkpoint_digest(paths, ordered=ordered)


def _build_predictor(run: Run, predictor: Any = None) -> dict[str, Any]:
    """``run.predictor`` (the given one, or the checkpoint's network as the settings say) and
    ``run.settings`` with the unset ones taken from the model's recommendations; returns those
    applied (:mod:`octseg.model.recommended`)."""
    from octseg.model.ensemble import load_models, source_name
    from octseg.model.predictor import PredictOptions, Predictor
    from octseg.model.recommended import recommended

    ck, s = run.settings.checkpoint, run.settings
    if predictor is None:
        model, meta = load_models(ck, s.ensemble_weights)
    else:  # a given predictor says what it runs
        model, meta, s = None, predictor.meta, _tta_of(predictor, s)
        _check_given_weights(s.ensemble_weights, meta)
    # as the model applies them (scaled to sum to 1): one fingerprint for [1, 0] and [2, 0]
    s = dataclasses.replace(s, ensemble_weights=meta.get("ensemble_weights"))
    s, applied = s.with_recommended(recommended(meta, ck))
    if predictor is not None:  # a given predictor runs its own extension
        s, applied = _extension_of(predictor, s, applied)
    run.settings = s
    if run.rank == 0:
        _warn_idle_tracking(s.postprocess)
    if predictor is None:
        opts = PredictOptions.from_settings(s, device=run.device)
        predictor = Predictor(model, meta, opts, source=source_name(ck))
        if run.rank == 0:
            _print_model(ck, meta, applied)
    run.settings = _grid_of(predictor, s)
    run.predictor = predictor
    return applied


def _warn_idle_tracking(post: Any) -> None:
    """Say so when ``postprocess.calcium_track_frames`` is set but has nothing to keep: no
    minimum calcium area (it keeps pieces that rule would remove) or the post-processing off."""
    if not isinstance(post, Mapping) or not post.get("calcium_track_frames"):
        return
    if post.get("enabled", True) and (post.get("calcium_min_area_mm2") or 0) > 0:
        return
    print(
        "WARNING: postprocess.calcium_track_frames does nothing here: it keeps calcium pieces "
        "that postprocess.calcium_min_area_mm2 would remove, and no minimum area applies",
        flush=True,
    )


def _check_given_weights(weights: Any, meta: dict[str, Any]) -> None:
    """A given predictor runs the class weights it was built with: ``ensemble_weights`` given
    beside it must say the same (InputError naming the setting otherwise)."""
    from octseg.model.ensemble import normalised_weights

    ours = meta.get("ensemble_weights") or {}
    members = len(meta.get("ensemble") or ()) or 1
    if weights and (members < 2 or normalised_weights(weights, members) != ours):
        raise InputError(
            None,
            f"ensemble_weights={weights!r}: the given predictor runs "
            f"{ours or 'no class weights'}; build it with them "
            "(Predictor.from_checkpoint([...], class_weights=...)) or leave the setting unset",
        )


def _tta_of(predictor: Any, s: InferSettings) -> InferSettings:
    """``s`` saying the test-time augmentation a given predictor runs (what the outputs and
    their fingerprint come from; a recommendation cannot change it)."""
    s = dataclasses.replace(s, tta_enabled=len(getattr(predictor, "tta", ())) > 1)
    opts = getattr(predictor, "options", None)
    if opts is None:
        return s
    return dataclasses.replace(s, tta_rolls=opts.tta_rolls, tta_flip=opts.tta_flip)


def _grid_of(predictor: Any, s: InferSettings) -> InferSettings:
    """``s`` saying the A-lines the predictor runs on: None when they are the trained ones (so
    ``net_alines`` equal to the checkpoint's grid fingerprints as unset), else their count."""
    grid = getattr(predictor, "net_grid", None) or {}
    ran, trained = grid.get("n_alines"), getattr(predictor, "trained_alines", None)
    return dataclasses.replace(s, net_alines=None if trained in (None, ran) else ran)


def _extension_of(
    predictor: Any, s: InferSettings, applied: dict[str, Any]
) -> tuple[InferSettings, dict[str, Any]]:
    """``s`` and ``applied`` saying the calcium arc extension a given predictor runs (its own
    ``options.calcium_extend_prob``, which no setting or recommendation changes), so the
    fingerprint and the report say what the outputs come from."""
    ran = float(getattr(getattr(predictor, "options", None), "calcium_extend_prob", 0.0) or 0.0)
    if applied.get("calcium_extend_prob", ran) != ran:
        applied = {k: v for k, v in applied.items() if k != "calcium_extend_prob"}
    post = s.postprocess
    if isinstance(post, Mapping):
        post = with_extension(post, ran)
    elif ran:
        post = with_extension({"enabled": bool(post)}, ran)
    return dataclasses.replace(s, postprocess=post), applied


def _print_model(checkpoint: Any, meta: dict[str, Any], applied: dict[str, Any]) -> None:
    """Which model the run uses (the shipped one by name; recipe and version when recorded) and
    the settings taken from its recommendations."""
    from octseg.model.shipped import describe, ensemble_named

    members = meta.get("ensemble")
    if members:
        kind = "class-weighted mean" if meta.get("ensemble_weights") else "mean"
        name = ensemble_named([m["checkpoint"] for m in members])
        named = f"{name} (shipped ensemble), " if name else ""
        print(
            f"model: {named}the {kind} of {len(members)} checkpoints' class probabilities:",
            flush=True,
        )
        for m in members:
            print(f"  {describe(m['checkpoint'], {'recipe': m.get('recipe')})}", flush=True)
        for name, weights in (meta.get("ensemble_weights") or {}).items():
            print(f"  {name}: weighted {weights} (in the members' order)", flush=True)
    else:
        print(f"model: {describe(checkpoint, meta)}", flush=True)
    if applied:
        what = ", ".join(f"{k}={v}" for k, v in applied.items())
        print(
            f"model's recommended inference settings applied: {what} (give tta.enabled / "
            "postprocess.calcium_min_area_mm2 / postprocess.calcium_min_length_mm / "
            "postprocess.calcium_extend_prob to choose otherwise)",
            flush=True,
        )


def segment_all(run: Run) -> float:
    """Segment this rank's pullbacks as the readers hand them over, each written by the writer
    pool; returns the seconds it took."""
    from tqdm.auto import tqdm

    run.bar = tqdm(
        total=len(run.mine),
        desc=f"pullbacks (rank {run.rank})" if run.world > 1 else "pullbacks",
        unit="pb",
        position=0,
        disable=not run.settings.progress,
        dynamic_ncols=True,
    )
    t_start = time.perf_counter()
    s = run.settings
    workers = Workers.start(
        s, run.device, run.mine, run.out_root, run.predictor, run.spec.fingerprint
    )
    try:
        for kind, task, payload in workers.items():
            if kind == "skip":
                run.record(task, _skipped(payload))
            elif kind == "fail":
                run.record(task, {"status": "failed", **payload})
            else:
                segment_one(run, workers, task, payload)
    finally:
        workers.close()
        run.bar.close()
    return time.perf_counter() - t_start


def _skipped(done: dict[str, Any]) -> dict[str, Any]:
    """The manifest record of a pullback done by an earlier run (its ``done.json``)."""
    return {
        "status": "done",
        "skipped": True,
        "n_frames": done.get("n_frames"),
        "timing": done.get("timing"),
        "outputs": sorted(done.get("outputs", {})),
        **({"warnings": done["warnings"]} if done.get("warnings") else {}),
    }


def segment_one(run: Run, workers: Workers, task: Task, opened: Opened) -> None:
    """Clean the pullback's output folder, segment it (main thread) and hand it to a writer."""
    out_dir = run.out_root / task.id
    try:  # clean what octseg wrote there before; never touch anything else
        safety.prepare_pullback_dir(out_dir)
    except (OctsegError, OSError) as exc:
        workers.reader.release()
        run.record(task, {"status": "failed", "stage": "output", "error": one_line(exc, task)})
        return
    segmented = _segment(run, workers, task, opened)
    if segmented is None:
        return
    labels, timings = segmented
    with run.lock:
        run.stats["model_s"] += timings.get("model_s", 0.0)
    workers.slots.acquire()
    seg = Segmented(task, out_dir, opened.pullback, labels, timings, opened.t_open)
    workers.pool.submit(write_pullback, run, workers, seg)


def _segment(
    run: Run, workers: Workers, task: Task, opened: Opened
) -> tuple[Any, dict[str, float]] | None:
    """The pullback's labels (:meth:`~octseg.model.predictor.Predictor.segment`) and the
    seconds of its stages, or None when reading or the model failed (recorded); frees the
    reader's slot either way."""
    from tqdm.auto import tqdm

    pb, stream, t_open = opened
    bar = tqdm(
        total=pb.n_frames,
        desc=task.id[:24],
        unit="fr",
        position=1,
        leave=False,
        disable=not run.settings.progress,
        dynamic_ncols=True,
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        labels = run.predictor.segment(stream, pb, progress=bar.update, timings=timings)
        pb.metadata.update(_levels(stream.tensor))  # whether the frames look inverted
    except Exception as exc:
        stage = "read" if stream.error is not None else "segment"
        run.record(task, {"status": "failed", "stage": stage, "error": one_line(exc, task)})
        return None
    finally:
        bar.close()
        workers.reader.release()
    # reading overlaps the model: read_s runs from opening the file to its last frame
    timings["read_s"] = stream.t_complete - t_open
    timings["segment_s"] = time.perf_counter() - t0
    return labels, timings


def _levels(grid: Any) -> dict[str, float]:
    """:func:`~octseg.io.levels.level_metadata` of the first, middle and last frames of the
    net-grid tensor ``(F, A', R')`` (three frames copied off the device)."""
    sample = grid[display_sample(int(grid.shape[0]))]
    return level_metadata(sample.float().cpu().numpy())


def write_pullback(run: Run, workers: Workers, seg: Segmented) -> None:
    """Writer thread: :func:`~octseg.infer.outputs.finish_pullback`, then the manifest record;
    frees the writer slot."""
    task, n_frames = seg.task, int(seg.labels.shape[0])
    try:
        res = finish_pullback(seg, run.spec, workers.renderer)
        seg.timings["total_s"] = time.perf_counter() - seg.t_open  # opening -> done.json
        with run.lock:
            run.stats["frames"] += n_frames
        timing = {k: round(v, 4) for k, v in seg.timings.items()}
        run.record(
            task,
            {"status": "done", "skipped": False, "n_frames": n_frames, "timing": timing, **res},
        )
    except Exception as exc:
        if os.environ.get("OCTSEG_DEBUG"):
            traceback.print_exc()
        run.record(task, {"status": "failed", "stage": "write", "error": one_line(exc, task)})
    finally:
        workers.slots.release()


def merge_and_summarize(run: Run, elapsed: float) -> dict[str, Any]:
    """Every rank's counts (all-reduce, also the barrier); rank 0 merges the manifest, writes
    the cohort summary and prints one line. Returns the run's result."""
    local = {
        "frames": run.stats["frames"],
        "elapsed_s": elapsed,
        "model_s": run.stats["model_s"],
        "failed": run.stats["failed"],
    }
    total_frames, total_failed = _all_reduce(run, local["frames"], local["failed"])
    result: dict[str, Any] = {
        "rank": run.rank,
        "world_size": run.world,
        "local": local,
        "frames": total_frames,
        "n_failed": total_failed,
    }
    if run.rank == 0:
        manifest = _merge(run, elapsed, total_frames)
        result["manifest"] = manifest
        result["n_failed"] = manifest["n_failed"]
        _print_summary(run, manifest, local, total_frames)
    if run.distributed:
        import torch.distributed as dist

        dist.barrier()
    return result


def _all_reduce(run: Run, frames: int, failed: int) -> tuple[int, int]:
    """Frames and failed pullbacks of all ranks (once every rank has finished its pullbacks)."""
    if not run.distributed:
        return frames, failed
    import torch
    import torch.distributed as dist

    t = torch.tensor([frames, failed], dtype=torch.float64)
    if run.device.type == "cuda":
        t = t.to(run.device)
    dist.all_reduce(t)
    return int(t[0].item()), int(t[1].item())


def _merge(run: Run, elapsed: float, total_frames: int) -> dict[str, Any]:
    """Rank 0: the final manifest.json and the cohort summary.csv of the done pullbacks."""
    from octseg.infer.cohort import write_cohort_summary

    run.header["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    run.header["elapsed_s"] = round(elapsed, 3)
    run.header["frames_per_s"] = round(total_frames / elapsed, 3) if elapsed > 0 else None
    ids = [t.id for t in run.tasks]
    manifest = mf.merge_manifests(run.out_root, ids, run.header, run.world)
    done = [
        (pid, run.out_root / pid)
        for pid, r in manifest["pullbacks"].items()
        if r.get("status") == "done"
    ]
    write_cohort_summary(run.out_root, done)
    return manifest


def _print_summary(
    run: Run, manifest: dict[str, Any], local: dict[str, Any], total_frames: int
) -> None:
    elapsed = local["elapsed_s"]
    fps = total_frames / elapsed if elapsed > 0 else float("nan")
    mps = local["frames"] / local["model_s"] if local["model_s"] > 0 else float("nan")
    print(
        f"octseg infer: {manifest['n_done']}/{manifest['n_pullbacks']} pullbacks done "
        f"({manifest['n_skipped']} already done, {manifest['n_failed']} failed); "
        f"{total_frames} frames in {elapsed:.1f} s: {fps:.1f} frames/s end to end "
        f"(model {mps:.1f} frames/s{', rank 0' if run.world > 1 else ''}); "
        f"outputs in {run.out_root}",
        flush=True,
    )
    _print_reports(run.out_root, manifest)


MAX_REPORTS_LISTED = 10  # more done pullbacks than this: one line with the pattern


def _print_reports(out_root: Path, manifest: dict[str, Any]) -> None:
    """Where the HTML reports are: one line per pullback, or the pattern and the count."""
    reports = [
        out_root / pid / "report.html"
        for pid, rec in manifest["pullbacks"].items()
        if rec.get("status") == "done" and "report.html" in (rec.get("outputs") or ())
    ]
    if len(reports) > MAX_REPORTS_LISTED:
        print(f"reports: {out_root}/<pullback>/report.html ({len(reports)} pullbacks)", flush=True)
        return
    for path in reports:
        print(f"report: {path}", flush=True)


def close_run(run: Run) -> None:
    """Release the output folder and leave the distributed group."""
    if run.out_lock is not None:
        run.out_lock.release()
    if run.distributed:
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
