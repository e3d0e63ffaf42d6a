"""Train a segmentation model: ``python train.py [experiment=synthetic] [key=value ...]``.

Thin Hydra entry point; the work happens in :func:`octseg.train.loop.train`. Under
``torchrun --nproc_per_node N train.py ...`` rank 0 picks the run folder's timestamp and shares it
with every rank before Hydra starts, so all ranks use one run folder (only rank 0 writes into it).
The timestamp goes through the rendezvous store only; the process group is created afterwards by
the training loop with ``trainer.ddp_backend`` and destroyed at its end.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="octseg/configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from octseg.train.loop import main as run

    return run(cfg)


def _prepare_distributed() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    from octseg.core.distributed import agree_run_stamp

    stamp = agree_run_stamp()
    if stamp:
        os.environ["OCTSEG_RUN_STAMP"] = stamp
    if int(os.environ.get("RANK", "0")) != 0:
        # one set of .hydra/ files and one log, written by rank 0
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled"]


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    _prepare_distributed()
    try:
        main()
    finally:
        _destroy_process_group()
