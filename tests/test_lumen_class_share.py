"""benchmarks/lumen_class_share.py: what a run calls the expert's lumen, from label files."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import lumen_class_share as lcs
from octseg.core.errors import InputError
from octseg.io.labels import LabelFile, save_labels


def _write(path, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_labels(
        path,
        LabelFile(
            labels=labels.astype(np.uint8),
            space="polar",
            pixel_spacing_mm=0.01,
            frame_spacing_mm=0.2,
        ),
    )


def test_shares_of_the_expert_lumen_per_run_and_corruption(tmp_path):
    manual = np.zeros((2, 4, 5), np.uint8)
    manual[:, :, :2] = 1  # 16 lumen pixels
    auto = manual.copy()
    auto[0, :, 1] = 2  # 4 of them called calcium
    auto[1, 0, 0] = 3  # 1 strut
    _write(tmp_path / "manual" / "blood-2" / "labels.npz", manual)
    _write(tmp_path / "run" / "blood-2" / "labels.npz", auto)
    out = lcs.table(tmp_path / "manual", {"r": tmp_path / "run"}, ["blood-2"])
    row = out.iloc[0]
    lcs.main(
        [
            "--manual",
            str(tmp_path / "manual"),
            f"r={tmp_path / 'run'}",
            "--corruptions",
            "blood-2",
            "--out",
            str(tmp_path / "share.md"),
        ]
    )
    assert "| r     | blood-2      |  0.6875 |" in (tmp_path / "share.md").read_text()
    assert (row["lumen"], row["calcium"], row["strut"]) == pytest.approx((11 / 16, 4 / 16, 1 / 16))
    assert row["background"] == 0 and row["guidewire"] == 0


def test_a_label_map_of_another_shape_is_named(tmp_path):
    with pytest.raises(InputError, match="differs from the expert's") as err:
        lcs.shares(np.zeros((1, 3, 3)), np.ones((1, 4, 3)), tmp_path / "x.npz")
    assert "x.npz" in str(err.value)
    with pytest.raises(InputError, match="no lumen"):
        lcs.shares(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), tmp_path / "x.npz")
