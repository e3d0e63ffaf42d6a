"""benchmarks/pool_draws_figure.py: per-draw Dice and arc bias of scored runs, read from
hybrid_pool.py's score JSON, drawn side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks import pool_draws_figure as fig


def _summary(dice: float, bias: float) -> dict:
    return {"calcium_dice": dice, "calcium_arc": {"bias": bias}}


RESULTS = {
    "a": {"pooled": _summary(0.7, -6.0), "d0": _summary(0.8, 1.0), "d1": _summary(0.5, -18.0)},
    "b": {"pooled": _summary(0.75, -3.0), "d0": _summary(0.85, 2.0), "d1": _summary(0.55, -12.0)},
}


def test_values_per_run_and_draw_with_the_pool_last() -> None:
    draws, dice, arc = fig.draw_values(RESULTS, ["b", "a"])
    assert draws == ["d0", "d1", "pooled"]
    np.testing.assert_allclose(dice, [[0.85, 0.55, 0.75], [0.8, 0.5, 0.7]])
    np.testing.assert_allclose(arc, [[2.0, -12.0, -3.0], [1.0, -18.0, -6.0]])


def test_a_run_not_in_the_results_is_named() -> None:
    with pytest.raises(SystemExit, match="'c'"):
        fig.draw_values(RESULTS, ["a", "c"])


def test_a_run_lacking_a_draw_is_named() -> None:
    short = {**RESULTS, "c": {"pooled": _summary(0.7, -6.0), "d0": _summary(0.8, 1.0)}}
    with pytest.raises(SystemExit, match="'c' lacks draws \\['d1'\\]"):
        fig.draw_values(short, ["a", "c"])


def test_main_writes_a_png(tmp_path, monkeypatch) -> None:
    src, out = tmp_path / "r.json", tmp_path / "img" / "f.png"
    src.write_text(json.dumps(RESULTS))
    monkeypatch.setattr("sys.argv", ["x", str(src), "--runs", "a", "b", "--out", str(out)])
    fig.main()
    with Image.open(out) as im:
        assert im.size[0] > 500 and im.size[1] > 300
