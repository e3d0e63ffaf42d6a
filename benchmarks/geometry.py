"""Benchmark of the geometry module: batched torch vs the per-frame NumPy/scikit-image reference.

    .venv/bin/python benchmarks/geometry.py [--frames 64] [--ref-frames 6] [--device cpu cuda]
        [--threads 1 2] [--repeat 3] [--pullback 1000] [--chunk 64] [--distinct N]
        [--baseline-tree DIR] [--accelerator-factor N] [--json PATH]

For 1024x1024 Cartesian (10 um) and 504x968 polar (5 um) synthetic label maps: frames/s of
``measure_labels`` (torch, chunked; best and median of ``--repeat`` runs, per device and per
intra-op thread count) and of ``reference.measure_reference`` on the same frames, their ratio,
and a cross-check of every per-frame metric against the reference (largest difference and the
tolerance of issue 4). Then the peak memory (RSS of a fresh subprocess, and the torch CUDA peak
where used) of a chunked 1,000-frame 1024x1024 pullback.

On a busy shared machine, more than one thread with OpenMP's default (spinning) wait policy can
be many times slower than one thread; ``OMP_WAIT_POLICY=PASSIVE`` avoids that (recorded in the
JSON).

``--baseline-tree DIR``: also time another copy of the package (``DIR/octseg``, e.g. the
previous implementation) on the same frames in a subprocess, for a same-run A/B ratio on a
shared, noisy machine.

Prints a table and writes the results as JSON (default ``benchmarks/results/geometry_cpu.json``,
or ``geometry_cuda.json`` when a GPU is measured).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* beside octseg

from benchmarks.reference import measure_reference  # noqa: E402
from octseg.core.atomic import write_text  # noqa: E402
from octseg.geometry import GeometrySettings, kernels, measure_labels  # noqa: E402
from octseg.geometry.tables import FRAME_COLUMNS  # noqa: E402
from octseg.io.labels import LabelFile  # noqa: E402

HERE = Path(__file__).resolve().parent
PS = {"cartesian": 0.01, "polar": 0.005}


def make_frames(
    n: int, space: str, seed: int = 0, specks: int = 0, distinct: int = 0
) -> tuple[np.ndarray, float]:
    """Realistic-looking label maps: elliptic off-centre lumen, a calcium sector, guidewire
    shadow, ~12 struts (half of the frames), varied per frame; ``specks``: that many non-lumen
    specks (2-20 pixels) inside the lumen of every frame (the lumen contour's filling path);
    ``distinct``: synthesise only that many frames and repeat them up to ``n`` (0: all
    distinct; synthesis takes ~0.1 s per 1024x1024 frame)."""
    if 0 < distinct < n:
        base, ps = make_frames(distinct, space, seed, specks)
        return np.concatenate([base] * math.ceil(n / distinct))[:n], ps
    rng = np.random.default_rng(seed)
    if space == "cartesian":
        ps, (h, w) = PS[space], (1024, 1024)
        c = ((h - 1) / 2, (w - 1) / 2)
        i, j = np.mgrid[0:h, 0:w].astype(np.float32)
        y, x = (i - c[0]) * ps, (j - c[1]) * ps
    else:
        ps, (h, w) = PS[space], (504, 968)
        th = (2 * np.pi * np.arange(h) / h).astype(np.float32)
        r = (np.arange(w) * ps).astype(np.float32)
        y, x = r[None] * np.sin(th)[:, None], r[None] * np.cos(th)[:, None]
    rc = np.hypot(y, x)
    thc = np.degrees(np.arctan2(y, x)) % 360
    out = np.zeros((n, h, w), np.uint8)
    for f in range(n):
        cy, cx = rng.uniform(-0.4, 0.4, 2)
        a, b = rng.uniform(1.2, 1.8), rng.uniform(1.0, 1.5)
        lab = out[f]
        lab[((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 < 1] = 1
        rho, phi = np.hypot(y - cy, x - cx), np.degrees(np.arctan2(y - cy, x - cx)) % 360
        p0, span = rng.uniform(0, 360), rng.uniform(30, 300)
        r0 = max(a, b) + rng.uniform(0.05, 0.3)
        lab[(rho >= r0) & (rho < r0 + rng.uniform(0.2, 1.0)) & (((phi - p0) % 360) < span)] = 2
        t0 = rng.uniform(0, 360)
        lab[(rc > 0.9) & (((thc - t0) % 360) < 15)] = 4
        if f % 2 == 0:
            for k in range(12):
                pa = math.radians(30 * k + rng.uniform(-5, 5))
                rr = min(a, b) * rng.uniform(0.8, 0.98)
                sy, sx = cy + rr * math.sin(pa), cx + rr * math.cos(pa)
                lab[np.hypot(y - sy, x - sx) < 0.025] = 3
        for _ in range(specks):
            rr, pa = rng.uniform(0.5, 0.8) * min(a, b), rng.uniform(0, 2 * math.pi)
            d = np.hypot(y - cy - rr * math.sin(pa), x - cx - rr * math.cos(pa))
            k = int(rng.integers(2, 21))
            near = np.argpartition(d, k, axis=None)[:k]
            lab.reshape(-1)[near] = 0
    return out, ps


def tolerances(space: str, ps: float, n_alines: int) -> dict[str, tuple[float, float]]:
    """(absolute, relative) tolerance per frames.csv column for the cross-check: issue 4's
    (arc 2 deg, thickness / depth / diameters / distances 2 px, areas 2 %); the polar arc also
    gets one A-line, the raster's angular step."""
    px = 2 * ps
    arc = 2.0 + (360.0 / n_alines if space == "polar" else 0.0)
    tol = {k: (px, 0.0) for k in FRAME_COLUMNS if k.endswith("_mm") and k != "position_mm"}
    tol.update({k: (0.0, 0.02) for k in FRAME_COLUMNS if k.endswith("_mm2")})
    tol["calcium_arc_deg"] = (arc, 0.0)
    tol["n_struts"] = (0.0, 0.0)
    tol["n_malapposed"] = (1.0, 0.0)
    tol["lumen_eccentricity"] = (0.02, 0.0)
    return tol


def cross_check(frames: list[dict], ref: list, tol: dict) -> dict[str, dict]:
    """Largest difference per column between torch rows and reference rows, and whether it is
    within its tolerance (a value present in one and missing in the other is a failure)."""
    out: dict[str, dict] = {}
    for row, (rrow, _) in zip(frames, ref):
        for key, (atol, rtol) in tol.items():
            a, b = row.get(key), rrow.get(key)
            if a is None and b is None:
                continue
            entry = out.setdefault(key, {"max_abs_diff": 0.0, "ok": True, "missing_in_one": 0})
            if (a is None) != (b is None):
                entry["missing_in_one"] += 1
                entry["ok"] = False
                continue
            d = abs(float(a) - float(b))
            entry["max_abs_diff"] = max(entry["max_abs_diff"], d)
            entry["ok"] &= d <= atol + rtol * abs(float(b)) + 1e-9
    return out


def time_runs(fn, n: int, repeat: int, sync=None) -> dict[str, float]:
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        rates.append(n / (time.perf_counter() - t0))
    return {"best_fps": max(rates), "median_fps": statistics.median(rates)}


def _run_torch(lf: LabelFile, dev: str, chunk: int, repeat: int) -> tuple[dict, object]:
    sync = torch.cuda.synchronize if dev.startswith("cuda") else None
    measure_labels(lf, device=dev, chunk_frames=chunk)  # warm-up (allocator, kernels)
    out: list = []
    rates = time_runs(
        lambda: out.append(measure_labels(lf, device=dev, chunk_frames=chunk)),
        lf.n_frames,
        repeat,
        sync,
    )
    return rates, out[-1]


_BASELINE_CODE = """
import json, sys, numpy as np, torch
import octseg.geometry  # the tree's, before benchmarks/geometry.py puts this checkout on the path
from octseg.io.labels import LabelFile
sys.path.insert(0, {here!r})
torch.set_num_threads({threads})
from geometry import _run_torch
lf = LabelFile(labels=np.load({path!r}), space={space!r}, pixel_spacing_mm={ps},
               frame_spacing_mm=0.2)
rates, _ = _run_torch(lf, {dev!r}, {chunk}, {repeat})
import octseg
print(json.dumps({{**rates, "package": octseg.__file__}}))
"""


def time_baseline(tree: str, labels: np.ndarray, space: str, dev: str, threads: int, args):
    """Time ``tree``'s measure_labels on the same frames in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "labels.npy")
        np.save(path, labels)
        code = _BASELINE_CODE.format(
            here=str(HERE),
            threads=threads,
            path=path,
            space=space,
            ps=PS[space],
            dev=dev,
            chunk=args.chunk,
            repeat=args.repeat,
        )
        # the tree first, then whatever PYTHONPATH held (e.g. packages installed with --target)
        path_var = os.pathsep.join(
            filter(None, [os.path.abspath(tree), os.environ.get("PYTHONPATH")])
        )
        env = {**os.environ, "PYTHONPATH": path_var, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run(  # cwd: keep this checkout's octseg/ off the path
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp
        )
        if out.returncode:
            raise RuntimeError(f"--baseline-tree {tree} failed:\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(res["package"]).resolve().is_relative_to(Path(tree).resolve()):
        raise RuntimeError(f"--baseline-tree {tree}: imported {res['package']} instead")
    return res


def bench(space: str, args, devices: list[str], threads: list[int]) -> dict:
    n = min(args.distinct or args.frames, args.frames)
    labels, ps = make_frames(args.frames, space, specks=args.specks, distinct=n)
    lf = LabelFile(labels=labels, space=space, pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    res: dict = {"space": space, "shape": list(labels.shape[1:]), "frames": args.frames}
    res["specks"] = args.specks
    res["distinct_frames"] = n
    torch.set_num_threads(1)  # the reference is single-threaded NumPy / SciPy
    ref_out: list = []
    ref = time_runs(
        lambda: ref_out.extend(measure_reference(labels[: args.ref_frames], space, ps)),
        args.ref_frames,
        1,
    )
    res["reference_fps"] = ref["best_fps"]
    tol = tolerances(space, ps, labels.shape[1])
    runs = []
    for dev in devices:
        for nt in threads if dev == "cpu" else [threads[0]]:
            torch.set_num_threads(nt)
            rates, m = _run_torch(lf, dev, args.chunk, args.repeat)
            check = cross_check(m.frames, ref_out, tol)
            run = {
                "device": dev,
                "threads": nt,
                **rates,
                "vs_reference": rates["best_fps"] / res["reference_fps"],
                "cross_check_ok": all(c["ok"] for c in check.values()),
                "cross_check": check,
            }
            if args.baseline_tree:
                base = time_baseline(args.baseline_tree, labels, space, dev, nt, args)
                run["baseline_best_fps"] = base["best_fps"]
                run["baseline_median_fps"] = base["median_fps"]
                run["vs_baseline"] = rates["best_fps"] / base["best_fps"]
            runs.append(run)
    res["runs"] = runs
    return res


def peak_memory(n: int, device: str, chunk: int, threads: int) -> dict:
    """Run a chunked n-frame 1024x1024 pullback in a fresh process; report its peak RSS."""
    code = f"""
import json, resource, numpy as np, torch, sys
sys.path.insert(0, {str(HERE)!r})
torch.set_num_threads({threads})
from geometry import make_frames
from octseg.io.labels import LabelFile
from octseg.geometry import measure_labels

def status(key):  # Linux: current (VmRSS) / peak (VmHWM) resident set in MB
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

labels, ps = make_frames({n}, "cartesian", distinct=8)
lf = LabelFile(labels=labels, space="cartesian", pixel_spacing_mm=ps, frame_spacing_mm=0.2)
before = status("VmRSS")
try:  # reset the peak so that it covers measure_labels only (the frame synthesis peaks higher)
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
m = measure_labels(lf, device={device!r}, chunk_frames={chunk})
peak = status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cuda = torch.cuda.max_memory_allocated() / 2**20 if {device!r}.startswith("cuda") else None
print(json.dumps({{"frames": len(m.frames), "labels_mb": labels.nbytes / 2**20,
                  "peak_rss_mb": peak, "rss_before_measure_mb": before, "cuda_peak_mb": cuda}}))
"""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    mem = json.loads(out.stdout.strip().splitlines()[-1])
    mem["measure_overhead_mb"] = mem["peak_rss_mb"] - mem["rss_before_measure_mb"]
    return {"device": device, "threads": threads, "chunk_frames": chunk, **mem}


def print_table(info: dict, results: list[dict], memory: list[dict]) -> None:
    print(
        f"\ngeometry benchmark  torch {info['torch']}  {info['cpu']}  "
        f"load average {info['load_average']}  OMP_WAIT_POLICY={info['omp_wait_policy']}"
    )
    base = any("vs_baseline" in r for res in results for r in res["runs"])
    head = (
        f"{'space':10s} {'frame':9s} {'device':7s} {'thr':>3s} {'torch f/s':>10s} "
        f"{'(median)':>9s} {'ref f/s':>8s} {'x ref':>7s}"
    )
    head += f" {'base f/s':>9s} {'x base':>7s}" if base else ""
    print(head + "  cross-check")
    for res in results:
        shape = "x".join(map(str, res["shape"]))
        for r in res["runs"]:
            line = (
                f"{res['space']:10s} {shape:9s} {r['device']:7s} {r['threads']:3d} "
                f"{r['best_fps']:10.1f} {r['median_fps']:9.1f} {res['reference_fps']:8.2f} "
                f"{r['vs_reference']:7.1f}"
            )
            if base:
                line += f" {r.get('baseline_best_fps', math.nan):9.1f}"
                line += f" {r.get('vs_baseline', math.nan):7.2f}"
            bad = [k for k, c in r["cross_check"].items() if not c["ok"]]
            print(line + ("  ok" if not bad else "  FAIL: " + ", ".join(bad)))
    for mem in memory:
        print(
            f"pullback {mem['frames']} frames 1024x1024 on {mem['device']} "
            f"({mem['threads']} thr, chunk {mem['chunk_frames']}): peak RSS "
            f"{mem['peak_rss_mb']:.0f} MB (labels {mem['labels_mb']:.0f} MB, "
            f"measure adds {mem['measure_overhead_mb']:.0f} MB)"
            + (f", CUDA peak {mem['cuda_peak_mb']:.0f} MB" if mem["cuda_peak_mb"] else "")
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--ref-frames", type=int, default=6)
    ap.add_argument("--device", nargs="*", default=None)
    ap.add_argument("--threads", type=int, nargs="*", default=None, help="default: 1 and 2")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per configuration")
    ap.add_argument("--pullback", type=int, default=1000, help="0 to skip the memory run")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--specks", type=int, default=0, help="non-lumen specks inside each lumen")
    ap.add_argument(
        "--distinct",
        type=int,
        default=0,
        help="synthesise only this many frames and repeat them up to --frames (0: all distinct; "
        "synthesis takes ~0.1 s per 1024x1024 frame, far longer than a GPU measures them)",
    )
    ap.add_argument("--baseline-tree", help="folder holding another octseg/ to time (A/B)")
    ap.add_argument(
        "--accelerator-factor",
        type=int,
        help="off the CPU, pieces this many times the CPU's (kernels.ACCELERATOR_FACTOR; "
        "this tree only, not --baseline-tree's)",
    )
    ap.add_argument("--json", help="output JSON (default benchmarks/results/geometry_<dev>.json)")
    args = ap.parse_args()
    if args.accelerator_factor:
        kernels.ACCELERATOR_FACTOR = args.accelerator_factor
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    threads = args.threads or [1, 2]
    info = {
        "torch": torch.__version__,
        "cpu": f"{platform.machine()} x{os.cpu_count()}",
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "n_rays": GeometrySettings().n_rays,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "baseline_tree": args.baseline_tree,
        "accelerator_factor": kernels.ACCELERATOR_FACTOR,
    }
    results = [bench(space, args, devices, threads) for space in ("cartesian", "polar")]
    memory = []
    if args.pullback:
        for dev in devices:
            memory.append(peak_memory(args.pullback, dev, args.chunk, threads[0]))
    info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    print_table(info, results, memory)
    print(
        "peak RSS of this process (MB):", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    default = (
        "geometry_cuda.json" if any(d.startswith("cuda") for d in devices) else "geometry_cpu.json"
    )
    path = Path(args.json) if args.json else HERE / "results" / default
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"info": info, "results": results, "pullback_memory": memory}
    write_text(path, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
