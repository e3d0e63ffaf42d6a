"""``data.oversample``: training frames holding a class drawn several times per epoch (issue 18,
item 2: sampling frames with calcium more often)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from octseg.core import distributed as ddp
from octseg.core.classes import CALCIUM
from octseg.core.errors import InputError
from octseg.datasets.toy import make_toy_dataset
from octseg.train.data import CachedPullback, PullbackFrames, oversample
from octseg.train.loaders import build_data, oversample_channels

CONFIGS = Path(__file__).resolve().parents[2] / "octseg" / "configs"


def _pullback() -> CachedPullback:
    """Four labelled frames: 0 lumen only, 1 and 3 with calcium (channel 2), 2 with a strut (3)."""
    labels = np.zeros((4, 8, 8), dtype=np.uint8)
    labels[:, :2] = 1
    labels[1, 4, 4] = labels[3, 5, 5] = 2
    labels[2, 3, 3] = 3
    images = np.zeros((4, 8, 8), dtype=np.float16)
    return CachedPullback("pb", images, {f: f for f in range(4)}, 4, labels, np.arange(4))


def test_frames_holding_a_class_are_repeated_by_the_largest_factor():
    ds = PullbackFrames([_pullback()], 1, {"kind": "none"})
    assert oversample(ds, {2: 3, 3: 2}) == 3
    draws = Counter(r for _, r in ds.index)
    assert draws == {0: 1, 1: 3, 2: 2, 3: 3}
    assert len(ds) == 9 and ds[8]["frame"] == 3  # a repeated entry is an ordinary sample


def test_oversample_setting_maps_classes_to_channels_and_is_checked():
    assert oversample_channels(None, [0, 1, 2, 3, 4]) == {}
    assert oversample_channels({2: 3}, [0, 1, 2, 3, 4]) == {2: 3}
    assert oversample_channels({3: 2}, [0, 1, 3]) == {2: 2}  # class 3 is channel 2 here
    for bad, msg in (
        ({2: 3}, "not a predicted class"),  # calcium not predicted by a lumen/strut model
        ({0: 2}, "not a predicted class"),  # background
    ):
        with pytest.raises(InputError, match=msg):
            oversample_channels(bad, [0, 1, 3])
    with pytest.raises(InputError, match="not a predicted class"):
        oversample_channels({"calcium": 3}, [0, 1, 2])
    for times in (0, 1.5, "3", True):
        with pytest.raises(InputError, match="integer >= 1"):
            oversample_channels({2: times}, [0, 1, 2])
    with pytest.raises(InputError, match="mapping"):
        oversample_channels([2, 3], [0, 1, 2])


def test_training_data_draws_calcium_frames_more_often(tmp_path):
    root = make_toy_dataset(tmp_path / "ds", n_pullbacks=3, n_frames=10)  # calcium in frames 0-6

    def data(*extra):
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose("train", overrides=["experiment=tiny", f"data.root={root}", *extra])
        out = tmp_path / f"run{len(extra)}"
        out.mkdir()
        return build_data(cfg, ddp.DistInfo(), out, None)

    plain, over = data(), data(f"data.oversample={{{CALCIUM}: 4}}")
    ch = plain.classes.index(CALCIUM)
    with_ca = [
        (p, r)
        for p, r in plain.train_ds.index
        if (plain.train_ds.pullbacks[p].labels[r] == ch).any()
    ]
    assert 0 < len(with_ca) < len(plain.train_ds)
    assert len(over.train_ds) == len(plain.train_ds) + 3 * len(with_ca)
    assert Counter(over.train_ds.index) == Counter(plain.train_ds.index) + Counter(with_ca * 3)
    assert len(over.train_loader) > len(plain.train_loader)
    assert len(over.val_ds) == len(plain.val_ds)  # validation is never oversampled
