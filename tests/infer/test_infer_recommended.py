"""A recipe's recommended inference settings: stored by train.py in the checkpoint, applied by
infer.py where the user left them unset, never over a setting the user gave."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from model_helpers import oracle_predictor
from omegaconf import OmegaConf

from octseg.core.errors import InputError
from octseg.datasets.toy import make_toy_dataset
from octseg.infer.pipeline import run_inference
from octseg.infer.settings import InferSettings
from octseg.jobs import register_configs
from octseg.model.recommended import check_recommended, recommended
from octseg.train.loop import train

CONFIGS = Path(__file__).resolve().parents[2] / "octseg" / "configs"
REC = {
    "tta": True,
    "calcium_min_area_mm2": 0.1,
    "calcium_min_length_mm": 0.4,
    "calcium_extend_prob": 0.3,
}


def _train_cfg(root: Path, out: Path, *extra: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            "train",
            overrides=["experiment=tiny", f"data.root={root}", f"paths.output_dir={out}", *extra],
        )


def _infer(ckpt: Path, inp: Path, out: Path, *extra: str) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "infer",
            overrides=[
                f"checkpoint={ckpt}",
                f"input={inp}",
                f"output={out}",
                "progress=false",
                "report=false",
                "overlays.frames=[]",
                *extra,
            ],
        )
    run_inference(InferSettings.from_cfg(OmegaConf.to_container(cfg, resolve=True)))
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A one-epoch tiny model trained with recommendations, and one pullback to infer."""
    root = make_toy_dataset(tmp_path_factory.mktemp("toy") / "ds", n_pullbacks=2, n_frames=6)
    out = tmp_path_factory.mktemp("run")
    rec = (
        "infer_recommended={tta: true, calcium_min_area_mm2: 0.1, calcium_min_length_mm: 0.4, "
        "calcium_extend_prob: 0.3}"
    )
    train(_train_cfg(root, out, "trainer.max_epochs=1", rec))
    return out / "last.ckpt", root / "pb000"


def test_training_stores_the_recipe_recommendations(trained):
    meta = torch.load(trained[0], weights_only=True)["meta"]
    assert meta["infer_recommended"] == REC
    assert recommended(meta) == REC


def test_unset_settings_follow_the_checkpoint(trained, tmp_path):
    man = _infer(*trained, tmp_path / "out")
    assert man["recommended_applied"] == REC
    assert len(man["model"]["tta"]) == 8  # 4 rolls x flip


def test_settings_given_by_the_user_win(trained, tmp_path):
    man = _infer(
        *trained,
        tmp_path / "out",
        "tta.enabled=false",
        "postprocess.calcium_min_area_mm2=0.0",
        "postprocess.calcium_min_length_mm=0",
        "postprocess.calcium_extend_prob=0",
    )
    assert man["recommended_applied"] == {}
    assert man["model"]["tta"] == [[0, 0]]


def test_the_outputs_change_with_the_applied_settings(trained, tmp_path):
    """The fingerprint sees the resolved settings: a rerun with other settings is not 'done'."""
    a = _infer(*trained, tmp_path / "a")
    b = _infer(*trained, tmp_path / "b", "postprocess.calcium_min_area_mm2=0.0")
    c = _infer(*trained, tmp_path / "c", "postprocess.calcium_extend_prob=0.2")
    d = _infer(*trained, tmp_path / "d", "postprocess.calcium_min_length_mm=0.6")
    e = _infer(*trained, tmp_path / "e", "postprocess.calcium_track_frames=3")
    f = _infer(*trained, tmp_path / "f", "postprocess.calcium_frame_vote=3")
    g = _infer(*trained, tmp_path / "g", "postprocess.calcium_outer_median=3")
    assert len({m["fingerprint"] for m in (a, b, c, d, e, f, g)}) == 7


def test_calcium_tracking_off_keeps_the_fingerprint_of_older_outputs():
    """``calcium_track_frames`` 0 (the default) is not in the resolved settings, so outputs
    written before it existed are still 'done'; set, it is there as the integer given."""
    old = {"enabled": True, "calcium_min_area_mm2": 0.1}
    for post in (old, {**old, "calcium_track_frames": 0}):
        resolved = InferSettings("c", "i", "o", postprocess=post).with_recommended({})[0]
        assert resolved.postprocess == old
    on = InferSettings("c", "i", "o", postprocess={**old, "calcium_track_frames": 3})
    assert on.with_recommended({})[0].postprocess["calcium_track_frames"] == 3


def test_calcium_tracking_without_a_minimum_area_is_flagged(trained, tmp_path, capsys):
    """It keeps what the minimum area would remove: with no minimum area the run says it does
    nothing (and runs); with the checkpoint's minimum area it says nothing."""
    _infer(
        *trained,
        tmp_path / "a",
        "postprocess.calcium_min_area_mm2=0",
        "postprocess.calcium_track_frames=3",
    )
    assert "calcium_track_frames does nothing here" in capsys.readouterr().out
    _infer(*trained, tmp_path / "b", "postprocess.calcium_track_frames=3")
    assert "calcium_track_frames does nothing" not in capsys.readouterr().out


@pytest.mark.parametrize("key", ["calcium_extend_prob", "calcium_min_length_mm"])
def test_newer_rules_off_keep_the_fingerprint_of_older_outputs(key):
    """Off (0, or unset without a recommendation), the extension and the minimum calcium length
    are not in the resolved settings, so outputs written before they existed are still 'done'
    on a resumed run."""
    old = {"enabled": True, "calcium_min_area_mm2": 0.1}
    for post in (old, {**old, key: 0}, {**old, key: None}):
        resolved = InferSettings("c", "i", "o", postprocess=post).with_recommended({})[0]
        assert resolved.postprocess == old
    on = InferSettings("c", "i", "o", postprocess={**old, key: 0.2})
    assert on.with_recommended({})[0].postprocess[key] == 0.2


@pytest.mark.parametrize("key", ["calcium_frame_vote", "calcium_outer_median"])
def test_frame_windows_off_keep_the_fingerprint_of_older_outputs(key):
    """A window of 1 (off, the default) is not in the resolved settings; 3 is."""
    old = {"enabled": True, "calcium_min_area_mm2": 0.1}
    for post in (old, {**old, key: 1}):
        resolved = InferSettings("c", "i", "o", postprocess=post).with_recommended({})[0]
        assert resolved.postprocess == old
    on = InferSettings("c", "i", "o", postprocess={**old, key: 3})
    assert on.with_recommended({})[0].postprocess[key] == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"tta": "yes"}, "infer_recommended.tta='yes'"),
        ({"calcium_min_area_mm2": -1}, "calcium_min_area_mm2=-1"),
        ({"calcium_min_area_mm2": float("nan")}, "calcium_min_area_mm2=nan"),
        ({"calcium_min_length_mm": -0.4}, "calcium_min_length_mm=-0.4: a number >= 0 (mm)"),
        ({"calcium_extend_prob": 1.0}, "calcium_extend_prob=1.0: a number in [0, 1)"),
        ({"batch_size": 4}, "unknown key(s) ['batch_size']"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_recommendations_name_the_source(value, message):
    with pytest.raises(InputError) as err:
        check_recommended(value, "model.ckpt")
    assert message in str(err.value) and "model.ckpt" in str(err.value)


def test_a_bad_recommendation_stops_training_before_any_work(tmp_path):
    cfg = _train_cfg(tmp_path / "absent", tmp_path / "out", "infer_recommended={tta: maybe}")
    with pytest.raises(InputError, match="infer_recommended.tta='maybe'"):
        train(cfg)


def test_checkpoints_without_recommendations_keep_the_product_defaults():
    assert recommended({"classes": [0, 1]}) == {}
    s = InferSettings(checkpoint="c", input="i", output="o", postprocess={"enabled": True})
    resolved, applied = s.with_recommended({})
    assert applied == {} and resolved.tta_options() == {"tta_rolls": 1, "tta_flip": False}
    post = {"enabled": True, "calcium_min_area_mm2": None}
    resolved, applied = InferSettings("c", "i", "o", postprocess=post).with_recommended(REC)
    assert resolved.postprocess["calcium_min_area_mm2"] == 0.1 and resolved.tta_enabled is True


def test_a_given_predictor_keeps_its_own_tta(trained, tmp_path):
    """The API's predictor runs as it was built: a recommendation cannot switch its TTA on, and
    the manifest and fingerprint say what it ran; the minimum area and length still apply."""
    pred = oracle_predictor({"n_alines": 64, "n_samples": 48, "spacing_mm": 0.05}, 3)
    pred.meta["infer_recommended"] = REC
    s = InferSettings(checkpoint=None, input=str(trained[1]), output=str(tmp_path / "o"))
    s = dataclasses.replace(s, progress=False, report=False, overlay_frames=[])
    run_inference(s, pred)
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert man["model"]["tta"] == [[0, 0]]
    # the predictor runs no calcium arc extension (its own options): not said to be applied
    assert man["recommended_applied"] == {
        "calcium_min_area_mm2": 0.1,
        "calcium_min_length_mm": 0.4,
    }


def test_api_defaults_take_the_recommended_minimum_area():
    """``postprocess=True`` (the dataclass default) is unset too: the area is recommended; with
    post-processing off nothing is applied."""
    s = InferSettings(checkpoint="c", input="i", output="o")
    resolved, applied = s.with_recommended(REC)
    assert resolved.postprocess == {
        "enabled": True,
        "calcium_min_area_mm2": 0.1,
        "calcium_min_length_mm": 0.4,
        "calcium_extend_prob": 0.3,
    }
    assert applied == REC
    off = {"enabled": False, "calcium_min_area_mm2": None}
    resolved, applied = dataclasses.replace(s, postprocess=off).with_recommended(REC)
    assert applied == {"tta": True}
    resolved, applied = dataclasses.replace(s, postprocess=False).with_recommended(REC)
    assert resolved.postprocess is False and applied == {"tta": True}


def test_a_given_area_is_a_float_whatever_its_spelling():
    """``calcium_min_area_mm2=0`` and ``=0.0`` are the same setting (same fingerprint)."""
    a = InferSettings("c", "i", "o", postprocess={"calcium_min_area_mm2": 0})
    b = InferSettings("c", "i", "o", postprocess={"calcium_min_area_mm2": 0.0})
    ra, rb = a.with_recommended(REC)[0], b.with_recommended(REC)[0]
    assert ra.output_affecting() == rb.output_affecting()
    assert isinstance(ra.postprocess["calcium_min_area_mm2"], float)


def test_the_fingerprint_follows_the_measurement_rules(monkeypatch):
    """Outputs written under older measurement rules are not taken as done by a resumed run."""
    import octseg.geometry.settings as gs

    s = InferSettings("c", "i", "o")
    now = s.output_affecting()
    assert now["measurement_rules"] == gs.MEASUREMENT_RULES
    monkeypatch.setattr(gs, "MEASUREMENT_RULES", gs.MEASUREMENT_RULES + 1)
    assert s.output_affecting() != now


def test_the_hybrid_recipe_recommends_settings_infer_accepts(tmp_path):
    """experiment=hybrid's recommendations pass the checkpoint check and fill in every unset
    setting they name (a misspelt or out-of-range key would stop training at the start)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=hybrid", f"data.root={tmp_path}"])
    rec = check_recommended(OmegaConf.to_container(cfg.infer_recommended), "experiment=hybrid")
    assert rec["calcium_min_length_mm"] > 0 and rec["calcium_extend_prob"] > 0
    resolved, applied = InferSettings("c", "i", "o").with_recommended(rec)
    assert applied == rec
    for key in ("calcium_min_area_mm2", "calcium_min_length_mm", "calcium_extend_prob"):
        assert resolved.postprocess[key] == rec[key]
