"""The ``octseg`` command line. Each subcommand lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> int``; this file only dispatches.

``octseg train`` and ``octseg infer`` are the Hydra jobs (:mod:`octseg.jobs`): their arguments are
Hydra overrides (``key=value``, ``--help``, ``--cfg job``, ``-m``), as for ``python train.py``.
``octseg infer INPUT... --out DIR [--checkpoint ...]`` (no override, no Hydra flag) is parsed by
:mod:`octseg.infer.cli` and runs the same job with the overrides it translates to.
``octseg evaluate`` takes flags, or Hydra overrides when its first argument is ``key=value``
(the job of ``python evaluate.py``).

User errors (:class:`octseg.core.errors.OctsegError`) are printed as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from octseg import __version__
from octseg.core.errors import OctsegError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "octseg.datasets.synth.cli",
        "generate synthetic IVOCT pullbacks with exact ground truth",
    ),
    "inspect": ("octseg.io.cli_inspect", "print what the readers understand of an image file"),
    "verify": ("octseg.io.cli_verify", "check a labelled-pullback dataset and list every problem"),
    "measure": ("octseg.geometry.cli", "clinical metrics from a label file"),
    "evaluate": ("octseg.evaluate.cli", "agreement of automated with manual measurements"),
    "realdata": (
        "octseg.datasets.danilov.build",
        "the real Danilov pullback as a polar lumen dataset; evaluate",
    ),
    "hybrid": (
        "octseg.datasets.hybrid.cohort",
        "synthetic calcium/struts in real frames: build, evaluate",
    ),
    "review": ("octseg.review.cli", "browser app to review and correct a segmentation"),
    "models": (
        "octseg.model.models_cli",
        "the models that ship with octseg, checked, and what each is for",
    ),
}


# Hydra jobs: name -> one-line help (arguments go to Hydra unparsed)
JOBS: dict[str, str] = {
    "train": "train a segmentation model (Hydra job: key=value overrides, --help, --cfg job)",
    "infer": "batch inference: octseg infer INPUT... --out DIR (the shipped model), or the "
    "Hydra job (input= output= [checkpoint=] ...); octseg infer --help",
}


def _is_hydra_job(argv: list[str]) -> bool:
    """``octseg train|infer ...``, or ``octseg evaluate key=value ...`` (the Hydra job)."""
    if not argv:
        return False
    if argv[0] in JOBS:
        return True
    return argv[0] == "evaluate" and len(argv) > 1 and "=" in argv[1] and argv[1][0] != "-"


def _job_overrides(argv: list[str]) -> list[str]:
    """The Hydra overrides of ``octseg JOB ...``: as given, except ``octseg infer INPUT...
    --out DIR`` (:mod:`octseg.infer.cli`), translated."""
    if argv[0] != "infer":
        return argv[1:]
    from octseg.infer import cli as infer_cli

    return argv[1:] if infer_cli.wants_hydra(argv[1:]) else infer_cli.parse(argv[1:])


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="octseg",
        description="octseg: intravascular OCT segmentation, clinical geometry and evaluation.",
        epilog="octseg train/infer take Hydra overrides (key=value; octseg train --help), as do "
        "python train.py / infer.py / evaluate.py in a checkout and octseg evaluate key=value; "
        "octseg infer INPUT... --out DIR runs the shipped model (octseg infer --help).",
    )
    parser.add_argument("--version", action="version", version=f"octseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in JOBS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    modules: dict[str, object] = {}
    for name, (modname, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == modname or modname.startswith(exc.name + ".")):
                continue  # subcommand not part of this build yet
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        modules[name] = mod
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _is_hydra_job(argv):
        from octseg.jobs import main as run_job

        run_job(argv[0], _job_overrides(argv))
        return 0
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except OctsegError as exc:
        print(f"octseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"octseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
