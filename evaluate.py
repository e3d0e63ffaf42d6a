"""Evaluate automated measurements against manual ones (Hydra entry point).

    python evaluate.py auto=<inference output | cohort folder> manual=<folder> out=<folder>
    python evaluate.py self_check=true auto=<synthetic cohort> out=<folder> [noise=1.0]

Settings: configs/evaluate.yaml (``settings.*``). The same job: ``octseg evaluate --help``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from octseg.core.errors import OctsegError


@hydra.main(version_base="1.3", config_path="octseg/configs", config_name="evaluate")
def main(cfg: DictConfig) -> int:
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


if __name__ == "__main__":
    main()
