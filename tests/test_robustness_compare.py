"""benchmarks/robustness_compare.py: runs grouped by recipe, the target counted per corruption,
the plot written."""

from __future__ import annotations

import csv

import pytest

from benchmarks import robustness_compare as rc

FIELDS = ["corruption", "severity", "dice_mean", "area_bias_pct"]


def _csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(dict(zip(FIELDS, r, strict=True)) for r in rows)
    return path


def test_table_counts_runs_in_target_per_recipe(tmp_path):
    a1 = _csv(tmp_path / "a1.csv", [("none", 0, 0.97, 1.0), ("blood", 2, 0.96, -4.0),
                                    ("blood", 3, 0.5, -60.0)])  # fmt: skip
    a2 = _csv(tmp_path / "a2.csv", [("none", 0, 0.97, 0.5), ("blood", 2, 0.90, -3.0)])
    b1 = _csv(tmp_path / "b1.csv", [("none", 0, 0.98, 0.0), ("blood", 2, 0.97, -12.0)])
    runs = rc.read_runs([f"A:{a1}", f"A:{a2}", f"B:{b1}"], severity=2)
    assert list(runs) == ["A", "B"] and len(runs["A"]) == 2
    text = rc.table(runs, ["none", "blood"])
    # run a2 fails on Dice (0.90 < 0.95) though its error is within 5%; B fails on the error
    assert "| blood | -4.0, -3.0 (1/2) | -12.0 (0/1) |" in text
    assert "| none | +1.0, +0.5 (2/2) | +0.0 (1/1) |" in text
    assert "-60.0" not in text  # severity 3 left out
    out = tmp_path / "cmp.png"
    rc.plot(runs, ["none", "blood"], out, "t")
    assert out.stat().st_size > 1000


def test_ranking_orders_runs_by_target_then_mean_error(tmp_path):
    a1 = _csv(tmp_path / "a1.csv", [("none", 0, 0.97, 1.0), ("blood", 2, 0.96, -4.0)])
    a2 = _csv(tmp_path / "a2.csv", [("none", 0, 0.97, 0.5), ("blood", 2, 0.90, -3.0)])
    b1 = _csv(tmp_path / "b1.csv", [("none", 0, 0.98, 0.0), ("blood", 2, 0.97, -2.0)])
    lines = rc.ranking(rc.read_runs([f"A:{a1}", f"A:{a2}", f"B:{b1}"], 2)).splitlines()[2:]
    # A #1 and B #1 both meet the target twice; B's mean error (1.0) is below A #1's (2.5);
    # A #2 fails on Dice, so it comes last although its errors are small
    assert [ln.split(" | ")[0] for ln in lines] == ["| B #1", "| A #1", "| A #2"]
    assert lines[0] == "| B #1 | 2/2 | 1.00 | 2.0 | 0.970 |"
    assert lines[2] == "| A #2 | 1/2 | 1.75 | 3.0 | 0.900 |"


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(SystemExit, match="RECIPE:CSV"):
        rc.read_runs([str(tmp_path / "x.csv")], 2)
    empty = _csv(tmp_path / "e.csv", [("blood", 3, 0.9, -1.0)])
    with pytest.raises(SystemExit, match="no rows at severity 2"):
        rc.read_runs([f"A:{empty}"], 2)
