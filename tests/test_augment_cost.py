"""benchmarks/augment_cost.py: per-transform and whole-chain cost of the training augmentation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import augment_cost  # noqa: E402

SMALL = ["--grid", "32", "40", "0.05", "--frames", "2", "--repeat", "1"]


def test_default_randomisation_is_timed_per_transform_and_against_the_baseline(tmp_path):
    out = tmp_path / "cost.json"
    res = augment_cost.main([*SMALL, "--json", str(out)])
    default = augment_cost.default_augment()
    assert default["blood_p"] > 0 and default["catheter_offset_p"] > 0
    assert {"BloodSpeckle", "CatheterOffset", "FieldOfView", "ColourMap"} <= set(res["alone_ms"])
    # the default chain has both MultiplicativeNoise transforms (gain and speckle): two rows
    assert {"MultiplicativeNoise", "MultiplicativeNoise #2"} <= set(res["alone_ms"])
    assert all(v > 0 for v in res["alone_ms"].values())
    assert res["chain_ms"] > 0 and res["baseline_ms"] > 0
    assert res["ratio"] == pytest.approx(res["chain_ms"] / res["baseline_ms"])
    assert json.loads(out.read_text())["augment"] == default


def test_set_chooses_the_transforms():
    res = augment_cost.main([*SMALL, "--set", "data.augment.blood_p=0.3", "--set", "flip_p=0"])
    assert res["augment"] == {"blood_p": 0.3, "flip_p": 0}
    names = set(res["alone_ms"])
    assert "BloodSpeckle" in names and "FlipALines" not in names and "ColourMap" not in names
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        augment_cost.main([*SMALL, "--set", "blood_p"])
