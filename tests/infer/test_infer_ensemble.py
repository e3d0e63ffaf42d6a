"""infer.py with several checkpoints (``checkpoint=[a,b]``): the mean of their class
probabilities labels the frames, the manifest names every member, the outputs' fingerprint is the
ensemble's, and the simple CLI and the Hydra job both take the list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from model_helpers import TINY_MODEL, ClassOracle, polar_npz, quiet_settings

from octseg.core.errors import InputError
from octseg.infer.cli import parse
from octseg.infer.pipeline import run_inference
from octseg.infer.settings import InferSettings
from octseg.io.labels import load_labels
from octseg.model import checkpoint as ckpt_module
from octseg.model.predictor import save_untrained_checkpoint

GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}


class WeakShift(torch.nn.Module):
    """Says the oracle's class + 1, unsure (logit 2 against 0): alone it is wrong (its lumen
    lies in the tissue, and post-processing removes it); averaged with the confident oracle it
    loses every pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = (torch.round(x[:, x.shape[1] // 2] * 4).clamp(0, 4).long() + 1) % 5
        return 2.0 * torch.nn.functional.one_hot(cls, 5).permute(0, 3, 1, 2).float()


@pytest.fixture
def members(tmp_path, monkeypatch) -> tuple[str, str]:
    """Two checkpoint files whose networks are the oracle (a) and the weak wrong one (b)."""
    paths = {}
    for name, net in (("a.pt", ClassOracle()), ("b.pt", WeakShift())):
        path = save_untrained_checkpoint(
            tmp_path / name, model_cfg=TINY_MODEL, context_frames=1, net_grid=GRID
        )
        paths[str(path)] = net
    real = ckpt_module.load_checkpoint

    def load(path, map_location="cpu"):
        _, meta = real(path, map_location=map_location)
        return paths[str(path)].eval(), meta

    monkeypatch.setattr(ckpt_module, "load_checkpoint", load)
    return tuple(paths)


def _run(checkpoint, inp: Path, out: Path):
    run_inference(quiet_settings(inp, out, checkpoint=checkpoint))
    return load_labels(next(out.glob("*/labels.npz"))).labels


def test_the_mean_of_probabilities_labels_the_frames(members, tmp_path, capsys):
    a, b = members
    inp = polar_npz(tmp_path / "in" / "case.npz", 3)
    lab_a = _run(a, inp, tmp_path / "a")
    lab_b = _run(b, inp, tmp_path / "b")
    lab_ab = _run([a, b], inp, tmp_path / "ab")
    lumen = lab_a == 1
    assert lumen.mean() > 0.3 and (lab_b[lumen] != 1).all()  # the weak member alone is wrong
    assert (lab_ab == lab_a).all()  # the mean follows the confident one
    assert "the mean of 2 checkpoints" in capsys.readouterr().out
    written = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("a", "b", "ab")]
    assert written[2]["checkpoint"] == [a, b]
    assert written[2]["model"]["ensemble"] == [a, b]
    prints = {m["fingerprint"] for m in written}
    assert len(prints) == 3  # the ensemble's outputs are not taken for either member's
    # the members in the other order: the same outputs, so a resumed run skips the pullback
    run_inference(quiet_settings(inp, tmp_path / "ab", checkpoint=[b, a]))
    again = json.loads((tmp_path / "ab" / "manifest.json").read_text())
    assert again["fingerprint"] == written[2]["fingerprint"] and again["n_skipped"] == 1


def test_checkpoint_setting_forms():
    assert InferSettings(checkpoint=["a"], input="i", output="o").checkpoint == "a"
    assert InferSettings(checkpoint=("a", "b"), input="i", output="o").checkpoint == ["a", "b"]
    assert InferSettings(checkpoint="", input="i", output="o").checkpoint is None
    with pytest.raises(InputError, match="every listed path"):
        InferSettings(checkpoint=[], input="i", output="o")


def test_simple_cli_passes_several_checkpoints_to_the_job(tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from octseg.jobs import register_configs

    odd = str(tmp_path / "we,ird [x].ckpt")
    overrides = parse(["--checkpoint", "a.ckpt", "scan.dcm", "--out", "o", "--checkpoint", odd])
    assert "input='scan.dcm'" in overrides  # one value per flag: the input is not a member
    assert any(o.startswith("checkpoint=[") for o in overrides)
    register_configs()
    configs = Path(__file__).resolve().parents[2] / "octseg" / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("infer", overrides=overrides)
    s = InferSettings.from_cfg(OmegaConf.to_container(cfg, resolve=True))
    assert s.checkpoint == ["a.ckpt", odd]
    one = parse(["scan.dcm", "--out", "o", "--checkpoint", "a.ckpt"])
    assert "checkpoint='a.ckpt'" in one


ALL_FROM_B = {n: [0, 1] for n in ("background", "lumen", "calcium", "strut", "guidewire")}


def test_class_weights_choose_which_member_gives_each_class(members, tmp_path, capsys):
    a, b = members
    inp = polar_npz(tmp_path / "in" / "case.npz", 3)
    lab_a, lab_b = _run(a, inp, tmp_path / "a"), _run(b, inp, tmp_path / "b")
    assert (lab_a != lab_b).any()
    run_inference(
        quiet_settings(inp, tmp_path / "ab", checkpoint=[a, b], ensemble_weights=ALL_FROM_B)
    )
    lab_ab = load_labels(next((tmp_path / "ab").glob("*/labels.npz"))).labels
    assert (lab_ab == lab_b).all()  # every class from the weak member: its labels exactly
    out = capsys.readouterr().out
    assert "class-weighted mean of 2" in out and "calcium: weighted [0.0, 1.0]" in out
    first = json.loads((tmp_path / "ab" / "manifest.json").read_text())
    assert first["model"]["ensemble_weights"]["lumen"] == [0.0, 1.0]
    # the weights follow the members' order: swapped, the outputs are not taken as the same
    run_inference(
        quiet_settings(inp, tmp_path / "ab", checkpoint=[b, a], ensemble_weights=ALL_FROM_B)
    )
    again = json.loads((tmp_path / "ab" / "manifest.json").read_text())
    assert again["fingerprint"] != first["fingerprint"] and again["n_skipped"] == 0
    assert (load_labels(next((tmp_path / "ab").glob("*/labels.npz"))).labels == lab_a).all()
    # weights that scale to the same ones are the same setting: the pullback is not re-inferred
    scaled = {n: [0, 3.0] for n in ALL_FROM_B}
    run_inference(quiet_settings(inp, tmp_path / "ab", checkpoint=[b, a], ensemble_weights=scaled))
    third = json.loads((tmp_path / "ab" / "manifest.json").read_text())
    assert third["fingerprint"] == again["fingerprint"] and third["n_skipped"] == 1


def test_a_given_predictor_runs_its_own_class_weights(members, tmp_path):
    from octseg.model.predictor import Predictor

    a, b = members
    inp = polar_npz(tmp_path / "in" / "case.npz", 3)
    lab_b = _run(b, inp, tmp_path / "b")
    plain = Predictor.from_checkpoint([a, b], device="cpu")
    with pytest.raises(InputError, match="the given predictor runs no class weights"):
        run_inference(
            quiet_settings(inp, tmp_path / "x", checkpoint=[a, b], ensemble_weights=ALL_FROM_B),
            predictor=plain,
        )
    weighted = Predictor.from_checkpoint([a, b], class_weights=ALL_FROM_B, device="cpu")
    run_inference(quiet_settings(inp, tmp_path / "ab", checkpoint=[a, b]), predictor=weighted)
    written = json.loads((tmp_path / "ab" / "manifest.json").read_text())
    assert written["model"]["ensemble_weights"]["calcium"] == [0.0, 1.0]
    assert (load_labels(next((tmp_path / "ab").glob("*/labels.npz"))).labels == lab_b).all()
    # the members listed the other way round: still the predictor's model, its fingerprint
    run_inference(quiet_settings(inp, tmp_path / "ab", checkpoint=[b, a]), predictor=weighted)
    again = json.loads((tmp_path / "ab" / "manifest.json").read_text())
    assert again["fingerprint"] == written["fingerprint"] and again["n_skipped"] == 1


def test_without_class_weights_the_fingerprint_has_no_weights_key():
    s = InferSettings(checkpoint=["a", "b"], input="i", output="o")
    assert "ensemble_weights" not in s.output_affecting()  # earlier outputs keep theirs
    empty = InferSettings(checkpoint=["a", "b"], input="i", output="o", ensemble_weights={})
    assert empty.output_affecting() == s.output_affecting()
    w = InferSettings(checkpoint=["a", "b"], input="i", output="o", ensemble_weights={"x": [1, 0]})
    assert w.output_affecting()["ensemble_weights"] == {"x": [1, 0]}


@pytest.mark.parametrize(
    ("checkpoint", "weights", "message"),
    [
        ("a.ckpt", {"calcium": [1, 0]}, "need an ensemble"),
        (None, {"calcium": [1, 0]}, "need an ensemble"),
        (["a", "b"], {"calcium": [1, 0, 0]}, r"ensemble_weights.calcium=\[1, 0, 0\]: give one"),
        (["a", "b"], {"calcium": 1}, "give one weight per checkpoint"),
        (["a", "b"], [1, 0], "a mapping of classes"),
        (["a", "b"], {"calcuim": [1, 0]}, "not a class name"),
        (["a", "b"], {"calcium": [-1, 2]}, ">= 0"),
        (["a", "b"], {"calcium": [0, 0]}, "not all 0"),
    ],
)
def test_class_weights_are_checked_before_anything_runs(checkpoint, weights, message):
    from octseg.infer.safety import validate_settings

    s = InferSettings(checkpoint=checkpoint, input="i", output="o", ensemble_weights=weights)
    with pytest.raises(InputError, match=message):
        validate_settings(s)


def test_class_weights_for_a_shipped_ensemble_count_its_members(monkeypatch):
    """checkpoint=octseg-calcium-v2 (three members): three weights per class, checked as for a
    listed ensemble of three."""
    from octseg.infer.safety import validate_settings
    from octseg.model import shipped

    monkeypatch.setattr(shipped, "ENSEMBLES", {"octseg-calcium-v2": ("a", "b", "c")})

    def settings(w):
        return InferSettings(
            checkpoint="octseg-calcium-v2", input="i", output="o", ensemble_weights=w
        )

    validate_settings(settings({"calcium": [1, 0, 0]}))
    with pytest.raises(InputError, match="give one weight per checkpoint.*in order: a, b, c"):
        validate_settings(settings({"calcium": [1, 0]}))


def test_simple_cli_passes_class_weights_to_the_job(capsys):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from octseg.jobs import register_configs

    args = ["s.dcm", "--out", "o", "--checkpoint", "a", "--checkpoint", "b"]
    overrides = parse([*args, "--ensemble-weight", "calcium=1,0", "--ensemble-weight", "strut=2,1"])
    register_configs()
    configs = Path(__file__).resolve().parents[2] / "octseg" / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("infer", overrides=overrides)
    s = InferSettings.from_cfg(OmegaConf.to_container(cfg, resolve=True))
    assert s.ensemble_weights == {"calcium": [1.0, 0.0], "strut": [2.0, 1.0]}
    with pytest.raises(SystemExit):
        parse([*args, "--ensemble-weight", "calcium:1,0"])
    assert "give CLASS=W,W" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse([*args, "--ensemble-weight", "calcium=1,0", "--ensemble-weight", "calcium=0,1"])
    assert "a class given twice" in capsys.readouterr().err
