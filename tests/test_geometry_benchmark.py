"""benchmarks/geometry.py --baseline-tree: the A/B subprocess times the other tree's octseg, even
with this checkout installed in editable mode (its import hook and benchmarks/geometry.py's own
path entry used to shadow the tree)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from geometry_scenes import scene

from benchmarks import geometry as bench

ROOT = Path(__file__).resolve().parents[1]


def test_baseline_tree_times_the_other_trees_package(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "octseg", tree / "octseg", ignore=shutil.ignore_patterns("*.ckpt"))
    labels = np.stack([scene("cartesian", lumen=(0.0, 0.0, 0.7), struts=[(0.69, 30.0)])] * 2)
    args = SimpleNamespace(chunk=2, repeat=1)
    res = bench.time_baseline(str(tree), labels, "cartesian", "cpu", 1, args)
    assert Path(res["package"]).resolve().is_relative_to(tree.resolve())
    assert res["best_fps"] > 0 and res["median_fps"] > 0
