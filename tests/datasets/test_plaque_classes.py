"""Plaque classes (fibrous cap 5, lipid 6) in the label schema and the real-data builder."""

from __future__ import annotations

import numpy as np
import pytest

from octseg.core.classes import (
    CLASS_NAMES,
    FIBROUS_CAP,
    GUIDEWIRE,
    LIPID,
    LUMEN,
    NUM_CLASSES,
    PLAQUE_CLASSES,
)
from octseg.core.errors import SchemaError
from octseg.datasets.danilov import build as realdata
from octseg.io.labels import LabelFile, load_labels, save_labels


def _lf(lab: np.ndarray) -> LabelFile:
    return LabelFile(labels=lab, space="polar", pixel_spacing_mm=0.01, frame_spacing_mm=0.2)


def test_plaque_ids_follow_the_original_five():
    assert (FIBROUS_CAP, LIPID) == PLAQUE_CLASSES == (GUIDEWIRE + 1, GUIDEWIRE + 2)
    assert NUM_CLASSES == 7 and CLASS_NAMES[FIBROUS_CAP] == "fibrous_cap"
    assert CLASS_NAMES[LIPID] == "lipid"


def test_old_and_plaque_label_files_round_trip(tmp_path):
    old = np.arange(5, dtype=np.uint8).repeat(8).reshape(1, 5, 8)
    save_labels(tmp_path / "old.npz", _lf(old))
    assert np.array_equal(load_labels(tmp_path / "old.npz").labels, old)
    new = old.copy()
    new[0, 0, :2] = (FIBROUS_CAP, LIPID)
    save_labels(tmp_path / "new.npz", _lf(new))
    assert np.array_equal(load_labels(tmp_path / "new.npz").labels, new)
    with pytest.raises(SchemaError, match="known classes are 0..6"):
        _lf(np.full((1, 4, 4), 7, np.uint8))


def test_a_five_class_model_maps_plaque_to_background():
    from octseg.train.data import class_lut

    lut = class_lut([0, 1, 2, 3, 4])
    assert lut[FIBROUS_CAP] == 0 and lut[LIPID] == 0 and lut[GUIDEWIRE] == 4
    lut = class_lut([0, 1, 4, 5, 6])
    assert (lut[FIBROUS_CAP], lut[LIPID], lut[GUIDEWIRE]) == (3, 4, 2)


def test_verify_accepts_plaque_labels(tmp_path):
    from octseg.core import atomic
    from octseg.io.dataset import verify_dataset

    d = tmp_path / "p1"
    d.mkdir()
    lab = np.zeros((2, 16, 12), np.uint8)
    lab[:, :, :3] = LUMEN
    lab[:, 4:8, 3] = FIBROUS_CAP
    lab[:, 4:8, 4:6] = LIPID
    atomic.save_npz(
        d / "image.npz",
        frames=np.zeros((2, 16, 12), np.uint8),
        space=np.array("polar"),
        pixel_spacing_mm=np.float64(0.01),
        frame_spacing_mm=np.float64(0.2),
    )
    save_labels(d / "labels.npz", _lf(lab))
    assert verify_dataset(tmp_path, progress=False) == []


def _write_mask(path, lumen, cap, lipid):
    from PIL import Image

    arr = np.stack([lumen, cap, lipid, np.zeros_like(lumen)], -1).astype(np.uint8) * 255
    Image.fromarray(arr, "RGBA").save(path, compression="tiff_lzw")


def test_plaque_labels_precedence_lumen_then_lipid_then_cap(tmp_path):
    z = np.zeros((20, 20), bool)
    lumen, cap, lipid = z.copy(), z.copy(), z.copy()
    lumen[:, :5] = True
    cap[:, 4:10] = True  # overlaps the lumen and the lipid, as the expert's polygons do
    lipid[:, 8:15] = True
    _write_mask(tmp_path / "m.tiff", lumen, cap, lipid)
    lab = realdata.read_plaque_labels(tmp_path / "m.tiff")
    row = lab[0].tolist()
    assert row == [LUMEN] * 5 + [FIBROUS_CAP] * 3 + [LIPID] * 7 + [0] * 5


def test_to_polar_keeps_a_class_map():
    lab = np.zeros((1, 101, 101), np.uint8)
    yy, xx = np.mgrid[:101, :101] - 50
    r = np.hypot(yy, xx)
    lab[0][r < 20] = LUMEN
    lab[0][(r >= 20) & (r < 25)] = FIBROUS_CAP
    lab[0][(r >= 25) & (r < 35)] = LIPID
    gray = np.zeros((1, 101, 101), np.float32)
    _, pol = realdata.to_polar(gray, lab, pixel_spacing_mm=1.0, n_alines=64, n_samples=45)
    ray = pol[0, 10]
    assert set(np.unique(pol)) == {0, LUMEN, FIBROUS_CAP, LIPID}
    assert (
        abs(int((ray == FIBROUS_CAP).sum()) - 5) <= 1 and abs(int((ray == LIPID).sum()) - 10) <= 1
    )


def test_build_real_dataset_with_plaque(danilov_dir, tmp_path):
    """Frame 131 of the real pullback has a labelled thin cap over lipid; 150 has no plaque."""
    blocks = [
        realdata.Block("train-131-132", 131, 132, "train"),
        realdata.Block("v", 150, 151, "val"),
    ]
    static = np.zeros((750, 750), bool)
    realdata.build_real_dataset(
        danilov_dir, tmp_path, blocks=blocks, progress=False, static_mask=static, plaque=True
    )
    lab = load_labels(tmp_path / "train-131-132" / "labels.npz").labels
    assert {LUMEN, FIBROUS_CAP, LIPID} <= set(np.unique(lab).tolist())
    assert not np.isin(load_labels(tmp_path / "v" / "labels.npz").labels, PLAQUE_CLASSES).any()
    realdata.build_real_dataset(
        danilov_dir, tmp_path / "lumen", blocks=blocks[:1], progress=False, static_mask=static
    )
    lumen_only = load_labels(tmp_path / "lumen" / "train-131-132" / "labels.npz").labels
    assert set(np.unique(lumen_only).tolist()) == {0, LUMEN}


def test_plaque_experiment_config():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from octseg.core.classes import check_classes

    configs = Path(__file__).resolve().parents[2] / "octseg" / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=plaque"])
    classes = check_classes(cfg.data.classes)
    assert classes == [0, LUMEN, FIBROUS_CAP, LIPID]
    assert len(cfg.loss.weight) == len(classes)
    assert cfg.data.val_ids == ["val-140-186"]  # the contiguous block of experiment=real_lumen
    assert cfg.callbacks.early_stopping.patience is None  # no checkpoint chosen on that block
