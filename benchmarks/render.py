"""Drawing overlays and reports: writer threads vs render processes (the GIL cap).

    .venv/bin/python benchmarks/render.py                 # 16 pullbacks' worth, 2 workers
    .venv/bin/python benchmarks/render.py --workers 1 2 4 --pullbacks 32

matplotlib holds the GIL while it draws, so overlays and reports drawn by several writer threads
of one process do not run in parallel, however many cores there are: that caps the end-to-end
throughput of a single inference process on a GPU server. This benchmark draws the same outputs
(3 overlays and one HTML report per pullback, from a synthetic 504x480 polar pullback measured
once) serially, with N threads and with N spawned processes (octseg.infer.pipeline.Renderer), and
reports pullbacks/s and the speed-up over serial drawing measured in the same run. Process start-up
(spawn + imports) is excluded: the pool is warmed first, as it is during a run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np


def _jobs(work: Path) -> tuple[list, dict]:
    """Overlay jobs and report arguments of one synthetic pullback (drawn many times)."""
    from inference import synthetic_frames  # benchmarks/inference.py

    from octseg.geometry import measure_labels
    from octseg.io.base import Pullback
    from octseg.io.labels import LabelFile
    from octseg.report.overlay import overlay_jobs

    n, a, r = 60, 504, 480
    img = synthetic_frames(n, np.random.default_rng(0))
    depth = np.arange(r)[None, :]
    lab = np.zeros((n, a, r), np.uint8)
    for f in range(n):  # lumen and a calcium sector where synthetic_frames puts the wall
        radius = (150 + 40 * np.sin(np.linspace(0, 2 * np.pi, a) + f / 30.0))[:, None]
        lab[f][np.broadcast_to(depth < radius, (a, r))] = 1
        lab[f, : a // 3][(depth >= radius[: a // 3]) & (depth < radius[: a // 3] + 60)] = 2
    pb = Pullback(
        source=str(work / "synthetic"),
        format="npz",
        space="polar",
        n_frames=n,
        height=a,
        width=r,
        pixel_spacing_mm=0.01,
        frame_spacing_mm=0.2,
        loader=lambda s, e: img[s:e].astype(np.float32) / 255.0,
    )
    lf = LabelFile(labels=lab, space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)
    m = measure_labels(lf, device="cpu")
    jobs = overlay_jobs(pb, lab, m.frames, m.struts, m.summary)
    report = dict(
        pullback_id="bench",
        info={"frame_spacing_mm": 0.2, "space": "polar", "n_frames": n},
        frames=m.frames,
        struts=m.struts,
        summary=m.summary,
        model={"checkpoint": "none"},
        malapposition_threshold_mm=0.2,
    )
    return jobs, report


def main(argv: list[str] | None = None) -> int:
    from octseg.infer.pipeline import Renderer, render_outputs, warm_up

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pullbacks", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="octseg-render-"))
    try:
        jobs, report = _jobs(work)
        warm_up()
        n = args.pullbacks

        def draw(i: int, run=Renderer(0).run) -> None:
            res = run(render_outputs, str(work / f"pb{i}"), jobs, 512, report)
            assert not res["warnings"], res["warnings"]  # a failure is a warning, not a raise

        t0 = time.perf_counter()
        for i in range(n):
            draw(i)
        serial = n / (time.perf_counter() - t0)
        rows = {"serial": {"pullbacks_per_s": round(serial, 2), "speedup": 1.0}}
        for w in args.workers:
            with ThreadPoolExecutor(w) as ex:
                t0 = time.perf_counter()
                list(ex.map(draw, range(n)))
                thr = n / (time.perf_counter() - t0)
            renderer = Renderer(w)
            try:
                with ThreadPoolExecutor(w) as ex:  # warm the pool: spawn + imports excluded
                    list(ex.map(partial(draw, run=renderer.run), range(w)))
                    t0 = time.perf_counter()
                    list(ex.map(partial(draw, run=renderer.run), range(n)))
                    proc = n / (time.perf_counter() - t0)
            finally:
                renderer.close()
            rows[f"{w}_threads"] = {
                "pullbacks_per_s": round(thr, 2),
                "speedup": round(thr / serial, 2),
            }
            rows[f"{w}_processes"] = {
                "pullbacks_per_s": round(proc, 2),
                "speedup": round(proc / serial, 2),
            }
        result = {
            "what": "3 overlays + 1 HTML report per pullback (504x480 polar, 60 frames)",
            "cpu_count": os.cpu_count(),
            "pullbacks": n,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "results": rows,
        }
        print(json.dumps(result, indent=2))
        for k, v in rows.items():
            print(f"{k:<14} {v['pullbacks_per_s']:6.2f} pullbacks/s  x{v['speedup']:.2f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
