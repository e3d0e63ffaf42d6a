"""benchmarks/validate_model.py runs infer.py / evaluate.py in the repository root: the paths it
hands them must mean the same there as where it was started, and reach Hydra unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

from benchmarks import validate_model


def _fake_run(calls: list[dict[str, str]]):
    """A stand-in for the subprocess: Hydra-parses the overrides and, for evaluate.py, writes
    metrics.json where the real job would (relative paths from the repository root)."""
    parser = OverridesParser.create()

    def run(script: str, *overrides: str) -> None:
        values = {}
        for o in overrides:
            ov = parser.parse_override(o)
            values[ov.key_or_group] = ov.value()
        calls.append(values)
        if script == "evaluate.py":
            out = validate_model.ROOT / values["out"]  # an absolute path stays as it is
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps({"ok": True}))

    return run


def test_relative_work_folder_and_awkward_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls: list[dict[str, str]] = []
    monkeypatch.setattr(validate_model, "_run", _fake_run(calls))
    ckpt = tmp_path / "runs" / "lr=0.1,b" / "best.ckpt"
    inputs = tmp_path / "my data" / "inputs"
    metrics = validate_model.product([ckpt], inputs, inputs, Path("work dir"))
    assert metrics == {"ok": True}
    infer, evaluate = calls
    assert infer["checkpoint"] == str(ckpt) and infer["input"] == str(inputs)
    assert infer["output"] == str(tmp_path / "work dir" / "infer")
    assert evaluate["out"] == str(tmp_path / "work dir" / "evaluation")
    assert not (validate_model.ROOT / "work dir").exists()


def test_several_checkpoints_are_validated_as_their_ensemble(tmp_path, monkeypatch):
    """Several checkpoints (e.g. a shipped ensemble's member files) reach infer.py as one
    checkpoint list, each path absolute and unchanged, in the order given."""
    monkeypatch.chdir(tmp_path)
    calls: list[dict[str, str]] = []
    monkeypatch.setattr(validate_model, "_run", _fake_run(calls))
    ckpts = [tmp_path / "w" / "a,1.ckpt", Path("rel") / "b.ckpt"]
    validate_model.product(ckpts, tmp_path / "in", tmp_path / "in", Path("work"))
    assert calls[0]["checkpoint"] == [str(ckpts[0]), str(tmp_path / "rel" / "b.ckpt")]


def test_a_shipped_ensembles_name_stands_for_its_member_files(tmp_path, monkeypatch):
    from shipped_helpers import use_as_ensemble

    from octseg.model.shipped import checkpoint_files

    files = use_as_ensemble(monkeypatch, tmp_path / "w", "octseg-calcium-v2", ("m1", "m2"))
    got = checkpoint_files([Path("octseg-calcium-v2")])
    assert got == [f.resolve() for f in files]


def test_summary_names_both_malapposed_sensitivities():
    """The model card's malapposed sensitivity is found / all manual malapposed struts (an
    undetected strut counts as missed); the matched pairs' value sits beside it, named so."""
    strut_detection = {"f1": 0.9, "precision": {"value": 0.9}, "recall": {"value": 0.9}}
    metrics = {
        "segmentation": {"classes": {}},
        "verdict": [],
        "struts": {
            "detection": strut_detection,
            "malapposition": {"sensitivity": {"value": 0.95}, "specificity": {"value": 0.99}},
            "malapposed_struts": {"found": 60, "n_manual": 74, "sensitivity": {"value": 60 / 74}},
        },
    }
    out = validate_model.summary(metrics)
    assert (out["malapposed_found"], out["malapposed_n_manual"]) == (60, 74)
    assert out["malapposed_sensitivity_found"] == 60 / 74
    assert out["malapposed_sensitivity_matched"] == 0.95
    assert "malapposed_sensitivity" not in out
