"""benchmarks/back_border_probe.py: the step in grey at the truth's back calcium border, and the
thickness agreement split by it, on polar frames built by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks import back_border_probe as bb
from octseg.core.classes import CALCIUM


def _frame(behind: float) -> tuple[np.ndarray, np.ndarray]:
    """One polar frame: calcium at grey 0.2 on A-lines 10-29, samples 50-79; tissue ``behind``
    it from sample 80 on; one A-line (30) with thinner calcium, which is not at the thickest."""
    image = np.full((40, 120), 0.5, np.float32)
    labels = np.zeros((40, 120), np.uint8)
    labels[10:30, 50:80] = CALCIUM
    labels[30, 50:60] = CALCIUM
    image[10:31, 50:80] = 0.2
    image[10:31, 80:] = behind
    return image, labels


def test_the_step_is_the_grey_behind_minus_inside_at_the_thickest_calcium():
    inside, outside = bb.border_step(*_frame(behind=0.6))
    assert np.isclose(inside, 0.2) and np.isclose(outside, 0.6)
    image, labels = _frame(behind=0.6)
    labels[:] = 0
    labels[12, 79] = CALCIUM  # one sample thick: the window is that sample
    assert np.allclose(bb.border_step(image, labels), (0.2, 0.6))
    inside, outside = bb.border_step(*_frame(behind=0.1))  # tissue behind darker: no border
    assert outside - inside < 0
    assert bb.border_step(np.zeros((4, 20)), np.zeros((4, 20), np.uint8)) is None


def test_measure_reads_each_frame_from_its_build_and_splits_the_icc(tmp_path):
    frames = [_frame(b) for b in (0.6, 0.1, 0.6, 0.6)]
    val = tmp_path / "build" / "val" / "hyb-val-140-186-v0"
    val.mkdir(parents=True)
    image = np.stack([f[0] for f in frames])
    np.savez(val / "image.npz", frames=np.rint(image * 255).astype(np.uint8))
    np.savez(val / "labels.npz", labels=np.stack([f[1] for f in frames]), pixel_spacing_mm=0.01)
    probe = pd.DataFrame({
        "pullback_id": "f1-v0", "frame": [0, 1, 2, 3], "truth": [0.3, 0.6, 0.5, 0.8],
        "product": [0.0, -0.3, 0.02, -0.02], "site": [0.0, -0.3, 0.0, 0.0],
    })  # fmt: skip
    d = bb.measure(probe, {"f1": tmp_path / "build"})
    assert list(d.border_step > 0) == [True, False, True, True]
    md = bb.markdown(d)
    assert "| visible back border (step > 0) | 3 |" in md
    assert "| no visible back border (step <= 0) | 1 |" in md
    assert d.loc[d.border_step <= 0, "frame"].tolist() == [1]
    assert "| 0.5-0.9 | (-1.0, 0.0] | 1 | -0.300 | -0.300 |" in md  # frame 1's errors
    bb.figure(d, {"f1": tmp_path / "build"}, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 10_000
