"""Frames per second of octseg.core.polar: 504x968 polar <-> 1024x1024 Cartesian.

Images (float32, bilinear) and label maps (uint8, nearest), batched, on the CPU and on CUDA
where available. The sampling grid is rebuilt on every call (as in the library), so the numbers
include it.

    .venv/bin/python benchmarks/polar.py                 # CPU (and CUDA if present)
    .venv/bin/python benchmarks/polar.py --batch 16 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from octseg.core.polar import cartesian_to_polar, polar_to_cartesian

A, R, H = 504, 968, 1024
PS_POLAR = 0.005  # mm per depth sample (968 samples = 4.84 mm)
PS_CART = 2 * R * PS_POLAR / H  # the polar disk fills the Cartesian frame


def bench(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats


def run(device: str, batch: int, repeats: int) -> list[dict]:
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    img_p = torch.rand(batch, A, R, device=dev)
    lab_p = torch.randint(0, 5, (batch, A, R), dtype=torch.uint8, device=dev)
    img_c = torch.rand(batch, H, H, device=dev)
    lab_c = torch.randint(0, 5, (batch, H, H), dtype=torch.uint8, device=dev)
    p2c = {"out_size": (H, H), "polar_spacing_mm": PS_POLAR, "cart_spacing_mm": PS_CART}
    c2p = {"n_alines": A, "n_samples": R, "cart_spacing_mm": PS_CART, "polar_spacing_mm": PS_POLAR}
    cases = {
        "polar->cart image bilinear": lambda: polar_to_cartesian(img_p, **p2c),
        "polar->cart labels nearest": lambda: polar_to_cartesian(lab_p, mode="nearest", **p2c),
        "cart->polar image bilinear": lambda: cartesian_to_polar(img_c, **c2p),
        "cart->polar labels nearest": lambda: cartesian_to_polar(lab_c, mode="nearest", **c2p),
    }
    out = []
    with torch.inference_mode():
        for name, fn in cases.items():
            sec = bench(fn, repeats, sync)
            out.append(
                {
                    "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
                    "threads": torch.get_num_threads(),
                    "case": name,
                    "batch": batch,
                    "ms_per_batch": round(sec * 1e3, 1),
                    "frames_per_s": round(batch / sec, 1),
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--device", action="append", help="cpu, cuda (default: cpu + cuda if present)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    devices = a.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    for device in devices:
        batch = a.batch if device == "cpu" else max(a.batch, 32)
        for row in run(device, batch, a.repeats if device == "cpu" else 20):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
