"""tools/ship_model.py: the shipped file keeps the inference state and the recipe, and no
absolute path of the machine it was trained on (user or patient names live in such paths)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml
from shipped_helpers import tiny_checkpoint

from octseg.model.checkpoint import load_checkpoint, read_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import ship_model  # noqa: E402

CONFIG = {
    "task_name": "default",
    "seed": 42,
    "paths": {"data_dir": "/home/alice/smith_john/data", "output_dir": "/home/alice/run_7"},
    "data": {
        "root": "/home/alice/smith_john/data/hybrid/train",
        "extra_train_roots": ["/home/alice/smith_john/data/synth_small"],
        "batch_size": 8,
        "augment": {"gamma": [0.7, 1.4]},
    },
    "trainer": {"max_epochs": 30},
    "init_from": None,
}


def test_shipped_file_has_the_recipe_and_no_absolute_path(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    tiny_checkpoint(run / "best.ckpt")
    (run / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    out = tmp_path / "shipped.ckpt"
    digest = ship_model.ship(run, "best.ckpt", out)
    assert len(digest) == 64
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert "train_state" not in raw and set(raw) == {"format", "version", "state_dict", "meta"}
    _, meta = load_checkpoint(out)
    assert meta["recipe"]["experiment"] == "default" and meta["recipe"]["seed"] == 42
    stored = yaml.safe_load(meta["recipe"]["config_yaml"])
    assert stored["data"]["batch_size"] == 8 and stored["data"]["augment"] == {"gamma": [0.7, 1.4]}
    assert stored["data"]["root"] == "hybrid/train"
    assert stored["data"]["extra_train_roots"] == ["data/synth_small"]
    assert "/home/alice" not in str(read_checkpoint(out)["meta"])


def test_recipe_command_is_the_recorded_overrides_without_paths_or_hydra(tmp_path):
    """The shipped command is what Hydra recorded for the run: every override kept (quoted where
    the shell needs it), the run folder's ``hydra.*`` dropped, absolute paths cut."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    overrides = [
        "experiment=hybrid",
        "data.root=/home/alice/smith_john/hybrid_fdv/train",
        "init_from=octseg-calcium-v1",
        "data.net_grid={n_alines: 384, n_samples: 320, spacing_mm: 0.0117}",
        "hydra.run.dir=/home/alice/runs/fdv384",
        "+hydra.job.env_set.OMP=1",
        "hydra/launcher=submitit_slurm",
        "data.extra_train_roots=[/home/alice/smith_john/synth,'/home/alice/x y/b']",
        "paths.log_dir=~/alice/runs/logs",
    ]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    command = ship_model.run_command(run, CONFIG)
    assert command == (
        "python train.py experiment=hybrid data.root=hybrid_fdv/train "
        "init_from=octseg-calcium-v1 'data.net_grid={n_alines: 384, n_samples: 320, spacing_mm: 0.0117}' "
        "'data.extra_train_roots=[smith_john/synth,'\"'\"'x y/b'\"'\"']' paths.log_dir=runs/logs"
    )
    assert "alice" not in command
    assert ship_model.run_command(tmp_path, CONFIG) == "python train.py experiment=default"
