"""Shared by the fine-tuning tests: the tiny experiment's config on a toy dataset, and a
one-epoch model to start from."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

CONFIGS = Path(__file__).resolve().parents[1] / "octseg" / "configs"


def toy_cfg(root: Path, out: Path, *extra: str):
    """``experiment=tiny`` on the dataset ``root``, writing to ``out``, with ``extra`` overrides."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            "train",
            overrides=["experiment=tiny", f"data.root={root}", f"paths.output_dir={out}", *extra],
        )


def one_epoch_model(root: Path, out: Path) -> Path:
    """A tiny model trained for one epoch on ``root``: the checkpoint fine-tuning starts from."""
    from octseg.train.loop import train

    train(toy_cfg(root, out, "trainer.max_epochs=1"))
    return out / "last.ckpt"
