"""``octseg infer INPUT... --out DIR`` and ``python infer.py`` without ``checkpoint=`` run the
shipped model (here a tiny stand-in put in its place: tests/shipped_helpers.py), print which
model and where the reports are; the simple form's flags become the Hydra job's overrides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from shipped_helpers import (
    RECIPE,
    tiny_checkpoint,
    use_as_ensemble,
    use_as_named,
    use_as_shipped,
)

from octseg.cli import main as octseg_main
from octseg.infer import cli as infer_cli
from octseg.infer.settings import InferSettings
from octseg.io.labels import load_labels
from octseg.jobs import CONFIG_DIR, kept_logging, register_configs
from octseg.jobs import main as run_job
from octseg.model import shipped


@pytest.fixture
def shipped_ckpt(tmp_path_factory, monkeypatch) -> Path:
    ck = tiny_checkpoint(tmp_path_factory.mktemp("shipped") / "octseg-default-v1.ckpt")
    return use_as_shipped(monkeypatch, ck)


def _dicom(path: Path, frames: int = 4) -> Path:
    from octseg.io.dicom_write import write_ivoct_dicom

    rng = np.random.default_rng(0)
    img = (rng.random((frames, 60, 40)) * 255).astype(np.uint8)
    write_ivoct_dicom(path, img, space="polar", pixel_spacing_mm=0.06, frame_spacing_mm=0.2)
    return path


def _png_frames(folder: Path, n: int = 3) -> Path:
    """A folder of Cartesian grey PNG frames (no spacing in the files)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray((rng.random((56, 56)) * 255).astype(np.uint8)).save(
            folder / f"frame_{i:03d}.png"
        )
    return folder


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _model_line(stdout: str) -> str:
    (line,) = [x for x in stdout.splitlines() if x.startswith("model: ")]
    return line


# ------------------------------------------------------------------------ end to end
def test_simple_form_on_a_dicom_uses_the_shipped_model(tmp_path, shipped_ckpt, capsys):
    dcm = _dicom(tmp_path / "in" / "case1.dcm")
    out = tmp_path / "results"
    with kept_logging():
        assert octseg_main(["infer", str(dcm), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    line = _model_line(stdout)
    assert f"{shipped.NAME} (shipped with octseg)" in line and RECIPE in line
    assert f"report: {out / 'case1' / 'report.html'}" in stdout.splitlines()
    man = _manifest(out)
    assert man["checkpoint"] == str(shipped_ckpt)
    assert man["pullbacks"]["case1"]["status"] == "done"
    assert man["model"]["tta"] == [[0, 0]]  # the CPU default: no test-time augmentation
    for name in ("labels.npz", "seg.dcm", "frames.csv", "report.html", "done.json"):
        assert (out / "case1" / name).is_file(), name
    assert load_labels(out / "case1" / "labels.npz").labels.shape == (4, 60, 40)


def test_simple_form_on_a_png_folder_and_a_second_input(tmp_path, shipped_ckpt, capsys):
    frames = _png_frames(tmp_path / "in" / "scan7")
    dcm = _dicom(tmp_path / "in2" / "case2.dcm", frames=2)
    out = tmp_path / "results"
    argv = ["infer", str(frames), str(dcm), "--out", str(out), "--no-report"]
    argv += ["--pixel-spacing-mm", "0.02", "--frame-spacing-mm", "0.2", "--batch-size", "2"]
    with kept_logging():
        assert octseg_main(argv) == 0
    stdout = capsys.readouterr().out
    assert shipped.NAME in _model_line(stdout)
    assert not [x for x in stdout.splitlines() if x.startswith("report")]  # --no-report
    man = _manifest(out)
    assert {k: v["status"] for k, v in man["pullbacks"].items()} == {
        "scan7": "done",
        "case2": "done",
    }
    assert man["checkpoint"] == str(shipped_ckpt) and man["model"]["batch_size"] == 2
    lf = load_labels(out / "scan7" / "labels.npz")
    assert lf.labels.shape == (3, 56, 56) and lf.space == "cartesian"
    assert lf.pixel_spacing_mm == pytest.approx(0.02)
    assert not (out / "scan7" / "report.html").exists()


def test_python_infer_py_without_checkpoint_uses_the_shipped_model(tmp_path, shipped_ckpt, capsys):
    """``python infer.py input=... output=...`` is :func:`octseg.jobs.main` ("infer", argv)."""
    dcm = _dicom(tmp_path / "in" / "case1.dcm", frames=2)
    out = tmp_path / "results"
    with kept_logging():
        run_job("infer", [f"input={dcm}", f"output={out}", "progress=false"])
    stdout = capsys.readouterr().out
    assert f"{shipped.NAME} (shipped with octseg)" in _model_line(stdout)
    assert f"report: {out / 'case1' / 'report.html'}" in stdout.splitlines()
    assert _manifest(out)["checkpoint"] == str(shipped_ckpt)


def test_a_given_checkpoint_is_used_and_named(tmp_path, shipped_ckpt, capsys):
    mine = tiny_checkpoint(tmp_path / "mine.ckpt", recipe=None)
    dcm = _dicom(tmp_path / "in" / "case1.dcm", frames=2)
    out = tmp_path / "results"
    with kept_logging():
        assert octseg_main(["infer", str(dcm), "--out", str(out), "--checkpoint", str(mine)]) == 0
    assert _model_line(capsys.readouterr().out).startswith(f"model: {mine}")
    assert _manifest(out)["checkpoint"] == str(mine)


def test_a_shipped_model_is_chosen_by_name_alone_or_in_an_ensemble(
    tmp_path, shipped_ckpt, monkeypatch, capsys
):
    """--checkpoint octseg-calcium-v1 / checkpoint=[NAME,NAME]: the shipped files (checked),
    named in the model line; the manifest records the files. (The stand-ins share a grid; the
    real default and calcium models do not and cannot be averaged: test_shipped_weights.)"""
    calcium = use_as_named(monkeypatch, tmp_path / "weights", "octseg-calcium-v1")
    dcm = _dicom(tmp_path / "in" / "case1.dcm", frames=2)
    with kept_logging():
        argv = ["infer", str(dcm), "--out", str(tmp_path / "one")]
        assert octseg_main([*argv, "--checkpoint", "octseg-calcium-v1"]) == 0
    assert _model_line(capsys.readouterr().out).startswith(
        "model: octseg-calcium-v1 (shipped with octseg); recipe"
    )
    assert _manifest(tmp_path / "one")["checkpoint"] == str(calcium)
    out = tmp_path / "two"
    with kept_logging():
        both = f"checkpoint=[{shipped.NAME},octseg-calcium-v1]"
        run_job("infer", [f"input={dcm}", f"output={out}", both, "progress=false"])
    stdout = capsys.readouterr().out
    assert f"  {shipped.NAME} (shipped with octseg)" in stdout
    assert "  octseg-calcium-v1 (shipped with octseg)" in stdout
    assert _manifest(out)["checkpoint"] == [str(shipped_ckpt), str(calcium)]


def test_a_shipped_ensemble_is_chosen_by_name(tmp_path, shipped_ckpt, monkeypatch, capsys):
    """--checkpoint octseg-calcium-v2: its members' files (checked), each named in the model
    line; the outputs equal those of listing the members; the manifest records the files."""
    members = ("octseg-calcium-v1", "octseg-calcium-fdv-s42")
    files = use_as_ensemble(monkeypatch, tmp_path / "w", "octseg-calcium-v2", members)
    dcm = _dicom(tmp_path / "in" / "case1.dcm", frames=2)
    with kept_logging():
        argv = ["infer", str(dcm), "--out", str(tmp_path / "named"), "--no-report"]
        assert octseg_main([*argv, "--checkpoint", "octseg-calcium-v2"]) == 0
        listed = f"checkpoint=[{','.join(members)}]"
        run_job("infer", [f"input={dcm}", f"output={tmp_path / 'listed'}", listed])
    stdout = capsys.readouterr().out
    named_line = "model: octseg-calcium-v2 (shipped ensemble), the mean of 2 checkpoints'"
    assert named_line in stdout  # by name, and the explicit list of its members too
    assert stdout.count(named_line) == 2
    assert all(f"  {m} (shipped with octseg)" in stdout for m in members)
    assert _manifest(tmp_path / "named")["checkpoint"] == [str(f) for f in files]
    for out in ("named", "listed"):  # the outputs say which shipped ensemble ran
        assert _manifest(tmp_path / out)["model"]["shipped_ensemble"] == "octseg-calcium-v2"
    footer = (tmp_path / "listed" / "case1" / "report.html").read_text()
    assert (
        "model octseg-calcium-v2 = octseg-calcium-v1.ckpt + octseg-calcium-fdv-s42.ckpt" in footer
    )
    named = load_labels(tmp_path / "named" / "case1" / "labels.npz")
    listed = load_labels(tmp_path / "listed" / "case1" / "labels.npz")
    assert np.array_equal(np.asarray(named.labels), np.asarray(listed.labels))


def test_missing_shipped_weights_stop_the_job_with_a_clear_error(tmp_path, monkeypatch, capsys):
    gone = use_as_shipped(monkeypatch, tmp_path / "weights" / "octseg-default-v1.ckpt", "0" * 64)
    dcm = _dicom(tmp_path / "in" / "case1.dcm", frames=2)
    with kept_logging(), pytest.raises(SystemExit) as exc:
        octseg_main(["infer", str(dcm), "--out", str(tmp_path / "results")])
    assert exc.value.code == 2  # a usage/checkpoint error, nothing written
    err = capsys.readouterr().err
    assert f"{gone}: the shipped model {shipped.NAME} is missing" in err
    assert "--checkpoint CKPT" in err
    assert not (tmp_path / "results").exists()


# ------------------------------------------------------------------- the translation
def _compose(overrides: list[str]) -> InferSettings:
    """The infer job's settings for ``overrides``, as the job builds them."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("infer", overrides=overrides)
    return InferSettings.from_cfg(OmegaConf.to_container(cfg, resolve=True))


def _overrides(argv: list[str], cuda: bool) -> list[str]:
    args = infer_cli.build_parser().parse_args(argv)
    return infer_cli.to_overrides(args, cuda_available=lambda: cuda)


@pytest.mark.parametrize(
    ("device", "cuda", "tta"),
    [
        ("auto", False, None),
        ("auto", True, True),
        ("cpu", True, None),
        ("cuda", False, True),
        ("cuda:1", False, True),
    ],
)
def test_tta_defaults_to_on_when_the_model_runs_on_cuda(device, cuda, tta):
    """On CUDA TTA is on; on the CPU it is left unset: the checkpoint's recommendation decides
    (octseg.model.recommended), off for a checkpoint without one such as the shipped model."""
    ov = _overrides(["a.dcm", "--out", "o", "--device", device], cuda)
    assert ("tta.enabled=true" in ov) == bool(tta)
    assert not any(o.startswith("tta.enabled=false") for o in ov)
    s = _compose([*ov, "checkpoint=c.ckpt"])
    assert s.device == device and s.tta_enabled is tta
    resolved, _ = s.with_recommended({})
    assert resolved.tta_options() == (
        {"tta_rolls": 4, "tta_flip": True} if tta else {"tta_rolls": 1, "tta_flip": False}
    )


def test_tta_flag_overrides_the_device_default():
    assert "tta.enabled=true" in _overrides(
        ["a.dcm", "--out", "o", "--device", "cpu", "--tta"], False
    )
    assert "tta.enabled=false" in _overrides(["a.dcm", "--out", "o", "--no-tta"], True)


def test_flags_become_the_same_settings_as_the_hydra_form():
    argv = ["a.dcm", "--out", "res", "--checkpoint", "m.ckpt", "--batch-size", "3", "--no-report"]
    argv += ["--pixel-spacing-mm", "0.01", "--frame-spacing-mm", "0.25"]
    simple = _compose(_overrides(argv, False))
    hydra = _compose(
        [
            "input=a.dcm",
            "output=res",
            "checkpoint=m.ckpt",
            "batch_size=3",
            "report=false",
            "overlays.frames=[]",
            "pixel_spacing_mm=0.01",
            "frame_spacing_mm=0.25",
        ]
    )
    assert simple == hydra


def test_several_inputs_with_awkward_names_reach_the_job_unchanged():
    inputs = ["a b/scan 1.dcm", "it's,[x]=y.dcm", "c:\\pb\\", "d/${HOME}.dcm", "ø/frames"]
    s = _compose([*_overrides([*inputs, "--out", "o,ut"], False), "checkpoint=c.ckpt"])
    assert s.input == inputs and s.output == "o,ut"
    one = _compose([*_overrides([inputs[1], "--out", "o"], False), "checkpoint=c.ckpt"])
    assert one.input == inputs[1]


def test_which_arguments_select_the_hydra_job(tmp_path):
    odd = tmp_path / "run=3.dcm"  # an existing file is an input, even with an '='
    odd.write_bytes(b"")
    simple = [["a.dcm", "--out", "o"], [str(odd), "--out=o"], ["--help"], []]
    hydra = [
        ["input=a.dcm", "output=o"],
        ["--cfg", "job"],
        ["-m", "input=a", "output=b"],
        ["--info"],
        ["+geometry.x=1"],
        ["hydra/launcher=submitit_slurm"],
    ]
    assert [infer_cli.wants_hydra(a) for a in simple] == [False] * len(simple)
    assert [infer_cli.wants_hydra(a) for a in hydra] == [True] * len(hydra)


def test_help_shows_the_simple_form_and_the_hydra_surface(capsys):
    with pytest.raises(SystemExit) as exc:
        octseg_main(["infer", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "octseg infer INPUT [INPUT ...] --out DIR" in text
    assert "--checkpoint CKPT" in text and "--tta, --no-tta" in text
    assert "octseg infer key=value" in text and "octseg infer --cfg job" in text


def test_hydra_form_without_checkpoint_composes_null():
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("infer", overrides=["input=a", "output=b"])
    assert cfg.checkpoint is None
