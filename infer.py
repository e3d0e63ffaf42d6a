"""Batch inference: ``python infer.py checkpoint=CKPT input=IN output=OUT`` (docs/inference.md).

Sharded with ``torchrun --nproc_per_node N infer.py ...``. Exit status 0 when every pullback is
done, 1 when any failed (see OUT/manifest.json), 2 on a usage/checkpoint error.
"""

import sys

import hydra
from omegaconf import DictConfig

from octseg.infer.pipeline import main as run


@hydra.main(version_base="1.3", config_path="octseg/configs", config_name="infer")
def main(cfg: DictConfig) -> None:
    code = run(cfg)
    if code:
        sys.exit(code)  # hydra.main discards return values


if __name__ == "__main__":
    main()
