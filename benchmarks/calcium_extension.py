"""What the calcium arc extension (``postprocess.calcium_extend_prob``, octseg/model/extend.py)
costs per batch on the net grid, against the argmax the predictor does anyway.

    .venv/bin/python benchmarks/calcium_extension.py [--batch 8] [--lesions 3] [--repeat 20]
        [--threads 1] [--device cpu]

Probability maps of the ``experiment=hybrid`` net grid (256 A-lines x 160 samples, 5 classes)
hold ``--lesions`` calcium lesions per frame, each with faint ends (calcium probability 0.3
over 10 A-lines after its end) and a speck that seeds nothing. Reports ms per batch of the
predictor's argmax (baseline) and of the extension after it (seeds, growth), their ratio, and
the A-lines grown.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.model.extend import apply_extension, extend_calcium
from octseg.model.postprocess import large_components

A, R, SPACING_MM, MIN_MM2, LOW = 256, 160, 0.0234, 0.1, 0.15


def probability_maps(batch: int, lesions: int, device: str) -> torch.Tensor:
    p = torch.zeros(batch, 5, A, R, device=device)
    p[:, BACKGROUND] = 1.0
    for k in range(lesions):
        a0 = 10 + k * (A // max(lesions, 1))
        for rows, value in ((slice(a0, a0 + 40), 0.8), (slice(a0 + 40, a0 + 50), 0.3)):
            p[:, CALCIUM, rows, 60:80] = value
            p[:, BACKGROUND, rows, 60:80] = 1.0 - value
        p[:, CALCIUM, a0 + 60, 100], p[:, BACKGROUND, a0 + 60, 100] = 0.9, 0.1  # a speck
    return p


def argmax(p: torch.Tensor) -> torch.Tensor:
    """The class argmax as the predictor takes it on the CPU (through a channels-last copy)."""
    return p.permute(0, 2, 3, 1).contiguous().argmax(-1)


def extension(p: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """The samples joined (seeds, growth), as the predictor runs it after its argmax."""
    seeds = large_components(arg == CALCIUM, SPACING_MM, MIN_MM2)
    return extend_calcium(p, arg, calcium=CALCIUM, background=BACKGROUND, low=LOW, seeds=seeds)


def timed(fn, p: torch.Tensor, repeat: int, device: str) -> float:
    """Median ms of ``fn(p)`` over ``repeat`` runs (after one warm-up)."""
    fn(p)
    times = []
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(p)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lesions", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    with torch.inference_mode():
        p = probability_maps(a.batch, a.lesions, a.device)
        arg = argmax(p)
        joined = extension(p, arg)
        assert torch.equal(
            apply_extension(p, joined, CALCIUM).argmax(1) == CALCIUM, joined | (arg == CALCIUM)
        )
        grown = joined.any(-1)
        base = timed(argmax, p, a.repeat, a.device)
        ext = timed(lambda x: extension(x, arg), p, a.repeat, a.device)
    print(f"{platform.processor() or platform.machine()}, {a.device}, {a.threads} thread(s)")
    print(f"batch {a.batch} x {A}x{R}, {a.lesions} lesions/frame: {int(grown.sum())} A-lines grown")
    print(
        f"argmax {base:.2f} ms/batch; extension {ext:.2f} ms/batch ({ext / base:.1f}x the argmax)"
    )


if __name__ == "__main__":
    main()
