"""The Hydra jobs (train, infer, evaluate) with the configs shipped inside the package.

Run from a checkout or from an installed wheel alike::

    octseg train experiment=tiny data.root=DATA      # = python train.py ... in a checkout
    octseg infer checkpoint=CKPT input=IN output=OUT  # = python infer.py ...
    python -m octseg.jobs evaluate auto=A manual=M out=OUT

The repo-root ``train.py`` / ``infer.py`` / ``evaluate.py`` are thin wrappers around
:func:`main`. Every job composes ``octseg/configs/<job>.yaml``; the defaults of the settings
dataclasses (:class:`~octseg.geometry.settings.GeometrySettings`,
:class:`~octseg.infer.settings.InferSettings`,
:class:`~octseg.evaluate.settings.EvaluationSettings`) are the Hydra nodes those YAML files
extend, registered by :func:`register_configs` (call it before composing ``infer`` or
``evaluate`` with Hydra's compose API).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
JOBS = ("train", "infer", "evaluate")


def register_configs() -> None:
    """Store the settings dataclasses' defaults in Hydra's ConfigStore (the one source of them):
    ``geometry/base``, ``infer_base`` and ``evaluate_settings``."""
    from hydra.core.config_store import ConfigStore

    from octseg.evaluate.settings import EvaluationSettings
    from octseg.geometry.settings import GeometrySettings
    from octseg.infer.settings import InferSettings

    cs = ConfigStore.instance()
    cs.store(group="geometry", name="base", node=GeometrySettings().to_dict())
    cs.store(name="infer_base", node=InferSettings.hydra_defaults())
    evaluation = dataclasses.asdict(EvaluationSettings())
    cs.store(name="evaluate_settings", node=evaluation)


# ------------------------------------------------------------------------------------ jobs


def train_job(cfg: Any) -> float | None:
    """``train``: one training run (:func:`octseg.train.loop.main`); returns the best metric."""
    from octseg.train.loop import main as run

    return run(cfg)


def infer_job(cfg: Any) -> None:
    """``infer``: batch inference; exits 1 when a pullback failed, 2 on a usage error."""
    from octseg.infer.pipeline import main as run

    code = run(cfg)
    if code:
        sys.exit(code)  # hydra.main discards return values


def evaluate_job(cfg: Any) -> int:
    """``evaluate``: agreement of automated with manual measurements (or the self-check)."""
    from omegaconf import OmegaConf

    from octseg.core.errors import OctsegError
    from octseg.evaluate import evaluate
    from octseg.report.evaluation import print_summary

    settings = OmegaConf.to_container(cfg.settings, resolve=True)
    try:
        if cfg.self_check:
            from octseg.evaluate.selfcheck import self_check

            result = self_check(cfg.auto, cfg.out, noise=float(cfg.noise), settings=settings)
        else:
            result = evaluate(cfg.auto, cfg.manual, cfg.out, settings)
    except OctsegError as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        sys.exit(1)
    print_summary(result.metrics)
    print(f"report: {cfg.out}/report.html")
    return 0


_TASKS: dict[str, Callable[[Any], Any]] = {
    "train": train_job,
    "infer": infer_job,
    "evaluate": evaluate_job,
}


# ------------------------------------------------------------------------------- running


def run(job: str, overrides: Sequence[str] = ()) -> None:
    """Run ``job`` through Hydra's command line (``--help``, ``--cfg job``, ``-m`` and
    ``hydra.*`` overrides included), as ``python <job>.py *overrides`` does."""
    import hydra

    register_configs()
    task = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=job)
    argv = sys.argv
    sys.argv = [argv[0], *overrides]
    try:
        task(_TASKS[job])()
    finally:
        sys.argv = argv


def prepare_distributed(overrides: list[str]) -> list[str]:
    """Under ``torchrun`` (training): rank 0 picks the run folder's timestamp and shares it with
    every rank through the rendezvous store (``OCTSEG_RUN_STAMP``), so all ranks use one run
    folder; ranks > 0 write no ``.hydra/`` files and no log. Returns the overrides to use."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return overrides
    from octseg.core.distributed import agree_run_stamp

    stamp = agree_run_stamp()
    if stamp:
        os.environ["OCTSEG_RUN_STAMP"] = stamp
    if int(os.environ.get("RANK", "0")) != 0:
        # one set of .hydra/ files and one log, written by rank 0
        return [*overrides, "hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return overrides


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(job: str, overrides: Sequence[str] | None = None) -> None:
    """Command-line entry of one job (``python train.py`` / ``octseg train`` ...)."""
    overrides = list(sys.argv[1:] if overrides is None else overrides)
    if job != "train":
        run(job, overrides)
        return
    # the process group is created by the training loop (trainer.ddp_backend); the timestamp
    # goes through the rendezvous store only
    overrides = prepare_distributed(overrides)
    try:
        run(job, overrides)
    finally:
        _destroy_process_group()


@contextmanager
def kept_logging() -> Iterator[None]:
    """Undo what a Hydra job does to the root logger (its handlers, its level) afterwards: for
    running a job in-process (the demo)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)


def _cli(argv: list[str]) -> int:
    if not argv or argv[0] not in JOBS:
        print(f"usage: python -m octseg.jobs {{{','.join(JOBS)}}} [key=value ...]", file=sys.stderr)
        return 2
    main(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
