"""Package a trained checkpoint as the model that ships with octseg.

Run: python tools/ship_model.py RUN_DIR [--ckpt best.ckpt] [--out octseg/model/weights/...]

Keeps what inference needs (``format``, ``version``, ``state_dict``, ``meta``) and drops the
training state (optimiser, scheduler, RNG states); stores in ``meta["recipe"]`` the run's resolved
config (``RUN_DIR/config.yaml``), the experiment name and the code version of the checkout it is
packaged from (``git describe``, with ``-dirty`` when the tree had uncommitted changes; the
training run itself records no commit) and the training command (Hydra's record of the run's
overrides, ``RUN_DIR/.hydra/overrides.yaml``, unless ``--command`` gives it); replaces every
absolute path, in the split, the stored config and the command, by its last two parts (the
machine's folders, which may name a user or a patient, do not ship). Writes atomically, reads the result back with the product's loader
(``weights_only=True``) and prints its size and SHA-256, the value to put in
``octseg.model.shipped.SHA256``.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from octseg import __version__
from octseg.core import atomic
from octseg.model.checkpoint import load_checkpoint, read_checkpoint
from octseg.model.shipped import sha256_of

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "octseg" / "model" / "weights" / "octseg-default-v1.ckpt"


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def code_version() -> dict[str, Any]:
    """The commit checked out when the weights are packaged, and whether the tree was clean
    (the training run records none: train and package from the same tree)."""
    return {
        "octseg_version": __version__,
        "git_commit": _git("rev-parse", "HEAD") or None,
        "git_describe": _git("describe", "--always", "--dirty") or None,
    }


def _last_two(path: str) -> str:
    """A path cut to its last two parts (the machine's folders, which may name a user or a
    patient, do not ship)."""
    return "/".join(Path(path).parts[-2:])


def _relative_roots(split: dict[str, Any]) -> dict[str, Any]:
    """The split's pullback ids kept; absolute data roots replaced by their last two parts."""
    out = dict(split)
    for key in ("root", "val_root"):
        if isinstance(out.get(key), str):
            out[key] = _last_two(out[key])
    roots = out.get("extra_train_roots")
    if isinstance(roots, list):
        out["extra_train_roots"] = [_last_two(r) for r in roots]
    return out


def _short(value: Any) -> Any:
    """``value`` with every absolute path (in nested mappings and lists too) cut to its last
    two parts."""
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, str) and Path(value).is_absolute():
        return _last_two(value)
    return value


_QUOTED_PATH = re.compile(r"(?<=['\"])~?/[^'\"]+(?=['\"])")
_PATH = re.compile(r"(?<![\w.])~?/[^\s,\[\]{}'\"=]+")


def _short_override(item: str) -> str:
    """One Hydra override with every absolute (or ``~``) path in its value, also inside a list
    or quotes, cut to its last two parts."""
    key, sep, value = item.partition("=")
    cut = value
    for pattern in (_QUOTED_PATH, _PATH):  # quoted first: their paths may hold spaces
        cut = pattern.sub(lambda m: _last_two(m.group(0)), cut)
    return f"{key}{sep}{cut}" if sep else item


def _is_hydra(item: str) -> bool:
    """A Hydra override of Hydra itself (``hydra.run.dir=``, ``+hydra.job...``,
    ``hydra/launcher=``): where and how the run ran, not the recipe."""
    key = item.partition("=")[0].lstrip("+~")
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def run_command(run_dir: Path, cfg: dict[str, Any]) -> str:
    """The training command as Hydra recorded it (``RUN_DIR/.hydra/overrides.yaml``), without
    Hydra's own overrides and with every absolute path cut; the experiment alone when the run
    folder has no record."""
    record = run_dir / ".hydra" / "overrides.yaml"
    if not record.is_file():
        return f"python train.py experiment={cfg.get('task_name')}"
    items = [str(o) for o in yaml.safe_load(record.read_text()) or []]
    kept = [_short_override(o) for o in items if not _is_hydra(o)]
    return " ".join(["python train.py", *map(shlex.quote, kept)])


def recipe(run_dir: Path, cfg: dict[str, Any], command: str | None) -> dict[str, Any]:
    return {
        "experiment": cfg.get("task_name"),
        "seed": cfg.get("seed"),
        "command": command or run_command(run_dir, cfg),
        "config_yaml": yaml.safe_dump(_short(cfg), sort_keys=False),
        **code_version(),
    }


def ship(run_dir: Path, ckpt_name: str, out: Path, command: str | None = None) -> str:
    src = run_dir / ckpt_name
    obj = read_checkpoint(src)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    meta = dict(obj["meta"])
    meta["split"] = _relative_roots(meta.get("split") or {})
    meta["recipe"] = recipe(run_dir, cfg, command)
    meta["source_checkpoint"] = ckpt_name
    shipped = {k: obj[k] for k in ("format", "version", "state_dict")}
    shipped["meta"] = meta
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.torch_save(shipped, out)
    load_checkpoint(out)  # the product's loader (weights_only=True) reads it back
    return sha256_of(out)  # what octseg.model.shipped checks on load


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="training run folder (config.yaml, *.ckpt)")
    p.add_argument("--ckpt", default="best.ckpt", help="checkpoint file in RUN_DIR")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--command",
        help="the training command as run (default: the overrides Hydra recorded in RUN_DIR/.hydra)",
    )
    args = p.parse_args(argv)
    digest = ship(args.run_dir, args.ckpt, args.out, args.command)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.2f} MB)\nSHA256 = {digest!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
