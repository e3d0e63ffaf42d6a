"""Hybrid pullbacks written the way consoles export them: Cartesian PNG frames, sepia or grey,
500-1024 px, with a ``spacing.json``, so ``infer.py`` runs on them as on a console export and
``evaluate.py`` compares its output with the exact truth.

Layout (as the robustness suite, :mod:`octseg.datasets.robustness`, whose PNG writer
:func:`~octseg.datasets.robustness.write_variant` writes the frames)::

    OUT/inputs/PID/0000.png ... + spacing.json     # what infer.py reads
    OUT/manual/PID/labels.npz                      # Cartesian labels, every class, catheter centre
    OUT/manual/PID/frames.csv, struts.csv, summary.json   # the hybrid's truth/ (exact values)

The catheter sits at the image centre and the polar field's radius spans half the frame, so a
frame of ``size`` px has ``2 * R * ps / size`` mm per pixel; outside the field the frame is black
as on a console. Truth values are in mm about the catheter (docs/metrics.md) and do not depend
on the grid, so the hybrid's ``truth/`` tables are copied unchanged. Sepia uses the product's
own map (:func:`octseg.io.color.gray_to_sepia`), grey frames are written as 8-bit grey PNG.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from octseg.core.errors import InputError
from octseg.datasets.hybrid.render import label_outline, render_cartesian
from octseg.io.labels import LabelFile, load_labels, save_labels

COLOURS = ("sepia", "grey")


def cartesian_frame(polar: np.ndarray, ps: float, size: int, colour: str) -> np.ndarray:
    """Polar grey frame ``(A, R)`` in [0, 1] -> console frame: sepia RGB ``(size, size, 3)``
    or grey ``(size, size)`` uint8."""
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
    return render_cartesian(polar, ps, size, sepia=colour == "sepia")


def export_console(
    hybrid_dir: str | Path, out: str | Path, pid: str, *, size: int, colour: str
) -> Path:
    """One hybrid pullback folder (``image.npz``, ``labels.npz``, ``truth/``) as a console
    export ``out/inputs/pid`` with its labels and truth in ``out/manual/pid``."""
    from octseg.core.classes import LUMEN
    from octseg.datasets.robustness import Frame, write_variant
    from octseg.io import read_pullback

    src = Path(hybrid_dir)
    if not (src / "truth" / "frames.csv").exists():
        raise InputError(src, "not a hybrid pullback (no truth/frames.csv)")
    if not 64 <= size <= 4096:
        raise InputError(src, f"console frame size {size} px is outside 64..4096")
    pb = read_pullback(src / "image.npz")
    lf = load_labels(src / "labels.npz")
    ps, n_samples = pb.pixel_spacing_mm, pb.read(0, 1).shape[-1]
    spacing = ps * n_samples * 2 / size
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    cart = label_outline(lf.labels, ps, size).astype(np.uint8)
    frames = [
        Frame(
            cartesian_frame(pb.read(f, f + 1)[0], ps, size, colour),
            cart[i] == LUMEN,
            spacing,
            centre,
        )
        for i, f in enumerate(range(pb.n_frames))
    ]
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:  # write_variant's lumen-only labels: not used
        write_variant(frames, pid, out / "inputs", Path(tmp), frame_spacing_mm=pb.frame_spacing_mm)
    man = out / "manual" / pid
    man.mkdir(parents=True, exist_ok=True)
    save_labels(
        man / "labels.npz",
        LabelFile(
            labels=cart,
            space="cartesian",
            pixel_spacing_mm=spacing,
            frame_spacing_mm=pb.frame_spacing_mm,
            catheter_center=centre,
        ),
    )
    for name in ("frames.csv", "struts.csv", "summary.json"):
        if (src / "truth" / name).exists():
            shutil.copyfile(src / "truth" / name, man / name)
    return out / "inputs" / pid


def export_folder(
    root: str | Path, out: str | Path, *, sizes: tuple[int, int] = (500, 1024), seed: int = 0
) -> list[dict]:
    """Every hybrid pullback under ``root`` as a console export in ``out``: sizes drawn in
    ``sizes`` (inclusive), sepia and grey alternating. Returns what was written."""
    if not Path(root).is_dir():
        raise InputError(root, "not a folder of hybrid pullbacks")
    if not 64 <= sizes[0] <= sizes[1] <= 4096:
        raise InputError(root, f"console frame sizes {sizes} must satisfy 64 <= MIN <= MAX <= 4096")
    ids = sorted(d.name for d in Path(root).iterdir() if (d / "truth" / "frames.csv").exists())
    if not ids:
        raise InputError(root, "holds no hybrid pullback (no PID/truth/frames.csv)")
    rng = np.random.default_rng(seed)
    made = []
    for i, pid in enumerate(ids):
        size = int(rng.integers(sizes[0], sizes[1] + 1))
        colour = COLOURS[i % 2]
        export_console(Path(root) / pid, out, pid, size=size, colour=colour)
        made.append({"id": pid, "size": size, "colour": colour})
    return made
