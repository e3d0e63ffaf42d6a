"""Where ``measure_labels`` spends its time on a device: a torch.profiler table of one chunk.

    .venv/bin/python benchmarks/geometry_profile.py [--device cuda] [--space cartesian]
        [--frames 256] [--chunk 256] [--rows 15] [--json PATH]

The frames are ``benchmarks/geometry.py``'s (16 distinct ones, repeated). Prints frames/s of an
unprofiled run, how many operators and host-device synchronisations one run launches (per
frame), and the operators that take the most host time and the most device time. On a GPU the
geometry is host-bound when the device time is a small share of the wall time: then fewer,
larger launches help, faster kernels do not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* beside octseg

from benchmarks.geometry import make_frames  # noqa: E402
from octseg.geometry import measure_labels  # noqa: E402
from octseg.io.labels import LabelFile  # noqa: E402

SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "aten::_local_scalar_dense")


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
    base, ps = make_frames(16, args.space)
    labels = np.concatenate([base] * -(-args.frames // 16))[: args.frames]
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
        run()
    events = prof.events()
    ops = sum(1 for e in events if e.name.startswith("aten::") and e.cpu_parent is None)
    syncs = sum(1 for e in events if e.name in SYNCS)
    device_us = sum(e.self_device_time_total for e in prof.key_averages()) if cuda else 0.0
    res = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "space": args.space,
        "frames": args.frames,
        "chunk": args.chunk,
        "frames_per_s": args.frames / wall,
        "top_level_ops_per_frame": ops / args.frames,
        "syncs_per_run": syncs,
        "device_time_share": device_us * 1e-6 / wall if cuda else None,
    }
    print(json.dumps(res, indent=1))
    for key in ["self_cpu_time_total"] + ["self_device_time_total"] * cuda:
        print(prof.key_averages().table(sort_by=key, row_limit=args.rows))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
