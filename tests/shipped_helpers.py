"""A tiny stand-in for the shipped model (:mod:`octseg.model.shipped`): a small real checkpoint
in a test folder, put in place of the package's weights file and hash, so the tests run the same
code whether the real weights are committed or not."""

from __future__ import annotations

import hashlib
from pathlib import Path

from model_helpers import TINY_MODEL

from octseg.core import atomic
from octseg.model import shipped
from octseg.model.checkpoint import read_checkpoint
from octseg.model.predictor import save_untrained_checkpoint

GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.05}
RECIPE = "experiment=default (test stand-in)"
VERSION = "0.0.test"


def tiny_checkpoint(path: Path, recipe: str | None = RECIPE) -> Path:
    """A randomly initialised tiny network in the training format; its meta records ``recipe``
    (unless None) and the octseg version :data:`VERSION`, as a trained checkpoint does."""
    save_untrained_checkpoint(path, model_cfg=TINY_MODEL, net_grid=GRID, context_frames=1)
    obj = read_checkpoint(path)
    obj["meta"]["octseg_version"] = VERSION
    if recipe is not None:
        obj["meta"]["recipe"] = recipe
    atomic.torch_save(obj, path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def use_as_shipped(monkeypatch, path: Path, digest: str | None = None) -> Path:
    """``path`` becomes the shipped model's file, with ``digest`` (default: its own) as the
    recorded SHA-256."""
    monkeypatch.setattr(shipped, "WEIGHTS", Path(path))
    monkeypatch.setattr(shipped, "SHA256", sha256(path) if digest is None else digest)
    return Path(path)


def use_as_named(monkeypatch, folder: Path, name: str, digest: str | None = None) -> Path:
    """A tiny checkpoint ``folder/<name>.ckpt`` becomes the shipped model ``name`` (one of
    :data:`octseg.model.shipped.NAMED`), with ``digest`` (default: its own) as its SHA-256;
    ``folder`` becomes the shipped weights folder; no shipped ensemble is left (their members
    are not there)."""
    path = tiny_checkpoint(Path(folder) / f"{name}.ckpt")
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", Path(folder))
    monkeypatch.setattr(shipped, "NAMED", {name: sha256(path) if digest is None else digest})
    monkeypatch.setattr(shipped, "ENSEMBLES", {})
    return path


def use_as_ensemble(monkeypatch, folder: Path, name: str, members: tuple[str, ...]) -> list[Path]:
    """Tiny checkpoints ``folder/<member>.ckpt`` become the shipped models ``members`` (all of
    :data:`octseg.model.shipped.NAMED`, with their own SHA-256) and ``name`` the shipped ensemble
    of them (all of :data:`octseg.model.shipped.ENSEMBLES`); returns the members' files."""
    paths = [tiny_checkpoint(Path(folder) / f"{m}.ckpt") for m in members]
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", Path(folder))
    monkeypatch.setattr(shipped, "NAMED", {m: sha256(p) for m, p in zip(members, paths)})
    monkeypatch.setattr(shipped, "ENSEMBLES", {name: tuple(members)})
    return paths
