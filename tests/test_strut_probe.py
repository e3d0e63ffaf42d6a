"""benchmarks/strut_probe.py: a hybrid draw's stent alone, and nothing, in real frames."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import strut_probe
from octseg.core.errors import InputError
from octseg.datasets.hybrid import draw
from tests.datasets.test_hybrid import real_block


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    real_block(root / "real")
    params = root / "params.json"
    params.write_text(json.dumps({"stent": asdict(draw.Stent(0, 3, n_struts=6))}))
    made = strut_probe.build(root / "real", {"dA": params}, root / "out", size=300, colour="grey")
    return root, made


def test_each_draw_gives_a_stent_only_export_and_a_control(probe):
    root, made = probe
    assert [p.name for p in made] == ["dA-stent", "dA-none"]
    struts = {
        t: pd.read_csv(root / "out/manual" / f"dA-{t}" / "struts.csv") for t in ("stent", "none")
    }
    per_frame = struts["stent"].groupby("frame").size()  # of 6, some dropped near the guidewire
    assert list(per_frame.index) == [0, 1, 2] and per_frame.min() >= 3
    assert struts["none"].empty
    for t in ("stent", "none"):  # nothing but struts inserted: no calcium in the truth
        frames = pd.read_csv(root / "out/manual" / f"dA-{t}" / "frames.csv")
        assert frames["calcium_area_mm2"].fillna(0).eq(0).all()
    a, b = (
        np.asarray(Image.open(root / "out/inputs" / f"dA-{t}" / "0001.png"))
        for t in ("stent", "none")
    )
    assert a.shape == b.shape == (300, 300)
    changed = np.abs(a.astype(int) - b.astype(int)) > 8
    assert 0.002 < changed.mean() < 0.3  # struts and their shadows, the rest as it was


def test_a_draw_without_a_stent_is_refused_by_name(probe, tmp_path):
    root, _ = probe
    bare = tmp_path / "params.json"
    bare.write_text(json.dumps({"stent": None}))
    with pytest.raises(InputError, match="no stent") as e:
        strut_probe.build(root / "real", {"dB": bare}, tmp_path / "out", size=300, colour="grey")
    assert "params.json" in str(e.value)


def test_count_lists_the_frames_with_calcium(tmp_path):
    for pid, areas in (("x-stent", [0.0, 0.4, None, 0.1]), ("x-none", [None] * 4)):
        (tmp_path / pid).mkdir()
        pd.DataFrame({"frame": range(4), "calcium_area_mm2": areas}).to_csv(
            tmp_path / pid / "frames.csv", index=False
        )
    out = tmp_path / "r.json"
    assert (
        strut_probe.main(["count", str(tmp_path), "--first-frame", "140", "--out", str(out)]) == 0
    )
    assert json.loads(out.read_text()) == {"x-none": [], "x-stent": [141, 143]}
    with pytest.raises(InputError, match="infer.py output"):
        strut_probe.count(tmp_path / "x-none")


def test_figure_shows_the_control_and_the_stent_only_frames(probe):
    from octseg.core.classes import CALCIUM
    from octseg.io.labels import LabelFile, save_labels

    root, _ = probe
    auto = root / "auto"
    for tag in ("none", "stent"):  # infer.py-like Cartesian label maps, calcium on the stent one
        lab = np.zeros((3, 300, 300), np.uint8)
        if tag == "stent":
            lab[1, 100:140, 60:90] = CALCIUM
        lf = LabelFile(labels=lab, space="cartesian", pixel_spacing_mm=0.015, frame_spacing_mm=0.2)
        (auto / f"dA-{tag}").mkdir(parents=True, exist_ok=True)
        save_labels(auto / f"dA-{tag}" / "labels.npz", lf)
    png = root / "fig.png"
    args = ["figure", str(root / "out"), "dA", str(png), "--auto", f"m={auto}"]
    args += ["--frames", "0", "1", "2"]
    assert strut_probe.main(args) == 0
    img = Image.open(png)
    assert img.size[1] > img.size[0]  # three rows of two panels
    px = np.asarray(img.convert("RGB")).astype(int)
    red = (px[..., 0] - px[..., 1] > 80) & (px[..., 0] - px[..., 2] > 80)  # grey panels
    assert red[:, px.shape[1] // 2 :].sum() > 20 and red[:, : px.shape[1] // 2].sum() == 0
