"""The installed package runs the jobs, and the settings are defined once.

* A wheel built from the package (configs included) is installed into a fresh virtual
  environment that cannot see the checkout (its dependencies come from this environment's
  site-packages through a plain ``.pth`` path line, which does not run the editable install's
  hook, so ``octseg`` is the wheel's). From a temporary folder, ``octseg train`` trains a tiny
  model - the same numbers as ``python train.py`` in the checkout (exact; timings excepted) - and
  ``octseg infer`` runs it on the tiny cohort.
* The Hydra configs compose exactly the settings dataclasses' defaults, and the YAML files hold
  no values of their own (a key added to one of them only fails here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from octseg.evaluate.settings import EvaluationSettings
from octseg.geometry.settings import GeometrySettings
from octseg.infer.settings import InferSettings
from octseg.jobs import CONFIG_DIR, register_configs

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("experiment=tiny", "data.root=toy")
REQUIRED = ("checkpoint=c.ckpt", "input=in", "output=out")


def _compose(name: str, *overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


# ------------------------------------------------------------------- settings defined once


def test_infer_config_is_the_dataclass_defaults():
    from octseg.model.postprocess import PostprocessSettings

    cfg = _compose("infer", *REQUIRED)
    s = InferSettings.from_cfg(cfg)
    expected = InferSettings(checkpoint="c.ckpt", input="in", output="out")
    for f in ("geometry", "postprocess"):
        setattr(expected, f, getattr(s, f))
    assert s == expected
    assert GeometrySettings.from_dict(s.geometry) == GeometrySettings()
    assert set(s.postprocess) < {f for f in PostprocessSettings.__dataclass_fields__}
    # calcium_min_area_mm2 and tta.enabled are null: the checkpoint's recommendation, else off
    assert s.postprocess["calcium_min_area_mm2"] is None and s.tta_enabled is None
    resolved, applied = s.with_recommended({})
    assert PostprocessSettings.from_value(resolved.postprocess) == PostprocessSettings()
    assert resolved.tta_options() == {"tta_rolls": 1, "tta_flip": False} and applied == {}
    tta = InferSettings.from_cfg(_compose("infer", *REQUIRED, "tta.enabled=true"))
    assert tta.tta_options() == {"tta_rolls": 4, "tta_flip": True}
    assert set(OmegaConf.load(CONFIG_DIR / "infer.yaml")) == {"defaults", "hydra"}


def test_evaluate_config_is_the_dataclass_defaults():
    cfg = _compose("evaluate", "auto=a", "manual=m")
    settings = OmegaConf.to_container(cfg.settings, resolve=True)
    assert set(settings) == set(EvaluationSettings.__dataclass_fields__)
    assert EvaluationSettings.from_dict(settings) == EvaluationSettings()
    assert "settings" not in OmegaConf.load(CONFIG_DIR / "evaluate.yaml")
    assert list(cfg)[-1] == "settings"  # .hydra-run/config.yaml keeps its key order


# ------------------------------------------------------------------ the installed package


def _run(cmd: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    project = tmp / "project"  # the files the wheel is built from (pyproject + package + readme)
    shutil.copytree(
        ROOT / "octseg", project / "octseg", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    _run([*pip_wheel, "-w", tmp / "dist", project], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("octseg-*.whl")
    venv.EnvBuilder(with_pip=True).create(tmp / "venv")
    bin_dir = tmp / "venv" / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp)
    site = _run(
        [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp
    )
    deps = sysconfig.get_path("purelib")  # this environment's packages, not its .pth hooks
    (Path(site.stdout.strip()) / "octseg_test_deps.pth").write_text(deps + "\n")
    return bin_dir


def test_installed_wheel_trains_and_infers(installed, tmp_path):
    venv_root = installed.parent
    where = _run([installed / "python", "-c", "import octseg; print(octseg.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv_root)
    make_toy = "from octseg.datasets.toy import make_toy_dataset as m; m('toy', n_pullbacks=3)"
    _run([installed / "python", "-c", make_toy], tmp_path)

    _run([installed / "octseg", "train", *TRAIN, "hydra.run.dir=run"], tmp_path)
    run = tmp_path / "run"
    hydra_cfg = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra
    assert hydra_cfg.job.name == "train" and (run / "train.log").is_file()
    configs = [s.path for s in hydra_cfg.runtime.config_sources if s.provider == "main"]
    assert Path(configs[0]).is_relative_to(venv_root)  # the wheel's configs
    history = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and (run / "best.ckpt").is_file()

    # the checkout's entry point: the same job, the same numbers
    _run([sys.executable, ROOT / "train.py", *TRAIN, "hydra.run.dir=ref"], tmp_path)
    reference = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert _without_timings(history) == _without_timings(reference)

    args = ["checkpoint=run/best.ckpt", "input=toy", "output=predicted", "progress=false"]
    _run([installed / "octseg", "infer", *args, "report=false", "overlays.frames=[]"], tmp_path)
    _check_inference(tmp_path / "predicted", ["pb000", "pb001", "pb002"])
    # the wheel carries the shipped model: no checkpoint argument, its SHA-256 checked
    res = _run([installed / "octseg", "infer", "toy", "--out", "shipped", "--no-report"], tmp_path)
    assert "octseg-default-v1 (shipped with octseg)" in res.stdout + res.stderr
    _check_inference(tmp_path / "shipped", ["pb000", "pb001", "pb002"])
    _run([installed / "python", "-m", "octseg.demo", "--help"], tmp_path)


def _without_timings(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if not k.endswith("_s")} for h in history]


def _check_inference(out: Path, ids: list[str]) -> None:
    from octseg.io.labels import load_labels

    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["n_done"], manifest["n_failed"]) == (len(ids), 0), manifest
    for pid in ids:
        assert (out / pid / "frames.csv").is_file()
        labels = load_labels(out / pid / "labels.npz").labels
        assert labels.shape[0] == 6 and set(np.unique(labels)) <= {0, 1, 2, 3, 4}
