"""Cost of the training augmentation per frame: each transform alone (applied every time) and the
whole chain at its configured probabilities, against the chain without the appearance transforms
measured in the same run.

    python benchmarks/augment_cost.py [--root DATASET] [--grid 256 320 0.0117] [--k 3]
        [--frames 12] [--repeat 20] [--set data.augment.blood_p=0.3 ...] [--json PATH]

``--root``: real training frames (a training folder, e.g. ``data/hybrid_stent/train``; its first
pullback), resampled to ``--grid`` as training does; without it, random frames with a lumen
mask. ``--set KEY=VALUE`` sets ``data.augment`` keys (``blood_p=0.3`` or the full key); without
any, the default model's appearance randomisation (``experiment=default``'s ``data.augment``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import yaml

from octseg.train.augment import APPEARANCE_KEYS, build_augmentation

CONFIGS = Path(__file__).resolve().parents[1] / "octseg" / "configs"


def default_augment() -> dict[str, Any]:
    """``data.augment`` of ``experiment=default`` (the default model's randomisation)."""
    text = (CONFIGS / "experiment" / "default.yaml").read_text()
    return dict(yaml.safe_load(text)["data"]["augment"])


def parse_sets(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not _:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        out[key.removeprefix("data.augment.")] = yaml.safe_load(value)
    return out


def random_frames(n: int, grid: tuple[int, int], k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a, r = grid
    frames = []
    for _ in range(n):
        mask = np.zeros((a, r), np.uint8)
        border = rng.integers(r // 4, r // 2, size=a)
        mask[np.arange(r)[None, :] < border[:, None]] = 1
        frames.append((rng.random((a, r, k), dtype=np.float32), mask))
    return frames


def real_frames(root: Path, n: int, grid: dict, k: int):
    from octseg.train.data import PullbackFrames, class_lut, list_entries, load_pullback

    entry = list_entries(root)[0]
    pb = load_pullback(entry, grid, k, class_lut([0, 1, 2, 3, 4]))
    ds = PullbackFrames([pb], k, {"mode": "none"}, None)
    step = max(1, len(ds) // n)
    return [ds.raw(i) for i in range(0, len(ds), step)][:n]


def per_frame_ms(compose: A.Compose, frames, repeat: int) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        for img, mask in frames:
            compose(image=img.copy(), mask=mask)
    return 1000 * (time.perf_counter() - t) / (repeat * len(frames))


def measure(cfg: dict[str, Any], frames, repeat: int) -> dict[str, Any]:
    """ms per frame of each transform forced on, of the chain, and of the chain without the
    appearance transforms (the baseline)."""
    alone = {}
    for tr in build_augmentation(cfg).transforms:
        tr.p = 1.0
        name = type(tr).__name__
        key = name if name not in alone else f"{name} #{sum(k.startswith(name) for k in alone) + 1}"
        alone[key] = per_frame_ms(A.Compose([tr]), frames, repeat)
    chain = per_frame_ms(build_augmentation(cfg), frames, repeat)
    plain = {k: v for k, v in cfg.items() if k not in APPEARANCE_KEYS}
    base = per_frame_ms(build_augmentation(plain), frames, repeat)
    return {"alone_ms": alone, "chain_ms": chain, "baseline_ms": base, "ratio": chain / base}


def table(res: dict[str, Any]) -> str:
    rows = ["| transform (applied every time) | ms per frame |", "|---|---|"]
    rows += [f"| {k} | {v:.2f} |" for k, v in res["alone_ms"].items()]
    rows += [
        f"| **chain, configured probabilities** | **{res['chain_ms']:.2f}** |",
        f"| chain without appearance transforms (baseline) | {res['baseline_ms']:.2f} |",
        f"| ratio chain / baseline | {res['ratio']:.1f}x |",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path)
    ap.add_argument("--grid", nargs=3, type=float, default=[256, 320, 0.0117])
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    grid = {"n_alines": int(a.grid[0]), "n_samples": int(a.grid[1]), "spacing_mm": a.grid[2]}
    cfg = parse_sets(a.set) or default_augment()
    if a.root:
        frames = real_frames(a.root, a.frames, grid, a.k)
    else:
        frames = random_frames(a.frames, (grid["n_alines"], grid["n_samples"]), a.k)
    res = measure(cfg, frames, a.repeat)
    res.update(
        grid=grid,
        k=a.k,
        frames=len(frames),
        augment=cfg,
        cpu=f"{platform.machine()} x{os.cpu_count()}",
    )
    print(f"{len(frames)} frames of {grid['n_alines']} x {grid['n_samples']} x {a.k}, {res['cpu']}")
    print(table(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
