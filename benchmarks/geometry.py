"""Benchmark of the geometry module: batched torch vs the per-frame NumPy/scikit-image reference.

    .venv/bin/python benchmarks/geometry.py [--frames 64] [--ref-frames 6] [--device cpu cuda]
                                            [--pullback 1000] [--threads N]

Reports frames/s of ``measure_labels`` (torch, chunked) and of ``reference.measure_reference``
on the same synthetic label maps (1024x1024 Cartesian at 10 um, 504x968 polar at 5 um), their
ratio, the largest differences between the two (a cross-check), and the peak memory (RSS of a
fresh subprocess, plus torch CUDA peak where used) of a chunked 1,000-frame 1024x1024 pullback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from octseg.geometry import GeometrySettings, measure_labels
from octseg.geometry.reference import measure_reference
from octseg.labels import LabelFile
from octseg.measurements import FRAME_COLUMNS


def make_frames(n: int, space: str, seed: int = 0) -> tuple[np.ndarray, float]:
    """Realistic-looking label maps: elliptic off-centre lumen, a calcium sector, guidewire
    shadow, ~12 struts (half of the frames), varied per frame."""
    rng = np.random.default_rng(seed)
    if space == "cartesian":
        ps, (h, w) = 0.01, (1024, 1024)
        c = ((h - 1) / 2, (w - 1) / 2)
        i, j = np.mgrid[0:h, 0:w].astype(np.float32)
        y, x = (i - c[0]) * ps, (j - c[1]) * ps
    else:
        ps, (h, w) = 0.005, (504, 968)
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
    return out, ps


def rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def compare(m, ref) -> dict[str, float]:
    diffs: dict[str, float] = {}
    for row, (rrow, _) in zip(m.frames, ref):
        for key in FRAME_COLUMNS:
            a, b = row.get(key), rrow.get(key)
            if key in ("frame", "position_mm") or (a is None and b is None):
                continue
            if (a is None) != (b is None):
                diffs[key] = math.inf
                continue
            diffs[key] = max(diffs.get(key, 0.0), abs(float(a) - float(b)))
    return diffs


def bench(space: str, n: int, n_ref: int, devices: list[str]) -> dict:
    labels, ps = make_frames(n, space)
    lf = LabelFile(labels=labels, space=space, pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    res: dict = {"space": space, "shape": list(labels.shape[1:]), "frames": n}
    ref_out = []
    res["reference_fps"] = rate(
        lambda: ref_out.extend(measure_reference(labels[:n_ref], space, ps)), n_ref
    )
    for dev in devices:
        measure_labels(lf, device=dev, chunk_frames=16)  # warm-up
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        out: list = []
        res[f"torch_{dev}_fps"] = rate(
            lambda out=out, dev=dev: out.append(measure_labels(lf, device=dev)), n
        )
        res[f"torch_{dev}_vs_reference"] = res[f"torch_{dev}_fps"] / res["reference_fps"]
        res[f"max_abs_diff_{dev}"] = compare(out[0], ref_out)
    return res


def peak_memory(n: int, device: str, chunk: int) -> dict:
    """Run a chunked n-frame 1024x1024 pullback in a fresh process; report its peak RSS."""
    code = f"""
import json, resource, numpy as np, torch, sys
sys.path.insert(0, {repr(sys.path[0])})
from geometry import make_frames
from octseg.labels import LabelFile
from octseg.geometry import measure_labels
base, ps = make_frames(8, "cartesian")
labels = np.concatenate([base] * ({n} // 8 + 1))[:{n}]
del base
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
lf = LabelFile(labels=labels, space="cartesian", pixel_spacing_mm=ps, frame_spacing_mm=0.2)
m = measure_labels(lf, device={device!r}, chunk_frames={chunk})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cuda = torch.cuda.max_memory_allocated() / 2**20 if {device!r}.startswith("cuda") else None
print(json.dumps({{"frames": len(m.frames), "labels_mb": labels.nbytes / 2**20,
                  "peak_rss_mb": peak, "rss_before_measure_mb": before, "cuda_peak_mb": cuda}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--ref-frames", type=int, default=6)
    ap.add_argument("--device", nargs="*", default=None)
    ap.add_argument("--pullback", type=int, default=1000, help="0 to skip the memory run")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the memory subprocess too
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    info = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "settings": GeometrySettings().n_rays,
    }
    print(json.dumps(info))
    for space in ("cartesian", "polar"):
        print(json.dumps(bench(space, args.frames, args.ref_frames, devices), indent=1))
    if args.pullback:
        for dev in devices:
            mem = peak_memory(args.pullback, dev, args.chunk)
            print(json.dumps({"pullback_memory": dev, **mem}))
    print(
        "peak RSS of this process (MB):", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )


if __name__ == "__main__":
    main()
