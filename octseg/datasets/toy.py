"""A tiny labelled-pullback dataset (disc lumen, calcium sector, strut dots, guidewire shadow)
in the dataset layout, for tests and benchmarks. Not a realistic simulator (see ``octseg synth``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octseg.core import atomic
from octseg.core.classes import CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.io.labels import LabelFile, save_labels


def toy_pullback(
    n_frames: int, a: int, r: int, spacing_mm: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Polar frames (F, A, R) uint8 and labels (F, A, R) uint8."""
    theta = 2 * np.pi * np.arange(a) / a
    rad = np.arange(r) * spacing_mm
    lum_r0 = rng.uniform(0.35, 0.5) * r * spacing_mm
    off = rng.uniform(0, 0.15) * r * spacing_mm
    phase = rng.uniform(0, 2 * np.pi)
    ca_start = rng.uniform(0, 2 * np.pi)
    ca_len = rng.uniform(0.5, 1.5)
    gw = rng.uniform(0, 2 * np.pi)
    n_struts = int(rng.integers(4, 8))
    strut_ang = (rng.uniform(0, 2 * np.pi) + np.arange(n_struts) * 2 * np.pi / n_struts) % (
        2 * np.pi
    )
    images = np.zeros((n_frames, a, r), dtype=np.uint8)
    labels = np.zeros((n_frames, a, r), dtype=np.uint8)
    for f in range(n_frames):
        lum = lum_r0 * (1 + 0.1 * np.sin(f / 5)) + off * np.cos(theta - phase)  # (A,)
        lab = np.zeros((a, r), dtype=np.uint8)
        inside = rad[None, :] < lum[:, None]
        lab[inside] = LUMEN
        dth = np.angle(np.exp(1j * (theta - ca_start)))
        ca_rows = (dth >= 0) & (dth < ca_len) & (f % 10 < 7)
        depth = rad[None, :] - lum[:, None]
        ca = ca_rows[:, None] & (depth > 0.1) & (depth < 0.1 + 0.25 * r * spacing_mm)
        lab[ca] = CALCIUM
        gwd = np.abs(np.angle(np.exp(1j * (theta - gw - 0.02 * f))))
        lab[(gwd < 0.15)[:, None] & ~inside] = GUIDEWIRE
        img = np.where(
            inside, 0.05, 0.65 * np.exp(-np.clip(depth, 0, None) / (0.4 * r * spacing_mm))
        )
        img = np.where(ca, 0.2, img)
        img = np.where(lab == GUIDEWIRE, 0.02, img)
        if f % 3 != 2:
            for sa in strut_ang:
                i0 = int(round(sa / (2 * np.pi) * a)) % a
                j0 = int(lum[i0] / spacing_mm) - 1
                for di in (-1, 0, 1):
                    for dj in (-1, 0):
                        ii, jj = (i0 + di) % a, j0 + dj
                        if 0 <= jj < r:
                            lab[ii, jj] = STRUT
                            img[ii, jj] = 1.0
        img = img * rng.gamma(8.0, 1 / 8.0, size=img.shape)
        images[f] = np.clip(img * 255, 0, 255).astype(np.uint8)
        labels[f] = lab
    return images, labels


def make_toy_dataset(
    root: str | Path,
    *,
    n_pullbacks: int = 3,
    n_frames: int = 6,
    a: int = 48,
    r: int = 40,
    spacing_mm: float = 0.06,
    frame_spacing_mm: float = 0.2,
    sparse_every: int | None = None,
    seed: int = 0,
) -> Path:
    """Write ``n_pullbacks`` polar pullbacks (``pb000``...) under ``root``.

    ``sparse_every=n`` labels only every n-th frame (``frame_index`` = 0, n, 2n, ...).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for p in range(n_pullbacks):
        d = root / f"pb{p:03d}"
        d.mkdir(parents=True, exist_ok=True)
        images, labels = toy_pullback(n_frames, a, r, spacing_mm, rng)
        atomic.save_npz(
            d / "image.npz",
            frames=images,
            space=np.array("polar"),
            pixel_spacing_mm=np.float64(spacing_mm),
            frame_spacing_mm=np.float64(frame_spacing_mm),
        )
        frame_index = None
        if sparse_every:
            frame_index = np.arange(0, n_frames, sparse_every)
            labels = labels[frame_index]
        save_labels(
            d / "labels.npz",
            LabelFile(
                labels=labels,
                space="polar",
                pixel_spacing_mm=spacing_mm,
                frame_spacing_mm=frame_spacing_mm,
                frame_index=frame_index,
            ),
        )
    return root
