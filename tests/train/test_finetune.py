"""Few-label fine-tuning: ``init_from`` weights, mismatch errors, a new head, frozen layers,
``data.labelled_frames`` / ``data.max_labelled_frames``, and ``experiment=finetune``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from train_helpers import CONFIGS, one_epoch_model, toy_cfg

from octseg.core import distributed as ddp
from octseg.core.errors import InputError
from octseg.datasets.toy import make_toy_dataset
from octseg.io.dataset import list_pullbacks
from octseg.train.checkpointing import freeze, head_keys, init_weights
from octseg.train.data import (
    PullbackFrames,
    choose_labelled,
    class_lut,
    evenly_spaced,
    label_frame_index,
    load_pullback,
)
from octseg.train.engine import build_engine
from octseg.train.loop import train
from octseg.train.setup import check_init_matches, read_init, read_resume

GRID = {"n_alines": 32, "n_samples": 32, "spacing_mm": 0.08}


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "ds", n_pullbacks=3, n_frames=8)


@pytest.fixture(scope="module")
def base_ckpt(toy_root, tmp_path_factory) -> Path:
    """A one-epoch tiny model: the checkpoint fine-tuning starts from."""
    return one_epoch_model(toy_root, tmp_path_factory.mktemp("base"))


_cfg = toy_cfg


def _engine(cfg, n_classes: int = 5):
    return build_engine(cfg, ddp.DistInfo(), int(cfg.data.context_frames), n_classes)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_init_from_loads_the_checkpoint_weights(toy_root, base_ckpt, tmp_path):
    cfg = _cfg(toy_root, tmp_path, f"init_from={base_ckpt}")
    eng = _engine(cfg)
    ref = _weights(base_ckpt)
    before = {k: v.clone() for k, v in eng.model.state_dict().items()}
    assert any(not torch.equal(before[k], ref[k]) for k in ref)  # a fresh net differs
    init_weights(read_init(cfg), eng, [0, 1, 2, 3, 4], new_head=False)
    for k, v in eng.model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    # the optimiser holds the very parameters that were overwritten (loaded in place)
    opt_params = {id(p) for g in eng.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in eng.model.parameters()}


def test_init_from_with_ckpt_path_must_name_where_the_resumed_run_started(
    toy_root, base_ckpt, tmp_path
):
    """Beside ``ckpt_path``, ``init_from`` is accepted only as the resumed run's own start (its
    weights then come from the resumed checkpoint); otherwise it is refused, naming both."""
    cfg = _cfg(toy_root, tmp_path, f"init_from={base_ckpt}", f"ckpt_path={base_ckpt}")
    plain_run = read_resume(cfg)  # base_ckpt did not start from any init_from
    with pytest.raises(InputError, match="both set, and the resumed run started from no init_from"):
        read_init(cfg, plain_run)
    started_here = {**plain_run, "meta": {**plain_run["meta"], "init_from": str(base_ckpt)}}
    assert read_init(cfg, started_here) is None
    elsewhere = {**plain_run, "meta": {**plain_run["meta"], "init_from": "octseg-calcium-v1"}}
    with pytest.raises(InputError, match="started from octseg-calcium-v1"):
        read_init(cfg, elsewhere)
    # the same file by another path, a link or a copy: the same start
    link, copy = tmp_path / "link.ckpt", tmp_path / "copy.ckpt"
    link.symlink_to(base_ckpt)
    copy.write_bytes(Path(base_ckpt).read_bytes())
    for other in (link, copy):
        again = _cfg(toy_root, tmp_path, f"init_from={other}", f"ckpt_path={base_ckpt}")
        assert read_init(again, started_here) is None
    missing = _cfg(
        toy_root, tmp_path, f"init_from={tmp_path / 'gone.ckpt'}", f"ckpt_path={base_ckpt}"
    )
    with pytest.raises(InputError, match="both set"):
        read_init(missing, started_here)


def test_mismatched_grid_context_and_classes_name_the_file(toy_root, base_ckpt, tmp_path):
    init = read_init(_cfg(toy_root, tmp_path, f"init_from={base_ckpt}"))
    classes = [0, 1, 2, 3, 4]
    other_grid = {**GRID, "spacing_mm": 0.05}
    with pytest.raises(InputError, match="net_grid") as err:
        check_init_matches(init, False, classes, 3, other_grid)
    assert str(base_ckpt) in str(err.value)
    with pytest.raises(InputError, match="context_frames"):
        check_init_matches(init, False, classes, 5, GRID)
    with pytest.raises(InputError, match=r"classes \[0, 1, 2, 3, 4\] differ.*init_new_head"):
        check_init_matches(init, False, [0, 1, 3], 3, GRID)
    check_init_matches(init, True, [0, 1, 3], 3, GRID)  # allowed with a new head
    check_init_matches(init, False, classes, 3, GRID)
    check_init_matches(init, False, classes, 3, other_grid, new_grid=True)  # init_new_grid
    with pytest.raises(InputError, match="context_frames"):  # the grid only, not the context
        check_init_matches(init, False, classes, 5, other_grid, new_grid=True)


def test_mismatched_network_names_the_difference(toy_root, base_ckpt, tmp_path):
    cfg = _cfg(toy_root, tmp_path, f"init_from={base_ckpt}", "model.net.channels=[8,16]")
    with pytest.raises(InputError, match=r"channels: \[4, 8\] vs \[8, 16\]") as err:
        init_weights(read_init(cfg), _engine(cfg), [0, 1, 2, 3, 4], new_head=False)
    assert str(base_ckpt) in str(err.value)


def test_new_head_keeps_the_body_and_reinitialises_the_output_layers(toy_root, base_ckpt, tmp_path):
    cfg = _cfg(toy_root, tmp_path, f"init_from={base_ckpt}", "data.classes=[0,1,3]")
    eng = _engine(cfg, n_classes=3)
    fresh = {k: v.clone() for k, v in eng.model.state_dict().items()}
    head = head_keys(eng)
    assert head and all(fresh[k].shape[0] == 3 or fresh[k].shape[1] == 3 for k in head)
    with pytest.raises(InputError, match="weights do not fit the network"):
        init_weights(read_init(cfg), eng, [0, 1, 3], new_head=False)
    init_weights(read_init(cfg), eng, [0, 1, 3], new_head=True)
    ref = _weights(base_ckpt)
    now = eng.model.state_dict()
    for k in now:
        assert torch.equal(now[k], fresh[k] if k in head else ref[k]), k


def test_evenly_spaced_and_choose_labelled(toy_root):
    assert evenly_spaced(10, 3).tolist() == [1, 5, 8]
    assert evenly_spaced(4, 4).tolist() == [0, 1, 2, 3]
    entries = sorted(list_pullbacks(toy_root), key=lambda e: e.id)
    assert label_frame_index(entries[0].labels_path).tolist() == list(range(8))
    every = choose_labelled(entries)
    assert {k: v.tolist() for k, v in every.items()} == {e.id: list(range(8)) for e in entries}
    # at most 4 in all, spread over the 24 (pullback, frame) pairs in id order
    four = choose_labelled(entries, None, 4)
    assert {k: v.tolist() for k, v in four.items()} == {
        "pb000": [3],
        "pb001": [1, 7],
        "pb002": [5],
    }
    spec = {"pb001": [2, 6, 4]}
    picked = choose_labelled(entries, spec)
    assert picked["pb001"].tolist() == [2, 4, 6] and len(picked["pb000"]) == 0
    assert choose_labelled(entries, spec, 2)["pb001"].tolist() == [2, 6]


def test_choose_labelled_errors(toy_root, tmp_path):
    entries = list_pullbacks(toy_root)
    with pytest.raises(InputError, match=r"pullbacks not in training: \['nope'\]"):
        choose_labelled(entries, {"nope": [1]})
    with pytest.raises(InputError, match=r"frames \[9\] chosen for training have no label map"):
        choose_labelled(entries, {"pb000": [1, 9]})
    with pytest.raises(InputError, match="no labelled training frame left"):
        choose_labelled(entries, {"pb000": []})
    with pytest.raises(InputError, match="max_labelled_frames must be >= 1"):
        choose_labelled(entries, None, 0)
    bad = tmp_path / "frames.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON file") as err:
        choose_labelled(entries, str(bad))
    assert str(bad) in str(err.value)
    # errors about what a readable JSON file holds name that file too
    for content, problem in [
        ({"nope": [1]}, "pullbacks not in training"),
        ({"pb000": ["x"]}, "non-integer frame"),
        ([1, 2], "must map pullback ids"),
    ]:
        bad.write_text(json.dumps(content))
        with pytest.raises(InputError, match=problem) as err:
            choose_labelled(entries, str(bad))
        assert str(err.value).startswith(f"{bad}: "), err.value


def test_only_chosen_frames_are_targets_unlabelled_ones_are_context(tmp_path):
    root = make_toy_dataset(tmp_path / "ds", n_pullbacks=1, n_frames=9)
    entry = list_pullbacks(root)[0]
    pb = load_pullback(entry, GRID, 3, class_lut([0, 1, 2, 3, 4]), frames=[2, 6])
    assert pb.label_frames.tolist() == [2, 6]
    assert sorted(pb.rows) == [1, 2, 3, 5, 6, 7]  # the neighbours feed the 2.5D context
    full = load_pullback(entry, GRID, 3, class_lut([0, 1, 2, 3, 4]))
    np.testing.assert_array_equal(pb.labels, full.labels[[2, 6]])
    ds = PullbackFrames([pb], 3, {"kind": "none"})
    assert len(ds) == 2 and [ds[i]["frame"] for i in range(2)] == [2, 6]
    img, _ = ds.raw(1)
    np.testing.assert_array_equal(img.transpose(2, 0, 1), full.images[[5, 6, 7]].astype(np.float32))


def test_finetune_run_trains_only_chosen_frames_and_keeps_frozen_layers(
    toy_root, base_ckpt, tmp_path
):
    frames = tmp_path / "labelled.json"
    frames.write_text(json.dumps({"pb001": [0, 3, 5, 7], "pb002": [1]}))
    out = tmp_path / "ft"
    cfg = _cfg(
        toy_root,
        out,
        f"init_from={base_ckpt}",
        f"data.labelled_frames={frames}",
        "data.max_labelled_frames=3",
        "data.val_ids=[pb000]",
        "freeze=[net.model.0]",
        "trainer.max_epochs=2",
    )
    summary = train(cfg)
    assert summary["epochs_run"] == 2
    split = json.loads((out / "split.json").read_text())
    assert split["labelled_frames"] == {"pb001": [0, 5], "pb002": [1]}
    obj = torch.load(out / "last.ckpt", weights_only=True)
    assert obj["train_state"]["epoch"] == 2  # a new run: epochs counted from 0
    assert obj["meta"]["init_from"] == str(base_ckpt)
    assert (
        obj["meta"]["normalization"]
        == torch.load(base_ckpt, weights_only=True)["meta"]["normalization"]
    )
    ref, now = _weights(base_ckpt), obj["state_dict"]
    frozen = [k for k in now if k.startswith("net.model.0.") and "running" not in k]
    trained = [k for k in now if k.startswith("net.model.2.") and now[k].is_floating_point()]
    assert frozen and all(torch.equal(now[k], ref[k]) for k in frozen if "num_batches" not in k)
    assert any(not torch.equal(now[k], ref[k]) for k in trained)


def test_freeze_unknown_prefix_is_an_error(toy_root, base_ckpt, tmp_path):
    cfg = _cfg(
        toy_root,
        tmp_path / "r",
        f"init_from={base_ckpt}",
        "freeze=[net.nope]",
        "data.val_ids=[pb000]",
    )
    with pytest.raises(ValueError, match=r"freeze: no parameter name starts with \['net.nope'\]"):
        train(cfg)


def test_freeze_is_refused_under_ddp(toy_root, tmp_path):
    """A DDP wrapper built before freezing waits for the frozen parameters' gradients and fails
    at the second step; freeze says so up front instead (no parameter is touched)."""
    eng = _engine(_cfg(toy_root, tmp_path))
    eng.ddp_model = torch.nn.Sequential(eng.model)  # stands for the DDP wrapper of eng.model
    with pytest.raises(ValueError, match="freeze is not supported with several training"):
        freeze(eng, ["net.model.0"])
    assert all(p.requires_grad for p in eng.model.parameters())
    eng.ddp_model = eng.model  # one process: frozen
    assert freeze(eng, ["net.model.0"]) > 0
    assert not all(p.requires_grad for p in eng.model.parameters())


def test_finetune_experiment_composes(toy_root, base_ckpt, tmp_path):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=finetune", f"init_from={base_ckpt}", f"data.root={toy_root}"],
        )
    assert cfg.task_name == "finetune" and cfg.init_from == str(base_ckpt)
    assert cfg.optimizer.lr < 0.002  # below the from-scratch default
    assert len(cfg.loss.weight) == len(cfg.data.classes) == 5
    assert cfg.data.labelled_frames is None and cfg.callbacks.early_stopping.patience is None
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        bare = compose("train", overrides=["experiment=finetune"])
    with pytest.raises(InputError, match="give init_from=CHECKPOINT"):
        read_init(bare)


def test_init_from_a_shipped_model_name_reads_its_checked_file(toy_root, base_ckpt, monkeypatch):
    """init_from=octseg-default-v1 (a name, not a path): the shipped file, SHA-256 checked."""
    from shipped_helpers import use_as_shipped

    from octseg.model import shipped

    use_as_shipped(monkeypatch, base_ckpt)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=finetune", f"init_from={shipped.NAME}", f"data.root={toy_root}"],
        )
    init = read_init(cfg)
    assert init["path"] == str(base_ckpt)
    assert _weights(base_ckpt).keys() == init["state_dict"].keys()
    use_as_shipped(monkeypatch, base_ckpt, "2" * 64)  # the file no longer matches its hash
    with pytest.raises(InputError, match="fails its integrity check"):
        read_init(cfg)


def test_a_run_started_from_a_shipped_model_records_its_name(
    toy_root, base_ckpt, tmp_path, monkeypatch
):
    """init_from=NAME: the checkpoints record the model's name (the same on every install, its
    file checked by SHA-256), not the path of the installed file."""
    from shipped_helpers import use_as_shipped

    from octseg.model import shipped

    use_as_shipped(monkeypatch, base_ckpt)
    out = tmp_path / "ft"
    extra = ("data.val_ids=[pb000]", "trainer.max_epochs=1")
    train(_cfg(toy_root, out, f"init_from={shipped.NAME}", *extra))
    assert torch.load(out / "last.ckpt", weights_only=True)["meta"]["init_from"] == shipped.NAME
    by_path = tmp_path / "by_path"  # the same file given by its path: recorded as the model too
    train(_cfg(toy_root, by_path, f"init_from={base_ckpt}", *extra))
    meta = torch.load(by_path / "last.ckpt", weights_only=True)["meta"]
    assert meta["init_from"] == shipped.NAME
    # a file that is not the shipped model's content (here: its hash no longer matches) is
    # recorded by its path, though it lies where the shipped model does
    use_as_shipped(monkeypatch, base_ckpt, "2" * 64)
    other = tmp_path / "other"
    train(_cfg(toy_root, other, f"init_from={base_ckpt}", *extra))
    meta = torch.load(other / "last.ckpt", weights_only=True)["meta"]
    assert meta["init_from"] == str(base_ckpt)


def test_finetune_experiment_runs_from_a_checkpoint(toy_root, tmp_path):
    """experiment=finetune end to end (its own network and grid): a one-epoch base model, then a
    fine-tuning run on two labelled frames that starts from it."""

    def finetune_cfg(out: Path, *extra: str):
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose(
                "train",
                overrides=[
                    "experiment=finetune",
                    f"data.root={toy_root}",
                    "data.val_ids=[pb000]",
                    f"paths.output_dir={out}",
                    "trainer.max_epochs=1",
                    "trainer.num_threads=1",
                    *extra,
                ],
            )

    base = tmp_path / "base"
    train(finetune_cfg(base, "init_required=false", "data.max_labelled_frames=2"))
    out = tmp_path / "ft"
    summary = train(
        finetune_cfg(out, f"init_from={base / 'last.ckpt'}", "data.max_labelled_frames=2")
    )
    assert summary["epochs_run"] == 1
    meta = torch.load(out / "last.ckpt", weights_only=True)["meta"]
    assert meta["init_from"] == str(base / "last.ckpt")
    assert sum(len(v) for v in meta["split"]["labelled_frames"].values()) == 2
    # the fine-tuning run resumes with ckpt_path alone (init_required does not ask for
    # init_from then), and its checkpoints still say where it started
    again = tmp_path / "ft2"
    summary = train(
        finetune_cfg(
            again,
            f"ckpt_path={out / 'last.ckpt'}",
            "data.max_labelled_frames=2",
            "trainer.max_epochs=2",
        )
    )
    assert summary["epochs_run"] == 2
    obj = torch.load(again / "last.ckpt", weights_only=True)
    assert obj["train_state"]["epoch"] == 2 and obj["meta"]["init_from"] == meta["init_from"]
    # or with the very command that started it, plus ckpt_path (its config keeps init_from)
    same = tmp_path / "ft3"
    summary = train(
        finetune_cfg(
            same,
            f"init_from={base / 'last.ckpt'}",
            f"ckpt_path={out / 'last.ckpt'}",
            "data.max_labelled_frames=2",
            "trainer.max_epochs=2",
        )
    )
    assert summary["epochs_run"] == 2
    resumed = torch.load(same / "last.ckpt", weights_only=True)
    assert resumed["meta"]["init_from"] == meta["init_from"]
    assert yaml.safe_load((same / "config.yaml").read_text())["init_from"] == str(
        base / "last.ckpt"
    )
    for name, value in resumed["state_dict"].items():  # the same run, resumed the same way
        assert torch.allclose(value, obj["state_dict"][name], atol=1e-6), name


def test_init_new_grid_fine_tunes_on_more_alines(toy_root, base_ckpt, tmp_path):
    """``init_new_grid=true``: the checkpoint's weights start a run on another net grid (twice
    the A-lines); without it the same run is refused, naming the grid."""
    wide = "data.net_grid={n_alines: 64, n_samples: 32, spacing_mm: 0.08}"
    args = (f"init_from={base_ckpt}", wide, "data.val_ids=[pb000]", "trainer.max_epochs=1")
    with pytest.raises(InputError, match="net_grid"):
        train(_cfg(toy_root, tmp_path / "refused", *args))
    out = tmp_path / "wide"
    assert train(_cfg(toy_root, out, *args, "init_new_grid=true"))["epochs_run"] == 1
    meta = torch.load(out / "last.ckpt", weights_only=True)["meta"]
    assert meta["net_grid"]["n_alines"] == 64 and meta["init_from"] == str(base_ckpt)
