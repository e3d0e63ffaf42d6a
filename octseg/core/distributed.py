"""Distributed data parallel helpers (torchrun, or SLURM through hydra-submitit-launcher).

* ``torchrun --nproc_per_node N train.py ...`` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_*.
* Under SLURM (submitit, one task per GPU) the same variables are derived from SLURM_* with
  ``submitit.helpers.TorchDistributedEnvironment``.

The backend is ``nccl`` for CUDA tensors and ``gloo`` for CPU ones ("cpu:gloo,cuda:nccl" when
CUDA is present), so small Python objects can always be broadcast through gloo;
``trainer.ddp_backend`` overrides it.

Before Hydra starts, ``train.py`` agrees on the run folder's timestamp through the rendezvous
key-value store alone (:func:`agree_run_stamp`), *without* creating the process group, so the group
is created later with the configured backend; it reuses that same store.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def export_slurm_env() -> None:
    """Under SLURM (one task per process, e.g. hydra-submitit-launcher) set RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR and MASTER_PORT from the SLURM variables, as torchrun would."""
    if "WORLD_SIZE" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return
    if "SLURM_PROCID" not in os.environ:
        return
    try:
        from submitit.helpers import TorchDistributedEnvironment

        # set_cuda_visible_devices=False: submitit would set CUDA_VISIBLE_DEVICES to the local
        # rank, so that ``cuda:LOCAL_RANK`` no longer exists for LOCAL_RANK > 0, and the index
        # would name a physical GPU that SLURM may have given to another job (SLURM already
        # sets CUDA_VISIBLE_DEVICES to the job's GPUs).
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    except Exception:  # not a submitit job: leave single-process
        return


_STORE: tuple[Any, int, int] | None = None  # (store, rank, world size) of the rendezvous
_TIMEOUT = datetime.timedelta(minutes=30)


def _rendezvous() -> tuple[Any, int, int]:
    """The ``env://`` rendezvous store (torchrun's agent store, or one hosted by rank 0)."""
    global _STORE
    if _STORE is None:
        from torch.distributed import rendezvous

        store, rank, world = next(rendezvous("env://", timeout=_TIMEOUT))
        store.set_timeout(_TIMEOUT)
        _STORE = (store, int(rank), int(world))
    return _STORE


def default_backend() -> str:
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def ensure_process_group(backend: str | None = None) -> bool:
    """Initialise the default process group from the environment if WORLD_SIZE > 1.

    Returns True if this call initialised it."""
    export_slurm_env()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if dist.is_initialized():
        return False
    if backend in (None, "auto"):
        backend = default_backend()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if _STORE is not None:  # agree_run_stamp already met the other ranks: reuse its store
        store, rank, world = _STORE
        dist.init_process_group(
            backend=backend,
            store=dist.PrefixStore("default_pg", store),
            rank=rank,
            world_size=world,
            timeout=_TIMEOUT,
        )
    else:
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
    return True


def init_distributed(accelerator: str = "auto", backend: str | None = None) -> DistInfo:
    """Join the process group (if any) and pick this rank's device."""
    here = ensure_process_group(backend)
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and accelerator in ("auto", "cuda", "gpu")
    if accelerator in ("cuda", "gpu") and not torch.cuda.is_available():
        raise RuntimeError("trainer.accelerator=cuda but CUDA is not available")
    device = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    return DistInfo(rank, world, local, device, here)


def cleanup(info: DistInfo) -> None:
    global _STORE
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()
    _STORE = None


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over ranks (in place; float64 sums are reduced on the CPU through gloo)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: Any, info: DistInfo) -> list[Any]:
    """``obj`` of every rank, in rank order (a one-element list without a process group)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def agree_run_stamp() -> str | None:
    """Under torchrun: rank 0's timestamp, shared with every rank (for one run folder).

    Uses only the rendezvous store - the process group is *not* created here, so it is created
    later with the configured ``trainer.ddp_backend`` (and reuses this store)."""
    export_slurm_env()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return None
    store, rank, world = _rendezvous()
    if world <= 1:
        return None
    key = "octseg/run_stamp"
    if rank == 0:
        store.set(key, datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    return store.get(key).decode()
