"""The threads and processes of an inference run, around the main thread's model:

* :class:`Reader` threads open the next pullbacks and resample their frames onto the net grid;
* a writer pool (``writers`` threads) measures and writes each segmented pullback
  (:mod:`octseg.infer.outputs`);
* a :class:`Renderer` draws overlays and reports, in the writer threads or in worker processes.

:class:`Workers` starts and stops all three; :func:`worker_count` reads the ``readers`` and
``render_processes`` settings.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from octseg.core.errors import InputError
from octseg.infer import manifest as mf
from octseg.infer import safety
from octseg.infer.inputs import Task
from octseg.infer.privacy import one_line, scrub
from octseg.infer.settings import InferSettings


# ------------------------------------------------------------------------------ worker counts
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


# ------------------------------------------------------------------------------ rendering
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


# ------------------------------------------------------------------------------ reading
class Opened(NamedTuple):
    """A pullback handed from a reader thread to the model."""

    pullback: Any  # octseg.io.Pullback
    stream: Any  # octseg.model.predictor.GridStream, filled by the reader
    t_open: float  # time.perf_counter() when the reader opened the file


class Reader:
    """Reader threads: each opens the next pullback, hands it to the model at once as a
    :class:`~octseg.model.predictor.GridStream`, then fills that stream chunk by chunk (decoding
    and resampling onto the net grid), so the model starts on the first frames while the rest are
    decoded. At most ``prefetch + 1`` pullbacks are open at a time (the main thread releases a slot
    when it has segmented one); each thread puts ``None`` on the queue when it runs out of work.

    Queue items: ``("ok", task, Opened(pullback, stream, t_open))``, ``("skip", task, done_json)``
    (resumed: done earlier with the same fingerprint) or ``("fail", task, {"error", "stage"})``.
    """

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
        try:
            while not self.stop.is_set():
                task = self._take()
                if task is None or not self._handle(task):
                    break
        finally:
            self.q.put(None)

    def _handle(self, task: Task) -> bool:
        """Queue what becomes of ``task``; False when the run is stopping."""
        if task.error:  # known unreadable at discovery (a list file's empty folder)
            self.q.put(("fail", task, {"error": task.error, "stage": "read"}))
            return True
        done = self._done_earlier(task)
        if done is not None:
            self.q.put(("skip", task, done))
            return True
        if not self._acquire():
            return False
        self._open(task)
        return True

    def _done_earlier(self, task: Task) -> dict[str, Any] | None:
        """With ``resume``: the done.json of an earlier result of the same input and
        fingerprint, else None."""
        if not self.s.resume:
            return None
        ident = mf.source_identity(task.path, anonymous=self.s.anonymize_ids)
        if ident is None:
            return None
        return mf.is_done(self.out_root / task.id, self.fp, ident)

    def _open(self, task: Task) -> None:
        """Open ``task``'s pullback, hand it over, then fill its stream (a slot is held)."""
        from octseg.io import read_pullback

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
            err = scrub(one_line(exc, task), task, self.s.anonymize_ids)
            self.q.put(("fail", task, {"error": err, "stage": "read"}))
            return
        self.q.put(("ok", task, Opened(pb, stream, t0)))
        try:
            self.predictor.to_grid(pb, chunk=self.s.read_chunk, out=stream)
        except Exception as exc:  # raised in the consumer by stream.wait()
            stream.fail(exc)


# ------------------------------------------------------------------------------ all of them
@dataclass
class Workers:
    """A run's reader threads, writer pool and renderer; ``slots`` bounds the pullbacks that are
    segmented but not yet written (``writers + 1``), so the model never runs far ahead."""

    renderer: Renderer
    reader: Reader
    pool: ThreadPoolExecutor
    slots: threading.BoundedSemaphore

    @classmethod
    def start(
        cls,
        settings: InferSettings,
        device: Any,
        tasks: list[Task],
        out_root: Path,
        predictor: Any,
        fp: str,
    ) -> Workers:
        """Start the renderer first (its processes import while we read), then the readers and
        the writer pool (which warms matplotlib up when it draws itself)."""
        n_read, n_render = n_readers(settings, device), n_render_processes(settings, device)
        renderer = Renderer(n_render)
        reader = Reader(tasks, out_root, predictor, settings, fp, n_read)
        reader.start()
        writers = max(1, settings.writers)
        pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="octseg-writer")
        if renderer.pool is None:
            warm = pool.submit(warm_up)
            warm.add_done_callback(lambda f: f.exception())  # a failure shows in the real job
        return cls(renderer, reader, pool, threading.BoundedSemaphore(writers + 1))

    def items(self) -> Iterator[tuple[str, Task, Any]]:
        """The reader queue's items until every reader thread has ended."""
        ended = 0
        while ended < self.reader.n_threads:
            item = self.reader.q.get()
            if item is None:
                ended += 1
            else:
                yield item

    def close(self) -> None:
        """Stop reading, wait for the writers, then stop the renderer."""
        self.reader.stop.set()
        self.pool.shutdown(wait=True)
        self.renderer.close()
