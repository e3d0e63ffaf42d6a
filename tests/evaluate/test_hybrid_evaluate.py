"""octseg.datasets.hybrid.cohort.evaluate_hybrid with stand-in networks whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import TINY_MODEL, with_stand_in

from octseg.core.classes import CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.datasets.hybrid import cohort, draw
from octseg.datasets.hybrid.insert import polar_xy
from octseg.geometry.tables import read_csv
from octseg.model.predictor import save_untrained_checkpoint

PS, FS = 0.01, 0.2
A, R = 360, 220
N = 8
CART = 300


class Oracle(torch.nn.Module):
    """Reads the class from the grey value (class / 4) of the centre frame; ``drop`` lists classes
    it never predicts (struts become lumen, other classes background)."""

    def __init__(self, drop: tuple[int, ...] = ()):
        super().__init__()
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = torch.round(x[:, x.shape[1] // 2] * 4).clamp(0, 4).long()
        for c in self.drop:
            cls = torch.where(cls == c, LUMEN if c == STRUT else 0, cls)
        return 20.0 * torch.nn.functional.one_hot(cls, 5).permute(0, 3, 1, 2).float()


def stand_in(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Polar frames with a dark lumen (class 1), decaying tissue and a guidewire shadow."""
    rng = np.random.default_rng(seed)
    yy, xx = polar_xy(A, R, PS)
    d = np.hypot(yy - 0.15, xx + 0.1)
    lum = d <= 0.9
    img = np.where(lum, 0.04, 0.75 * np.exp(-np.clip(d - 0.9, 0, None) / 0.7))
    img = img * rng.gamma(4.0, 0.25, (N, A, R))
    img[:, 40:62] *= np.where(lum[40:62], 1.0, 0.1)
    lab = np.repeat((lum * LUMEN).astype(np.uint8)[None], N, axis=0)
    return np.clip(img, 0, 1).astype(np.float32), lab


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    """Two hybrid pullbacks whose images encode their labels (grey = class / 4)."""
    root = tmp_path_factory.mktemp("hybrid")
    val = root / "val"
    for i, pid in enumerate(["h1", "h2"]):
        img, lab = stand_in(seed=i)
        lesion = draw.CalciumLesion(1, 7, 250.0 - 40 * i, 140.0, 0.12, 0.45)
        stent = draw.Stent(
            2,
            8,
            n_struts=8,
            mal_center_deg=200.0,
            mal_arc_deg=120.0,
            mal_start=3,
            mal_stop=7,
            malapposition_mm=0.3,
        )
        _, new_lab, rows, struts = cohort.make_hybrid(
            img, lab, PS, [lesion], stent, np.random.default_rng(i), frame_spacing_mm=FS
        )
        cohort.write_pullback(val / pid, new_lab / 4.0, new_lab, PS, FS, rows, struts, {"i": i})
    (val / "not-a-pullback").mkdir()  # no labels.npz: ignored
    ck = save_untrained_checkpoint(
        root / "untrained.pt",
        model_cfg=TINY_MODEL,
        net_grid={"n_alines": A, "n_samples": R, "spacing_mm": PS},
    )
    return val, ck


def truth_counts(val):
    """Number of true struts, and of frames holding each class, over the cohort."""
    from octseg.io.labels import load_labels

    n_struts, frames = 0, {c: 0 for c in (LUMEN, CALCIUM, STRUT, GUIDEWIRE)}
    for pid in ("h1", "h2"):
        n_struts += len(read_csv(val / pid / "truth" / "struts.csv"))
        lab = load_labels(val / pid / "labels.npz").labels
        for c in frames:
            frames[c] += int((lab == c).any(axis=(1, 2)).sum())
    return n_struts, frames


def test_oracle_finds_every_strut_with_dice_one(cohort_dir, monkeypatch):
    val, ck = cohort_dir
    with_stand_in(monkeypatch, Oracle())
    res = cohort.evaluate_hybrid(ck, val, cart_size=CART)
    n_struts, frames = truth_counts(val)
    assert res["pullbacks"] == ["h1", "h2"]
    assert n_struts > 2 * 6 * 4  # up to 8 struts on frames 2..7 (none in the guidewire shadow)
    s = res["struts"]
    assert s["counts"] == {"tp": n_struts, "fp": 0, "fn": 0}
    assert s["f1"] == 1.0 and s["precision"]["value"] == 1.0 and s["recall"]["value"] == 1.0
    assert s["tolerance_mm"] == 0.1
    assert set(res["dice"]) == {"lumen", "calcium", "strut", "guidewire"}
    for name, c in (("calcium", CALCIUM), ("strut", STRUT)):
        assert res["dice"][name] == {"mean": 1.0, "n_frames": frames[c]}, name
    # segmented as infer.py does: the post-processing fills the few one-pixel background holes
    # the stand-in's inserts leave in the lumen (8 pixels of 2 x 8 frames)
    assert res["dice"]["lumen"]["n_frames"] == frames[LUMEN]
    assert res["dice"]["lumen"]["mean"] == pytest.approx(1.0, abs=1e-4)
    assert res["dice"]["calcium"]["n_frames"] == 2 * 6  # calcium on frames 1..6
    assert res["dice"]["lumen"]["n_frames"] == 2 * N
    # measured on perfect labels, the calcium and malapposition values match the truth
    arc = res["calcium_arc_deg"]
    assert arc["n"] == 2 * 6 and abs(arc["bias"]) < 2.0
    assert abs(res["calcium_max_thickness_mm"]["bias"]) < 2 * PS
    mal = res["malapposition_distance_mm"]
    assert mal["n"] == n_struts and abs(mal["bias"]) < 2 * PS


def test_missing_struts_and_calcium_are_counted(cohort_dir, monkeypatch):
    val, ck = cohort_dir
    with_stand_in(monkeypatch, Oracle(drop=(STRUT, CALCIUM)))
    res = cohort.evaluate_hybrid(ck, val, cart_size=CART, tolerance_mm=0.05)
    n_struts, frames = truth_counts(val)
    s = res["struts"]
    assert s["counts"] == {"tp": 0, "fp": 0, "fn": n_struts}
    assert s["recall"]["value"] == 0.0 and s["f1"] == 0.0 and s["tolerance_mm"] == 0.05
    # frames with the class in the truth still count, with Dice 0
    assert res["dice"]["strut"] == {"mean": 0.0, "n_frames": frames[STRUT]}
    assert res["dice"]["calcium"] == {"mean": 0.0, "n_frames": frames[CALCIUM]}
    assert res["dice"]["lumen"]["mean"] < 1.0  # strut pixels became lumen
    assert res["malapposition_distance_mm"]["n"] == 0
    # missed calcium is measured as 0 on the frames with true calcium: arc bias = -mean truth
    arc = res["calcium_arc_deg"]
    assert arc["n"] == 2 * 6 and arc["mean_auto"] == 0.0
    assert arc["bias"] == pytest.approx(-arc["mean_manual"])


def test_segmented_with_the_checkpoints_recommended_settings(cohort_dir, monkeypatch, tmp_path):
    """Segmented as infer.py segments: a checkpoint recommending a minimum calcium area larger
    than every lesion loses its calcium; the struts are untouched."""
    from octseg.model import checkpoint as ckpt

    val, ck = cohort_dir
    model, meta = ckpt.load_checkpoint(ck)
    rec = tmp_path / "recommends.pt"
    ckpt.save_checkpoint(rec, model, {**meta, "infer_recommended": {"calcium_min_area_mm2": 100.0}})
    with_stand_in(monkeypatch, Oracle())
    res = cohort.evaluate_hybrid(rec, val, cart_size=CART)
    n_struts, frames = truth_counts(val)
    assert res["dice"]["calcium"] == {"mean": 0.0, "n_frames": frames[CALCIUM]}
    assert res["calcium_arc_deg"]["mean_auto"] == 0.0
    assert res["struts"]["counts"] == {"tp": n_struts, "fp": 0, "fn": 0}


def test_a_pullback_the_product_cannot_read_is_named(cohort_dir, monkeypatch, tmp_path):
    import shutil

    from octseg.core.errors import InputError
    from octseg.datasets.holdout import evaluate_truth

    val, ck = cohort_dir
    bad = tmp_path / "broken-pullback"
    shutil.copytree(val / "h1", bad)
    (bad / "image.npz").write_bytes(b"not a zip file")
    with_stand_in(monkeypatch, Oracle())
    with pytest.raises(InputError, match="broken-pullback"):
        evaluate_truth(ck, {"h1": val / "h1", "broken": bad}, cart_size=CART)


def test_a_folder_given_twice_or_without_a_pullback_is_refused(cohort_dir, tmp_path):
    from octseg.core.errors import InputError
    from octseg.datasets.holdout import evaluate_truth

    val, ck = cohort_dir
    with pytest.raises(InputError, match="given twice"):
        evaluate_truth(ck, {"a": val / "h1", "b": val / "h1"})
    with pytest.raises(InputError, match="not-a-pullback"):
        evaluate_truth(ck, {"a": val / "h1", "b": val / "not-a-pullback"})
