"""Where ``measure_labels`` spends its time on a device: a torch.profiler table of one chunk.

    .venv/bin/python benchmarks/geometry_profile.py [--device cuda] [--space cartesian]
        [--frames 256] [--chunk 256] [--rows 15] [--json PATH]

The frames are ``benchmarks/geometry.py``'s (16 distinct ones, repeated). Prints frames/s of an
unprofiled run, how many operators (per frame) and stream synchronisations one run launches,
the milliseconds the GPU spent copying and in kernels against the profiled run's wall time, and
the operators that take the most host time and the most device time. On a GPU the geometry is
host-bound when copies and kernels are a small share of the wall time: then fewer, larger
launches help, faster kernels do not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* beside octseg

from benchmarks.geometry import make_frames  # noqa: E402
from octseg.geometry import measure_labels  # noqa: E402
from octseg.io.labels import LabelFile  # noqa: E402

SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize")
NOT_WORK = ("Activity Buffer Request",)  # the profiler's own device-side rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--space", default="cartesian", choices=["cartesian", "polar"])
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    labels, ps = make_frames(args.frames, args.space, distinct=16)
    lf = LabelFile(labels=labels, space=args.space, pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    cuda = args.device.startswith("cuda")

    def run():
        measure_labels(lf, device=args.device, chunk_frames=args.chunk)
        if cuda:
            torch.cuda.synchronize()

    run()  # warm-up
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    acts = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()
        run()
        profiled = time.perf_counter() - t0
    events = prof.events()
    ops = sum(1 for e in events if e.name.startswith("aten::") and e.cpu_parent is None)
    syncs = sum(1 for e in events if e.name in SYNCS)
    # kernels and copies as the GPU ran them (device-side events; each counted once)
    on_gpu = [e for e in events if e.device_type == DeviceType.CUDA and e.name not in NOT_WORK]
    copy_us = sum(e.device_time_total for e in on_gpu if e.name.startswith("Memcpy"))
    kernel_us = sum(e.device_time_total for e in on_gpu if not e.name.startswith("Memcpy"))
    res = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "space": args.space,
        "frames": args.frames,
        "chunk": args.chunk,
        "frames_per_s": args.frames / wall,
        "top_level_ops_per_frame": ops / args.frames,
        "stream_syncs_per_run": syncs,
        "profiled_wall_ms": profiled * 1e3,
        "gpu_copy_ms": copy_us * 1e-3 if cuda else None,
        "gpu_kernel_ms": kernel_us * 1e-3 if cuda else None,
    }
    print(json.dumps(res, indent=1))
    for key in ["self_cpu_time_total"] + ["self_device_time_total"] * cuda:
        print(prof.key_averages().table(sort_by=key, row_limit=args.rows))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
