"""benchmarks/model_card_figure.py draws each outline over the image of its own frame: frame k
of a PNG folder is its k-th file in octseg's natural order, and a reference may label only some
frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import model_card_figure as fig
from octseg.core.classes import LUMEN
from octseg.io.labels import LabelFile, save_labels

N = 12  # names 0.png .. 11.png: natural order differs from sorted() (10.png before 2.png)


def _labels(path: Path, masks: np.ndarray, frames: list[int] | None = None) -> None:
    lf = LabelFile(
        labels=masks.astype(np.uint8) * LUMEN,
        space="cartesian",
        pixel_spacing_mm=0.02,
        frame_spacing_mm=0.2,
        frame_index=None if frames is None else np.array(frames, dtype=np.int64),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_labels(path, lf)


def test_worst_lumen_frame_is_drawn_on_its_own_image(tmp_path):
    work = tmp_path / "W"
    inputs = work / "real" / "suite" / "inputs" / "none"
    inputs.mkdir(parents=True)
    for k in range(N):  # image k: grey value 10 * k everywhere
        Image.fromarray(np.full((16, 16), 10 * k, np.uint8)).save(inputs / f"{k}.png")
    disc = np.zeros((16, 16), bool)
    disc[4:12, 4:12] = True
    pred = np.repeat(disc[None], N, axis=0)
    pred[5] = False  # the product misses the lumen in frame 5 only
    _labels(work / "real" / "infer" / "none" / "labels.npz", pred)
    reference = [2, 5, 10, 11]  # the reference labels some frames only
    _labels(
        work / "real" / "suite" / "manual" / "none" / "labels.npz",
        np.repeat(disc[None], len(reference), axis=0),
        reference,
    )
    title, img = fig.worst_lumen(work, "none")
    assert "image 5" in title and "Dice 0.00" in title
    assert img[0, 0, 0] == 50  # the background of image 5, not of another frame
