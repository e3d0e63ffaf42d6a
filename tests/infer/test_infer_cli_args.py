"""Which form ``octseg infer ARGS`` takes when a flag's value (``--out``, ``--checkpoint``...)
looks like a ``key=value`` override: such a value is the flag's, never a Hydra override."""

from __future__ import annotations

from octseg.infer import cli as infer_cli


def test_a_flag_value_with_an_equals_sign_keeps_the_simple_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # none of these relative paths exists
    simple = [
        ["scan.dcm", "--out", "results/run=1"],
        ["scan.dcm", "--out", "o", "--checkpoint", "runs/lr=0.1/best.ckpt"],
        ["scan.dcm", "--checkpoint", "runs/lr=0.1/best.ckpt", "--out", "o"],
        ["scan.dcm", "--out", "o", "--device", "cpu"],
        ["scan.dcm", "--ou", "results/run=1"],  # argparse accepts a unique prefix
    ]
    assert [infer_cli.wants_hydra(a) for a in simple] == [False] * len(simple)
    # the parse keeps the value as the output folder, quoted
    assert "output='results/run=1'" in infer_cli.parse(simple[0])
    # an override after the flag's value is still an override
    assert infer_cli.wants_hydra(["--no-report", "input=a", "output=b"])
    assert infer_cli.wants_hydra(["scan.dcm", "--out", "o", "resample=probs"])


def test_a_missing_input_with_an_equals_sign_is_an_input_not_an_override(tmp_path, monkeypatch):
    # "scan=2.dcm" names no file here and no setting of the job: the simple form reports the
    # missing file instead of Hydra's "Key 'scan' is not in struct"
    monkeypatch.chdir(tmp_path)
    assert not infer_cli.wants_hydra(["scan=2.dcm", "--out", "o"])
    assert not infer_cli.wants_hydra(["runs/lr=0.1/scan.dcm", "--out", "o"])
    # the job's own keys (nested, group and Hydra ones too) still select the Hydra form
    for arg in ("input=a", "tta.enabled=true", "geometry.n_rays=360", "hydra.run.dir=x"):
        assert infer_cli.wants_hydra([arg]), arg
