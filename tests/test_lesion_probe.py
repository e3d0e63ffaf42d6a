"""benchmarks/lesion_probe.py: one hybrid lesion rebuilt alone, as drawn and changed."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import lesion_probe as lp
from octseg.core.errors import InputError
from octseg.datasets.hybrid import draw
from octseg.io.labels import load_labels
from tests.datasets.test_hybrid import real_block

LESION = draw.CalciumLesion(
    0, 3, center_deg=200.0, arc_deg=60.0, depth_mm=0.05, thickness_mm=0.3, contrast=0.5
)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("lprobe")
    real_block(root / "real")
    params = root / "params.json"
    other = asdict(LESION) | {"center_deg": 20.0}
    params.write_text(json.dumps({"lesions": [other, asdict(LESION)], "stent": None}))
    les = lp.lesion_of(params, 1)
    made = lp.build(
        root / "real", les, {"dark": {"contrast": 0.2}}, root / "out", size=300, colour="grey"
    )
    return root, made


def test_the_lesion_alone_as_drawn_and_changed(probe):
    root, made = probe
    assert [p.name for p in made] == ["as-drawn", "dark"]
    out = root / "out"
    truth = {n: load_labels(out / "manual" / n / "labels.npz").labels for n in ("as-drawn", "dark")}
    assert np.array_equal(truth["as-drawn"], truth["dark"])  # the same lesion, only darker
    ca = truth["as-drawn"][1] == 2
    assert ca.sum() > 50
    grey = {
        n: np.asarray(Image.open(sorted((out / "inputs" / n).glob("*.png"))[1]).convert("L"))
        for n in truth
    }
    inside = {n: float(g[ca].mean()) for n, g in grey.items()}
    assert inside["dark"] < 0.7 * inside["as-drawn"]  # contrast 0.2 against 0.5
    rest = ~ca & (truth["as-drawn"][1] != 1)
    assert abs(float(grey["dark"][rest].mean()) - float(grey["as-drawn"][rest].mean())) < 3


def test_lesion_and_variant_errors(probe, tmp_path):
    root, _ = probe
    with pytest.raises(InputError, match="no lesion 5 \\(the draw has 2\\)"):
        lp.lesion_of(root / "params.json", 5)
    assert lp.variant("c35:contrast=0.35,depth_mm=0") == (
        "c35",
        {"contrast": 0.35, "depth_mm": 0.0},
    )
    for bad in ("contrast=0.3", "x:", "x:colour=2"):
        with pytest.raises(argparse.ArgumentTypeError):
            lp.variant(bad)


def test_table_counts_found_frames_and_their_dice(tmp_path):
    rows = [
        ("a", 0, "calcium", 0.8, 10, 12),
        ("a", 1, "calcium", 0.0, 0, 9),
        ("a", 2, "calcium", 0.0, 5, 0),
        ("a", 0, "lumen", 0.9, 50, 50),
        ("b", 0, "calcium", 0.6, 4, 6),
    ]
    cols = ["pullback_id", "frame", "class", "dice", "auto_pixels", "manual_pixels"]
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "segmentation_frames.csv", index=False)
    t = lp.table(tmp_path)
    assert t.loc["a"].tolist() == [2, 1, 0.4] and t.loc["b"].tolist() == [1, 1, 0.6]
