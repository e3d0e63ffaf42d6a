"""benchmarks/calcium_extension_figure.py: frames unrolled about the catheter, the true calcium
outlined on the left, the first run outlined and what the second adds filled on the right."""

from __future__ import annotations

import numpy as np
from PIL import Image

from benchmarks import calcium_extension_figure as fig
from octseg.core.classes import CALCIUM
from octseg.io.labels import LabelFile, save_labels

N = 301  # pixels across: 3 mm of field each side at 0.01 mm
SP = 0.01


def _ring_arc(arc: tuple[float, float]) -> np.ndarray:
    """(1, N, N) labels: calcium 1.5-2.0 mm from the centre over ``arc`` degrees."""
    y, x = np.mgrid[:N, :N] - (N - 1) / 2
    rho, phi = np.hypot(y, x) * SP, np.degrees(np.arctan2(y, x)) % 360
    lab = np.zeros((1, N, N), np.uint8)
    lab[0][(rho > 1.5) & (rho < 2.0) & (phi >= arc[0]) & (phi < arc[1])] = CALCIUM
    return lab


def _write(folder, arc) -> None:
    c = (N - 1) / 2
    lf = LabelFile(_ring_arc(arc), "cartesian", SP, 0.2, catheter_center=(c, c))
    folder.mkdir(parents=True)
    save_labels(folder / "labels.npz", lf)


def test_the_second_run_adds_are_filled_and_the_figure_is_written(tmp_path):
    pool = tmp_path / "pool"
    (pool / "inputs" / "p").mkdir(parents=True)
    Image.fromarray(np.full((N, N), 128, np.uint8)).save(pool / "inputs" / "p" / "0000.png")
    _write(pool / "manual" / "p", (0, 120))
    _write(tmp_path / "a" / "p", (20, 100))
    _write(tmp_path / "b" / "p", (10, 110))
    truth, runs = fig.panel(pool, [tmp_path / "a", tmp_path / "b"], "p", 0)
    rgb = runs.astype(int)
    green = (rgb[..., 1] > rgb[..., 0] + 40) & (rgb[..., 1] > rgb[..., 2] + 40)  # the fill
    cols = np.flatnonzero(green.any(0)) * 360 / fig.N_ALINES  # angles with added calcium
    assert set(np.round(cols).astype(int)) <= set(range(9, 21)) | set(range(99, 112))
    assert cols.min() < 15 and cols.max() > 105  # both ends of the second run's wider arc
    red = np.all(truth == fig.COLOURS["truth"], -1)
    assert red.any() and np.all(runs == fig.COLOURS["a"], -1).any()  # outlines drawn
    out = tmp_path / "fig.png"
    fig.main([str(pool), str(tmp_path / "a"), str(tmp_path / "b"), str(out), "--frames", "p:0"])
    assert out.stat().st_size > 10_000
