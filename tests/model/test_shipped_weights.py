"""The weights that ship with octseg (issue 16, docs/model_card.md): present, intact (SHA-256),
loadable with ``weights_only=True``, within the 20 MB budget, carrying their recipe and code
version, and reproducing the model card's small check through the product path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from octseg.model import shipped
from octseg.model.checkpoint import load_checkpoint

# docs/model_card.md, "Small check": frames 140-151 of the real test block (clean, as their own
# 12-frame pullback), `octseg infer` with no checkpoint argument, lumen Dice against the expert.
CHECK_FRAMES = (140, 152)
CARD_DICE_MEAN = 0.9725
CARD_DICE_MIN = 0.9669
# The tolerance covers CPU kernels / thread counts / BLAS builds (different summation order);
# a retrained or damaged model moves these numbers by far more.
DICE_TOL = 0.005


def test_shipped_weights_are_intact_and_load():
    path = shipped.default_checkpoint()  # raises if missing or the SHA-256 differs
    assert path.stat().st_size <= 20e6
    assert shipped.sha256_of(path) == shipped.SHA256
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert "train_state" not in raw  # inference weights only: no optimiser state shipped
    model, meta = load_checkpoint(path)
    assert meta["classes"] == [0, 1, 2, 3, 4]
    recipe = meta["recipe"]
    assert recipe["experiment"] == "default"
    assert "task_name: default" in recipe["config_yaml"]
    assert len(recipe["git_commit"]) == 40
    k = meta["context_frames"]
    grid = meta["net_grid"]
    x = torch.zeros(1, k, grid["n_alines"], grid["n_samples"])
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 5, grid["n_alines"], grid["n_samples"])
    assert torch.isfinite(y).all()


# where the data and the run lived, and the machine's thread count: not part of the recipe
MACHINE = {("paths",), ("data", "root"), ("data", "val_root"), ("trainer", "num_threads")}


# settings added after the weights were trained, at the value that is what training did before
# them (a new key at another value, or any other new key, is recipe drift and fails)
ADDED_SINCE = {
    ("data", "val_augment_copies"): 0,
    ("data", "oversample"): None,
    ("trainer", "ema_decay"): None,
    ("infer_recommended",): None,
    ("distill",): {"checkpoint": None, "weight": 1.0},  # off: no teacher (session 37)
    ("init_new_grid",): False,  # off: the checkpoint's net grid (session 58)
}


def _without_added(trained: dict, now: dict) -> dict:
    """``now`` without the :data:`ADDED_SINCE` keys ``trained`` lacks, when at their neutral
    value."""
    now = {k: dict(v) if isinstance(v, dict) else v for k, v in now.items()}
    for path, neutral in ADDED_SINCE.items():
        *section, key = path
        had = trained.get(section[0], {}) if section else trained
        node = now.get(section[0], {}) if section else now
        if key not in had and key in node and node[key] == neutral:
            del node[key]
    return now


def _without_machine(cfg: dict) -> dict:
    cfg = {k: v for k, v in cfg.items() if (k,) not in MACHINE}
    for section, key in [k for k in MACHINE if len(k) == 2]:
        if isinstance(cfg.get(section), dict):
            cfg[section] = {k: v for k, v in cfg[section].items() if k != key}
    return cfg


# each shipped model and the overrides that compose its recipe today
# v1 fine-tuned (docs/model_card.md, octseg-calcium-v2); at 384 A-lines for v3's members
# (benchmarks/results/ensemble384_s59.md)
FINETUNE_V1 = [
    "init_from=octseg-calcium-v1",
    "trainer.max_epochs=12",
    "scheduler.T_max=12",
    "optimizer.lr=0.0005",
]
GRID_384 = [
    "init_new_grid=true",
    "data.net_grid={n_alines: 384, n_samples: 320, spacing_mm: 0.0117}",
]
V3_MEMBERS = {
    "octseg-calcium-v1-384": 42,
    "octseg-calcium-fdv384-s42": 42,
    "octseg-calcium-fdv384-s7": 7,
}
RECIPES = {
    shipped.NAME: ["experiment=default"],
    "octseg-calcium-v1": ["experiment=hybrid", "seed=42"],  # CALCIUM_NAME (below)
    **{
        f"octseg-calcium-fdv-s{seed}": ["experiment=hybrid", f"seed={seed}", *FINETUNE_V1]
        for seed in (42, 7)
    },
    **{
        name: ["experiment=hybrid", f"seed={seed}", *FINETUNE_V1, *GRID_384]
        for name, seed in V3_MEMBERS.items()
    },
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_shipped_weights_were_trained_by_the_committed_recipe(name):
    """The whole config stored in the weights is what the model's recipe composes today, except
    where the data and the run lived and the thread count (recipe drift fails here)."""
    from pathlib import Path

    import yaml
    from hydra import compose, initialize_config_dir

    assert set(RECIPES) == set(shipped.names()), "add the new shipped model's overrides to RECIPES"
    _, meta = load_checkpoint(shipped.checkpoint_of(name))
    trained = yaml.safe_load(meta["recipe"]["config_yaml"])
    configs = Path(shipped.__file__).resolve().parents[1] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=[*RECIPES[name], "paths.output_dir=run"])
    now = OmegaConf.to_container(cfg, resolve=True)
    assert _without_machine(trained) == _without_machine(_without_added(trained, now))


@pytest.mark.parametrize("name", list(V3_MEMBERS))
def test_v3_members_record_the_command_they_were_trained_with(name):
    """The shipped command (Hydra's record of the run, tools/ship_model.py) is the recipe's
    overrides plus where the training data lived."""
    import shlex

    _, meta = load_checkpoint(shipped.checkpoint_of(name))
    words = shlex.split(meta["recipe"]["command"])
    assert words[:2] == ["python", "train.py"]
    data = {w for w in words[2:] if w.startswith(("data.root=", "data.val_root="))}
    assert len(data) == 2
    assert set(words[2:]) - data == set(RECIPES[name])


def test_shipped_model_reproduces_the_model_cards_small_check(danilov_dir, tmp_path):
    from octseg.cli import main as octseg
    from octseg.datasets.robustness import build_suite, lumen_dice

    suite = tmp_path / "suite"
    build_suite(danilov_dir, *CHECK_FRAMES, suite, [], [])
    out = tmp_path / "out"
    assert octseg(["infer", str(suite / "inputs" / "none"), "--out", str(out)]) == 0
    dice = lumen_dice(out / "none" / "labels.npz", suite / "manual" / "none" / "labels.npz")
    values = np.array(list(dice.values()))
    assert len(values) == CHECK_FRAMES[1] - CHECK_FRAMES[0]
    assert values.mean() == pytest.approx(CARD_DICE_MEAN, abs=DICE_TOL)
    assert values.min() == pytest.approx(CARD_DICE_MIN, abs=DICE_TOL)


def test_shipped_model_on_a_dicom_export_of_the_same_frames(danilov_dir, tmp_path):
    """The same 12 real frames as a sepia Cartesian DICOM (what a console exports): `octseg
    infer` with no checkpoint argument gives the card's lumen Dice (tolerance 0.01: the DICOM
    stores the frames through the sepia map and back)."""
    from octseg.cli import main as octseg
    from octseg.datasets.robustness import build_suite, lumen_dice
    from octseg.io import read_pullback
    from octseg.io.dicom_write import write_ivoct_dicom

    suite = tmp_path / "suite"
    build_suite(danilov_dir, *CHECK_FRAMES, suite, [], [])
    pngs = read_pullback(suite / "inputs" / "none")
    grey = np.asarray(pngs.read())
    grey = grey if grey.dtype == np.uint8 else np.round(grey * 255).astype(np.uint8)
    dcm = tmp_path / "export" / "case.dcm"
    dcm.parent.mkdir()
    write_ivoct_dicom(
        dcm,
        grey,
        space="cartesian",
        pixel_spacing_mm=pngs.pixel_spacing_mm,
        frame_spacing_mm=pngs.frame_spacing_mm,
        photometric="RGB",
    )
    out = tmp_path / "out"
    assert octseg(["infer", str(dcm), "--out", str(out), "--no-report"]) == 0
    dice = lumen_dice(out / "case" / "labels.npz", suite / "manual" / "none" / "labels.npz")
    values = np.array(list(dice.values()))
    assert len(values) == CHECK_FRAMES[1] - CHECK_FRAMES[0]
    assert values.mean() == pytest.approx(CARD_DICE_MEAN, abs=0.01)


# ------------------------------------------------------------------ octseg-calcium-v1
CALCIUM_NAME = "octseg-calcium-v1"
# docs/model_card.md, "octseg-calcium-v1", small check: real frames 140-151 with calcium,
# struts and distractors drawn in (`cohort build --variants 1 --val-variants 1 --seed 6`), the
# console export, `octseg infer --checkpoint octseg-calcium-v1` (its recommended settings, TTA
# on), against the exact truth: calcium Dice over the 11 frames with calcium on either side, and
# lumen Dice over the 12 frames (the default model on the same case: 0.516 / 0.962).
CALCIUM_CHECK = {"seed": "6", "frames": "140:152"}
CALCIUM_CARD_DICE = 0.8847
CALCIUM_CARD_LUMEN_DICE = 0.9798
CALCIUM_TOL = 0.01  # other CPUs / thread counts; a retrained or damaged model moves far more


def test_calcium_weights_are_intact_load_and_fit_the_budget():
    path = shipped.checkpoint_of(CALCIUM_NAME)  # raises if missing or the SHA-256 differs
    assert sum(shipped.checkpoint_of(n).stat().st_size for n in shipped.names()) <= 20e6
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert "train_state" not in raw
    model, meta = load_checkpoint(path)
    assert meta["classes"] == [0, 1, 2, 3, 4]
    assert meta["recipe"]["experiment"] == "hybrid"
    assert "--stent-share 1.0" in meta["recipe"]["command"]
    assert meta["infer_recommended"]["tta"] is True
    grid = meta["net_grid"]
    x = torch.zeros(1, meta["context_frames"], grid["n_alines"], grid["n_samples"])
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 5, grid["n_alines"], grid["n_samples"]) and torch.isfinite(y).all()


def _calcium_small_check(danilov_dir, tmp_path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The calcium models' small check (CALCIUM_CHECK) run through `octseg infer --checkpoint
    NAME`: per-frame calcium and lumen Dice against the exact truth."""
    from octseg.cli import main as octseg
    from octseg.core.classes import CALCIUM, LUMEN
    from octseg.datasets.danilov import build as danilov_build
    from octseg.datasets.hybrid import cohort
    from octseg.datasets.robustness import class_dice

    real, console = tmp_path / "real", tmp_path / "console"
    blocks = ["--train-block", "0:4", "--val-block", CALCIUM_CHECK["frames"]]
    assert danilov_build.main(["build", str(danilov_dir), str(real), *blocks]) == 0
    args = ["build", str(real), str(tmp_path / "hybrid"), "--variants", "1", "--val-variants", "1"]
    assert cohort.main([*args, "--seed", CALCIUM_CHECK["seed"], "--console", str(console)]) == 0
    (case,) = sorted((console / "inputs").iterdir())
    out = tmp_path / "out"
    argv = ["infer", str(case), "--out", str(out), "--checkpoint", name, "--no-report"]
    assert octseg(argv) == 0
    auto, manual = out / case.name / "labels.npz", console / "manual" / case.name / "labels.npz"
    calcium = np.array(list(class_dice(auto, manual, CALCIUM).values()))
    lumen = np.array(list(class_dice(auto, manual, LUMEN).values()))
    assert len(lumen) == 12 and np.isfinite(calcium).sum() == 11
    return calcium, lumen


def test_calcium_model_reproduces_its_small_check(danilov_dir, tmp_path):
    calcium, lumen = _calcium_small_check(danilov_dir, tmp_path, CALCIUM_NAME)
    assert np.nanmean(calcium) == pytest.approx(CALCIUM_CARD_DICE, abs=CALCIUM_TOL)
    assert lumen.mean() == pytest.approx(CALCIUM_CARD_LUMEN_DICE, abs=CALCIUM_TOL)


# ------------------------------------------------------------------ octseg-calcium-v2
V2_NAME = "octseg-calcium-v2"
# docs/model_card.md, "octseg-calcium-v2": the same small check as v1's, `--checkpoint
# octseg-calcium-v2` (the mean of its three members, their shared recommended settings; v1 on
# the same case: 0.8847 / 0.9798)
V2_CARD_DICE = 0.8903
V2_CARD_LUMEN_DICE = 0.9797


def test_calcium_v2_is_three_shipped_members_that_can_be_averaged():
    from octseg.model.ensemble import load_models

    members = shipped.expand(V2_NAME)
    assert members == ["octseg-calcium-v1", "octseg-calcium-fdv-s42", "octseg-calcium-fdv-s7"]
    assert all(m in shipped.names() for m in members)
    _, meta = load_models([str(shipped.checkpoint_of(m)) for m in members])
    assert [e["recipe"]["seed"] for e in meta["ensemble"]] == [42, 42, 7]
    assert meta["infer_recommended"]["tta"] is True  # all three recommend the same settings
    assert meta["infer_recommended"]["calcium_min_length_mm"] == pytest.approx(0.4)


def test_calcium_v2_reproduces_its_small_check(danilov_dir, tmp_path):
    import json

    calcium, lumen = _calcium_small_check(danilov_dir, tmp_path, V2_NAME)
    ran = json.loads((tmp_path / "out" / "manifest.json").read_text())["checkpoint"]
    assert ran == [str(shipped.checkpoint_of(m)) for m in shipped.expand(V2_NAME)]  # all three
    assert np.nanmean(calcium) == pytest.approx(V2_CARD_DICE, abs=CALCIUM_TOL)
    assert lumen.mean() == pytest.approx(V2_CARD_LUMEN_DICE, abs=CALCIUM_TOL)


def test_the_two_shipped_models_cannot_be_averaged():
    """Different net grids (128 x 160 at 0.0234 mm, 256 x 320 at 0.0117 mm): an ensemble of the
    two is refused, naming the difference (docs/model_card.md says so)."""
    from octseg.core.errors import InputError
    from octseg.model.ensemble import check_compatible

    _, default = load_checkpoint(shipped.default_checkpoint())
    _, calcium = load_checkpoint(shipped.checkpoint_of(CALCIUM_NAME))
    with pytest.raises(InputError, match="net_grid differs"):
        check_compatible(default, calcium, shipped.NAME, CALCIUM_NAME)


# docs/finetune.md: the net grid each shipped model needs with experiment=finetune
FINETUNE_GRIDS = {
    "octseg-default-v1": "data.net_grid={n_alines: 128, n_samples: 160, spacing_mm: 0.0234}",
    CALCIUM_NAME: "data.net_grid={n_alines: 256, n_samples: 320, spacing_mm: 0.0117}",
}


@pytest.mark.parametrize("name", list(FINETUNE_GRIDS))
def test_finetune_from_a_shipped_model_by_name_as_documented(name, tmp_path):
    """experiment=finetune init_from=NAME with the documented net grid: the checkpoint passes
    the fine-tuning checks and its weights load into the fresh network."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from octseg.core import distributed as ddp
    from octseg.train.checkpointing import init_weights
    from octseg.train.engine import build_engine
    from octseg.train.setup import check_init_matches, read_init

    configs = Path(shipped.__file__).resolve().parents[1] / "configs"
    overrides = ["experiment=finetune", f"init_from={name}", FINETUNE_GRIDS[name]]
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"data.root={tmp_path}"])
    init = read_init(cfg)
    grid = OmegaConf.to_container(cfg.data.net_grid)
    check_init_matches(init, False, list(cfg.data.classes), int(cfg.data.context_frames), grid)
    engine = build_engine(cfg, ddp.DistInfo(), int(cfg.data.context_frames), 5)
    init_weights(init, engine, list(cfg.data.classes), False)
    got = engine.model.state_dict()
    key = next(k for k in init["state_dict"] if k.endswith("weight"))
    assert torch.equal(got[key], init["state_dict"][key])


# ------------------------------------------------------------------ octseg-calcium-v3
V3_NAME = "octseg-calcium-v3"
# benchmarks/results/ensemble384_s59.md (RULE43): the same small check, `--checkpoint
# octseg-calcium-v3` (its three members at 384 A-lines, their shared recommended settings;
# measured in session 59; v2 on the same case: 0.8903 / 0.9797)
V3_CARD_DICE = 0.8908
V3_CARD_LUMEN_DICE = 0.9750


def test_calcium_v3_is_three_shipped_members_at_384_alines():
    from octseg.model.ensemble import load_models

    members = shipped.expand(V3_NAME)
    assert members == [
        "octseg-calcium-v1-384",
        "octseg-calcium-fdv384-s42",
        "octseg-calcium-fdv384-s7",
    ]
    _, meta = load_models([str(shipped.checkpoint_of(m)) for m in members])
    assert meta["net_grid"]["n_alines"] == 384
    assert [e["recipe"]["seed"] for e in meta["ensemble"]] == [42, 42, 7]
    assert meta["infer_recommended"]["tta"] is True


def test_calcium_v3_reproduces_its_small_check(danilov_dir, tmp_path):
    calcium, lumen = _calcium_small_check(danilov_dir, tmp_path, V3_NAME)
    assert np.nanmean(calcium) == pytest.approx(V3_CARD_DICE, abs=CALCIUM_TOL)
    assert lumen.mean() == pytest.approx(V3_CARD_LUMEN_DICE, abs=CALCIUM_TOL)
