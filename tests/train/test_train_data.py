"""Net-grid resampling, 2.5D sparse-label samples, seeded augmentation, split, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from octseg.core.classes import CALCIUM, LUMEN, STRUT, check_classes
from octseg.core.errors import InputError
from octseg.datasets.toy import make_toy_dataset
from octseg.io.dataset import list_pullbacks
from octseg.model.grid import compute_normalization, from_net_grid, normalize, to_net_grid
from octseg.train.augment import (
    CircularShiftALines,
    FlipALines,
    build_augmentation,
    seed_augmentation,
)
from octseg.train.data import (
    PullbackFrames,
    ValidationFrames,
    class_lut,
    context_frames,
    load_pullback,
    split_pullbacks,
    worker_init_fn,
)
from octseg.train.metrics import SegMetrics, strut_centroids, strut_counts

GRID = {"n_alines": 32, "n_samples": 32, "spacing_mm": 0.08}


def test_net_grid_roundtrip_and_periodic_axis():
    # a smooth periodic image survives the round trip; radius maps by spacing
    a, r, s = 60, 50, 0.05
    th = 2 * np.pi * np.arange(a) / a
    img = (0.5 + 0.3 * np.cos(th)[:, None] * np.ones(r)).astype(np.float32)[None]
    g = {"n_alines": 120, "n_samples": 50, "spacing_mm": 0.05}
    net = to_net_grid(torch.from_numpy(img), s, g)
    assert net.shape == (1, 120, 50)
    # A-line 0 of the net grid equals A-line 0 of the source; half-way A-lines interpolate
    torch.testing.assert_close(net[0, ::2], torch.from_numpy(img[0]), atol=1e-5, rtol=0)
    back = from_net_grid(net, (a, r), s, g)
    torch.testing.assert_close(back, torch.from_numpy(img), atol=2e-3, rtol=0)
    # a label ring at radius 1.0 mm stays at 1.0 mm on a coarser grid
    lab = np.zeros((1, a, r), np.uint8)
    lab[:, :, 20:] = LUMEN  # radius >= 1.0 mm
    coarse = {"n_alines": 30, "n_samples": 40, "spacing_mm": 0.1}
    out = to_net_grid(torch.from_numpy(lab), s, coarse)
    assert out.dtype == torch.uint8
    col = np.flatnonzero(out[0, 0].numpy())
    assert col[0] == 10 and col[-1] == 24  # 1.0 mm .. last source radius 2.45 mm
    back = from_net_grid(out, (a, r), s, coarse)
    assert back.dtype == torch.uint8
    row = back[0, 0].numpy()
    assert row[18] == 0 and row[21] == 1  # native 0.95 mm is a tie between net samples 9, 10


def test_normalization_recorded_values():
    x = np.array([[0.0, 1.0], [0.0, 1.0]])
    n = compute_normalization([x])
    assert n == {"kind": "zscore", "mean": 0.5, "std": 0.5}
    np.testing.assert_allclose(normalize(x, n), [[-1, 1], [-1, 1]])
    assert compute_normalization([x], "none") == {"kind": "none"}


def test_context_frames_replicate_edges():
    assert context_frames(0, 3, 10) == [0, 0, 1]
    assert context_frames(9, 5, 10) == [7, 8, 9, 9, 9]
    assert context_frames(4, 1, 10) == [4]


def test_classes_and_remap():
    assert check_classes([0, 1]) == [0, 1]
    with pytest.raises(InputError, match="unknown class"):
        check_classes([0, 7])
    with pytest.raises(InputError, match="start with 0"):
        check_classes([1, 2])
    lut = class_lut([0, 1], {STRUT: LUMEN})
    assert lut[LUMEN] == 1 and lut[STRUT] == 1 and lut[CALCIUM] == 0
    lut = class_lut([0, 1, 2, 3, 4])
    assert list(lut[:5]) == [0, 1, 2, 3, 4]


def test_sparse_labels_targets_and_context(tmp_path):
    root = make_toy_dataset(tmp_path / "ds", n_pullbacks=1, n_frames=9, sparse_every=4)
    entry = list_pullbacks(root)[0]
    lut = class_lut([0, 1, 2, 3, 4])
    pb = load_pullback(entry, GRID, 3, lut)
    assert list(pb.label_frames) == [0, 4, 8]
    # labelled frames and their neighbours are cached, nothing else
    assert sorted(pb.rows) == [0, 1, 3, 4, 5, 7, 8]
    ds = PullbackFrames([pb], 3, {"kind": "none"})
    assert len(ds) == 3  # only labelled frames are targets
    from octseg.io import read_pullback

    frames = read_pullback(entry.image_path).read()
    net = to_net_grid(torch.from_numpy(frames), 0.06, GRID).numpy()
    img, mask = ds.raw(1)  # centre frame 4: channels are frames 3, 4, 5
    np.testing.assert_allclose(img.transpose(2, 0, 1), net[[3, 4, 5]], atol=2e-3)
    img, _ = ds.raw(0)  # frame 0: replicated edge
    np.testing.assert_allclose(img.transpose(2, 0, 1), net[[0, 0, 1]], atol=2e-3)
    sample = ds[2]
    assert sample["image"].shape == (3, 32, 32) and sample["label"].shape == (1, 32, 32)
    assert sample["frame"] == 8 and sample["label"].dtype == torch.int64


def test_split_by_pullback():
    ids = [f"p{i}" for i in range(10)]
    tr, va = split_pullbacks(ids, val_fraction=0.3, seed=1)
    assert len(va) == 3 and not set(tr) & set(va) and sorted(tr + va) == sorted(ids)
    assert split_pullbacks(ids, val_fraction=0.3, seed=1) == (tr, va)
    assert split_pullbacks(ids, val_ids=["p2"])[1] == ["p2"]
    with pytest.raises(InputError, match="not in the dataset"):
        split_pullbacks(ids, val_ids=["nope"])
    with pytest.raises(InputError, match="at least 2"):
        split_pullbacks(["only"])


def _split_cfg(root, **data):
    from omegaconf import OmegaConf

    return OmegaConf.create({"seed": 0, "data": {"root": str(root), "val_fraction": 0.5, **data}})


def test_dataset_split_json_test_pullbacks_are_never_trained_on(tmp_path):
    """A dataset's own split.json (danilov.build --test-block) holds pullbacks out as test:
    training neither trains nor validates on them; its val ids are the default validation."""
    import json

    from octseg.core import distributed as ddp
    from octseg.train.loaders import load_split

    root = make_toy_dataset(tmp_path / "ds", n_pullbacks=4, n_frames=3)
    ids = sorted(e.id for e in list_pullbacks(root))
    (root / "split.json").write_text(
        json.dumps({"train": ids[:2], "val": [ids[2]], "test": [ids[3]]})
    )
    train, val, split = load_split(_split_cfg(root), ddp.DistInfo(), None)
    assert (split["train"], split["val"]) == (ids[:2], [ids[2]])
    assert ids[3] not in [e.id for e in train + val]
    _, _, split = load_split(_split_cfg(root, val_ids=[ids[0]]), ddp.DistInfo(), None)
    assert (split["train"], split["val"]) == ([ids[1], ids[2]], [ids[0]])
    with pytest.raises(InputError, match="held out as test"):
        load_split(_split_cfg(root, val_ids=[ids[3]]), ddp.DistInfo(), None)
    resumed = {"meta": {"split": {"train": ids[:2] + [ids[3]], "val": [ids[2]]}}}
    with pytest.raises(InputError, match="held out as test there now"):
        load_split(_split_cfg(root), ddp.DistInfo(), resumed)
    (root / "split.json").write_text("{not json")
    with pytest.raises(InputError, match="split.json.*not a readable dataset split"):
        load_split(_split_cfg(root), ddp.DistInfo(), None)


def test_extra_train_roots_train_only_and_resume(tmp_path):
    """data.extra_train_roots add training pullbacks (never validation); a resumed split lists
    them and resumes; an id in two folders is an error naming the folder."""
    from octseg.core import distributed as ddp
    from octseg.train.loaders import load_split

    root = make_toy_dataset(tmp_path / "ds", n_pullbacks=3, n_frames=3)
    extra = make_toy_dataset(tmp_path / "extra", n_pullbacks=2, n_frames=3)
    for d in sorted(extra.iterdir()):
        if d.is_dir():
            d.rename(extra / f"x-{d.name}")
    cfg = _split_cfg(root, val_ids=["pb001"], extra_train_roots=[str(extra)])
    train, val, split = load_split(cfg, ddp.DistInfo(), None)
    assert split["train"] == ["pb000", "pb002", "x-pb000", "x-pb001"] and split["val"] == ["pb001"]
    assert [e.id for e in train] == split["train"] and [e.id for e in val] == ["pb001"]
    assert split["extra_train_roots"] == [str(extra)]
    resumed = load_split(cfg, ddp.DistInfo(), {"meta": {"split": split}})[2]
    assert (resumed["train"], resumed["val"]) == (split["train"], split["val"])
    # a separate validation folder may reuse the training folder's ids (the demo's cohorts do)
    other = make_toy_dataset(tmp_path / "val", n_pullbacks=2, n_frames=3, seed=1)
    cfg = _split_cfg(root, val_root=str(other), extra_train_roots=[str(extra)])
    train, val, split = load_split(cfg, ddp.DistInfo(), None)
    assert split["val"] == ["pb000", "pb001"] and split["val_root"] == str(other)
    assert split["train"] == ["pb000", "pb001", "pb002", "x-pb000", "x-pb001"]
    assert {str(e.labels_path.parent.parent) for e in val} == {str(other)}
    clash = _split_cfg(root, val_ids=["pb001"], extra_train_roots=[str(root)])
    with pytest.raises(InputError, match="also in another training folder"):
        load_split(clash, ddp.DistInfo(), None)


def test_geometric_transforms_move_image_and_mask_together():
    rng = np.random.default_rng(0)
    img = rng.random((16, 8, 3)).astype(np.float32)
    mask = (img[..., 1] > 0.5).astype(np.uint8)
    out = CircularShiftALines(p=1.0)(image=img, mask=mask)
    shift = int(
        np.flatnonzero([np.array_equal(np.roll(img, s, 0), out["image"]) for s in range(16)])[0]
    )
    np.testing.assert_array_equal(out["mask"], np.roll(mask, shift, 0))
    out = FlipALines(p=1.0)(image=img, mask=mask)
    np.testing.assert_array_equal(out["image"][0], img[0])  # A-line 0 stays
    np.testing.assert_array_equal(out["image"][1], img[15])
    np.testing.assert_array_equal(out["mask"][3], mask[13])
    aug = build_augmentation({"enabled": True})
    seed_augmentation(aug, 3)
    for _ in range(5):
        o = aug(image=img, mask=mask)
        assert o["image"].shape == img.shape and o["mask"].shape == mask.shape
        assert set(np.unique(o["mask"])) <= {0, 1}


def _toy_frames(tmp_path, n=8):
    root = make_toy_dataset(tmp_path / "ds", n_pullbacks=1, n_frames=n)
    pb = load_pullback(list_pullbacks(root)[0], GRID, 3, class_lut([0, 1, 2, 3, 4]))
    return PullbackFrames([pb], 3, {"kind": "none"}, build_augmentation({"enabled": True}))


def _epoch(ds, workers, seed):
    g = torch.Generator().manual_seed(seed)
    dl = DataLoader(
        ds, batch_size=1, num_workers=workers, worker_init_fn=worker_init_fn, generator=g
    )
    return [b["image"][0].numpy() for b in dl]


def test_workers_differ_and_seed_reproduces(tmp_path):
    base = _toy_frames(tmp_path, n=4)
    # the same frame 4 times: without per-worker seeding both workers would repeat each other
    ds = PullbackFrames(base.pullbacks * 4, 3, {"kind": "none"}, base.augment)
    ds.index = [(0, 0)] * 4
    a = _epoch(ds, 2, seed=7)
    # worker 0 serves samples 0 and 2, worker 1 samples 1 and 3
    assert not np.allclose(a[0], a[1])
    assert not np.allclose(a[2], a[3])
    b = _epoch(ds, 2, seed=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = _epoch(ds, 2, seed=8)
    assert not np.allclose(a[0], c[0])


def test_strut_centroids_merge_across_seam():
    a, r, s = 36, 20, 0.1
    m = np.zeros((a, r), bool)
    m[0, 10] = m[a - 1, 10] = True  # one blob across A-line 0
    m[9, 5] = True  # another at 90 degrees, radius 0.5 mm
    frame, pts = strut_centroids(torch.from_numpy(m)[None], s)
    assert len(pts) == 2 and (frame == 0).all()
    pts = pts[np.argsort(pts[:, 0])]
    np.testing.assert_allclose(pts[1], [0.5, 0.0], atol=1e-9)
    # mean of the pixels at 0 and -10 degrees, radius 1 mm
    d = math.pi / 18
    np.testing.assert_allclose(pts[0], [-math.sin(d) / 2, (1 + math.cos(d)) / 2], atol=1e-9)


def test_strut_counts_and_metrics():
    truth = torch.zeros(1, 36, 20, dtype=torch.bool)
    truth[0, 0, 10] = truth[0, 9, 10] = truth[0, 18, 10] = True  # 1 mm at 0, 90, 180 degrees
    pred = torch.zeros_like(truth)
    pred[0, 0, 10] = pred[0, 12, 10] = pred[0, 5, 3] = True  # one hit, two misses
    assert strut_counts(pred, truth, 0.1, 0.1) == (1, 2, 2)
    assert strut_counts(pred[:, :0], truth, 0.1, 0.1) == (0, 0, 3)
    m = SegMetrics([0, 1, 2, 3], spacing_mm=0.1, strut_tol_mm=0.15)
    t = torch.zeros(2, 1, 36, 20, dtype=torch.long)
    t[:, :, :, :5] = 1
    t[0, :, 0:9, 8:10] = 2  # calcium only in frame 0
    t[:, :, 18, 5] = 3
    p = t.clone()
    p[0, :, 0:9, 9] = 0  # predict half the calcium of frame 0
    p[1, :, 30, 12] = 3  # a false strut in frame 1
    m.update(p, t)
    out = m.compute()
    assert out["dice_lumen"] == pytest.approx(1.0)
    assert out["n_calcium"] == 1.0  # frame 1 has no calcium: not counted
    assert out["dice_calcium"] == pytest.approx(2 * 9 / (18 + 9))
    assert (out["strut_tp"], out["strut_fp"], out["strut_fn"]) == (2, 1, 0)
    assert out["strut_f1"] == pytest.approx(4 / 5)


def test_from_net_grid_is_background_beyond_the_net_grid():
    """A net grid covering 1.0 mm with calcium at 0.8-1.0 mm, mapped back to a 2 mm native
    depth: the calcium must stop at 1.0 mm, not be copied out to 2 mm."""
    g = {"n_alines": 16, "n_samples": 50, "spacing_mm": 0.02}  # 50 x 0.02 = 1.0 mm
    lab = torch.zeros((1, 16, 50), dtype=torch.uint8)
    lab[:, :, :20] = LUMEN  # lumen to 0.4 mm
    lab[:, :, 40:] = 2  # calcium 0.8-1.0 mm, touching the edge of the net grid
    native_ps, native_r = 0.01, 200  # native depth 2.0 mm
    back = from_net_grid(lab, (16, native_r), native_ps, g)[0, 0].numpy()
    radius = np.arange(native_r) * native_ps
    cal = radius[back == 2]
    assert cal.min() == pytest.approx(0.8, abs=0.011) and cal.max() < 1.0
    assert (back[radius >= 1.0] == 0).all()
    # probabilities: background channel 1, the others 0 beyond the net grid
    probs = torch.nn.functional.one_hot(lab.long(), 3).permute(0, 3, 1, 2).float()
    pb = from_net_grid(probs, (16, native_r), native_ps, g)[0].numpy()
    beyond = radius >= 1.0
    assert np.allclose(pb[0][:, beyond], 1.0) and np.allclose(pb[1:][:, :, beyond], 0.0)
    assert np.allclose(pb[2][:, (radius >= 0.81) & (radius <= 0.98)], 1.0)
    assert (pb.argmax(0)[:, ~beyond] == back[None, ~beyond]).mean() >= 0.98


def test_cartesian_labels_catheter_center_is_checked(tmp_path):
    from octseg.core import atomic
    from octseg.core.errors import InputError
    from octseg.io.dataset import list_pullbacks
    from octseg.io.labels import LabelFile, save_labels

    h = w = 41
    yy, xx = np.mgrid[:h, :w]
    disk = (np.hypot(yy - 15, xx - 25) <= 8).astype(np.uint8)  # lumen about (15, 25)
    d = tmp_path / "ds" / "pb"
    d.mkdir(parents=True)
    atomic.save_npz(
        d / "image.npz",
        frames=(disk[None] * 200).astype(np.uint8),
        space=np.array("cartesian"),
        pixel_spacing_mm=np.float64(0.05),
        frame_spacing_mm=np.float64(0.2),
        catheter_center=np.array([15.0, 25.0]),
    )

    def labels(center):
        save_labels(
            d / "labels.npz",
            LabelFile(
                labels=disk[None],
                space="cartesian",
                pixel_spacing_mm=0.05,
                frame_spacing_mm=0.2,
                catheter_center=center,
            ),
        )
        return list_pullbacks(tmp_path / "ds")[0]

    with pytest.raises(InputError, match=r"labels.npz.*catheter_center"):
        load_pullback(labels((20.0, 20.0)), GRID, 1, class_lut([0, 1]))
    pb = load_pullback(labels((15.0, 25.0)), GRID, 1, class_lut([0, 1]))
    # about the right centre the lumen is a band at the start of every A-line (radius 8 px)
    lum = pb.labels[0] == 1
    assert lum[:, 0].all() and lum[:, :4].all() and not lum[:, 6:].any()


def test_real_lumen_hybrid_recipe_is_real_lumen_plus_hybrid_training_frames():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    configs = Path(__file__).resolve().parents[2] / "octseg" / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        base = compose("train", overrides=["experiment=real_lumen", "paths.data_dir=/d"])
        cfg = compose("train", overrides=["experiment=real_lumen_hybrid", "paths.data_dir=/d"])
    assert list(cfg.data.extra_train_roots) == ["/d/hybrid_lumen/train"]
    assert list(base.data.extra_train_roots) == []
    for key in ("root", "val_ids", "classes", "remap", "net_grid", "augment"):
        assert cfg.data[key] == base.data[key], key
    assert cfg.trainer.max_epochs == base.trainer.max_epochs


def test_validation_copies_are_augmented_and_the_same_every_epoch(tmp_path):
    # data.val_augment_copies: the clean frames, then N augmented copies drawn with a fixed seed
    # per (copy, frame), so the validation score (and best.ckpt) measure robustness, not a draw
    base = _toy_frames(tmp_path, n=4)
    ds = ValidationFrames(base.pullbacks, 3, {"kind": "none"}, base.augment, copies=2, seed=5)
    assert len(ds) == 3 * len(base)
    clean = PullbackFrames(base.pullbacks, 3, {"kind": "none"})
    for j in range(len(base)):
        np.testing.assert_array_equal(ds[j]["image"].numpy(), clean[j]["image"].numpy())
        assert ds[j + len(base)]["frame"] == clean[j]["frame"]
    first = [ds[i]["image"].numpy() for i in range(len(ds))]
    assert not np.allclose(first[len(base)], first[0])  # a copy is augmented
    assert not np.allclose(first[len(base)], first[2 * len(base)])  # copies differ
    again = [b["image"][0].numpy() for b in DataLoader(ds, batch_size=1, num_workers=2)]
    for x, y in zip(first, again):  # the same samples in another epoch, in workers too
        np.testing.assert_array_equal(x, y)
    plain_ds = ValidationFrames(base.pullbacks, 3, {"kind": "none"}, None, copies=2)
    assert len(plain_ds) == len(base)  # no augmentation: no copies
