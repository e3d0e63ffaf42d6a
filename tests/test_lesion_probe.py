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
    thick = [("a", 0, 0.3, 1.0), ("a", 1, None, 1.0), ("a", 2, 0.5, 0.9)]
    cols = ["pullback_id", "frame", "auto_calcium_max_thickness_mm"]
    cols.append("manual_calcium_max_thickness_mm")
    pd.DataFrame(thick, columns=cols).to_csv(tmp_path / "frames_matched.csv", index=False)
    t = lp.table(tmp_path)  # a thick lesion read thin on the two frames measured on both sides
    assert t.loc["a", "thick_n"] == 2 and t.loc["b", "thick_n"] == 0
    assert t.loc["a", "thick_bias_mm"] == pytest.approx(-0.55, abs=1e-9)
    assert t.loc["a", "thick_true_mm"] == pytest.approx(0.95, abs=1e-9)
    assert np.isnan(t.loc["b", "thick_bias_mm"])


def test_figure_outlines_the_true_and_the_found_calcium(probe, tmp_path):
    from octseg.core.classes import CALCIUM
    from octseg.io.labels import save_labels

    root, _ = probe
    out, auto = root / "out", tmp_path / "auto"
    for name in ("as-drawn", "dark"):  # found: the truth on as-drawn, nothing on dark
        lf = load_labels(out / "manual" / name / "labels.npz")
        if name == "dark":
            lf.labels[lf.labels == CALCIUM] = 0
        (auto / name).mkdir(parents=True)
        save_labels(auto / name / "labels.npz", lf)
    png = tmp_path / "f.png"
    args = ["figure", str(out), str(auto), str(png), "--variants", "as-drawn", "dark"]
    assert lp.main(args) == 0
    px = np.asarray(Image.open(png).convert("RGB")).astype(int)
    left, right = px[:, : px.shape[1] // 2], px[:, px.shape[1] // 2 :]

    def yellow(a):
        return ((a[..., 0] > 150) & (a[..., 1] > 150) & (a[..., 2] < 90)).sum()

    def red(a):
        return ((a[..., 0] - a[..., 1] > 80) & (a[..., 0] - a[..., 2] > 80)).sum()

    assert red(right) > 20 and yellow(right) == 0  # truth outlined, nothing found
    assert yellow(left) > 20  # found drawn over the truth on as-drawn
    lf = load_labels(out / "manual" / "dark" / "labels.npz")
    lf.labels[lf.labels == CALCIUM] = 0
    (tmp_path / "o2" / "manual" / "x").mkdir(parents=True)
    save_labels(tmp_path / "o2" / "manual" / "x" / "labels.npz", lf)
    with pytest.raises(InputError, match="no calcium to show"):
        lp.figure(tmp_path / "o2", auto, ["x"], tmp_path / "g.png")
