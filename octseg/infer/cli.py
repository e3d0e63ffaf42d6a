"""``octseg infer INPUT... --out DIR``: the everyday form of batch inference.

For people with pullbacks and no labels: the shipped model (:mod:`octseg.model.shipped`) unless
``--checkpoint`` names another, device ``auto``, test-time augmentation on when the model runs on
CUDA. The flags are translated into the overrides of the Hydra job (:func:`to_overrides`), which
:mod:`octseg.cli` then runs: the same job, settings and outputs as
``python infer.py input=... output=...`` (docs/inference.md).

The other form, ``octseg infer key=value ...``, is the Hydra job itself (every setting). It is
chosen when an argument is a ``key=value`` override of one of the job's settings (one that names
no existing file or folder: an existing path is always an input, and so is ``scan=2.dcm``, whose
``scan`` is no setting: it gets "no such file", not Hydra's "key not in struct") or a Hydra flag
(:data:`HYDRA_FLAGS`); see :func:`wants_hydra`.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

# Hydra's command-line flags (python infer.py --help); -h/--help shows this module's help
HYDRA_FLAGS = frozenset(
    {
        "--cfg",
        "-c",
        "--package",
        "-p",
        "--multirun",
        "-m",
        "--hydra-help",
        "--info",
        "-i",
        "--resolve",
        "--run",
        "-r",
        "--config-path",
        "-cp",
        "--config-name",
        "-cn",
        "--config-dir",
        "-cd",
        "--shell-completion",
        "-sc",
        "--experimental-rerun",
        "--version",
    }
)
# a Hydra override: [+|++|~]key=value, key a dotted name (hydra/launcher=... included)
_OVERRIDE = re.compile(r"^(\+\+|\+|~)?[A-Za-z_][\w.@/-]*=")

DESCRIPTION = """\
Segment and measure IVOCT pullbacks: labels, clinical tables, overlays and one HTML report per
pullback under --out. Without --checkpoint the model that ships with octseg is used (what it
was validated on, and what not: docs/model_card.md); --checkpoint octseg-calcium-v3 uses the
recommended calcium ensemble, which reads calcium on realistic frames far better
(octseg-calcium-v2: the previous one, 1.6x faster; octseg-calcium-v1: one network, faster
still)."""
EPILOG = """\
INPUT is a pullback (IVOCT DICOM, octseg .npz, multi-page TIFF, a folder of PNG/TIFF frames),
a folder of pullbacks, a dataset folder or a .txt list of paths; several may be given.

The full Hydra surface: octseg infer key=value ... (the same job as python infer.py in a
checkout), e.g.
  octseg infer input=scans/ output=results/ checkpoint=best.ckpt resample=probs
Every setting and its default: octseg infer --cfg job; docs/inference.md. A key=value argument
(one that is not an existing file or folder) or a Hydra flag (--cfg, -m/--multirun, -c, -p,
-i/--info, --resolve, --hydra-help, --config-dir ...) selects that form. Hydra's help of the
job: python -m octseg.jobs infer --help (python infer.py --help in a checkout).
"""


def wants_hydra(args: Sequence[str]) -> bool:
    """Whether ``octseg infer ARGS`` is the Hydra job (a ``key=value`` override that names no
    existing path, or a Hydra flag) rather than ``octseg infer INPUT... --out DIR``. The value
    of a flag of the simple form (``--out results/run=1``) is that flag's, never an override."""
    takes_value = _value_flags()
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.split("=", 1)[0] in HYDRA_FLAGS:
            return True
        if _OVERRIDE.match(arg) and not Path(arg).exists() and _names_setting(arg):
            return True
        skip = _names_value_flag(arg, takes_value)
    return False


def _names_setting(arg: str) -> bool:
    """Whether the ``key=value`` argument ``arg`` overrides a setting of the infer job (its
    first key is one of the job's, or Hydra's), adds one (``+key=``) or deletes one (``~key``)."""
    from octseg.infer.settings import InferSettings

    if arg.startswith(("+", "~")):
        return True
    root = re.split(r"[./@=]", arg, maxsplit=1)[0]
    return root in {*InferSettings.hydra_defaults(), "geometry", "hydra"}


def _value_flags() -> list[str]:
    """The simple form's options that take a value (``--out``, ``--checkpoint``, ...)."""
    return [
        flag
        for action in build_parser()._actions
        if action.nargs != 0
        for flag in action.option_strings
    ]


def _names_value_flag(arg: str, flags: list[str]) -> bool:
    """Whether ``arg`` is one of ``flags`` given without ``=`` (so the next argument is its
    value), or a prefix argparse expands to exactly one of them (``--ou``)."""
    if not arg.startswith("--") or "=" in arg or len(arg) < 3:
        return False
    if arg in flags:
        return True
    return len([f for f in flags if f.startswith(arg)]) == 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="octseg infer",
        usage="octseg infer INPUT [INPUT ...] --out DIR [options]\n"
        "       octseg infer key=value ...   (the Hydra job: every setting)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="pullbacks (files or folders)")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created; never an input)"
    )
    p.add_argument(
        "--checkpoint",
        metavar="CKPT",
        action="append",
        help="a checkpoint written by train.py, or the name of a model that ships with octseg "
        "(octseg-default-v1, the default; octseg-calcium-v3, for calcium, an ensemble of three "
        "shipped models; octseg-calcium-v2, the previous one; octseg-calcium-v1, one network: "
        "docs/model_card.md, octseg models); "
        "given again (--checkpoint A --checkpoint B): an ensemble, their class probabilities "
        "averaged",
    )
    p.add_argument(
        "--ensemble-weight",
        metavar="CLASS=W,W",
        action="append",
        type=class_weights,
        help="an ensemble's member weights for one class, one per member in their order (each "
        "--checkpoint; a shipped ensemble's members as `octseg models` lists them) "
        "(calcium=1,0: calcium from the first model only); given again for more classes; "
        "classes not named: the plain mean",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available, else CPU) | cpu | cuda | cuda:N (default: auto)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="test-time augmentation: 4 rolls x flip, averaged (default: on when the model "
        "runs on CUDA; on the CPU, where it takes 8x the model time, as the checkpoint "
        "recommends: off for the default shipped model, on for the calcium models)",
    )
    p.add_argument("--batch-size", type=int, metavar="N", help="frames per forward pass")
    p.add_argument(
        "--pixel-spacing-mm",
        type=float,
        metavar="MM",
        help="pixel spacing when the files do not give it (PNG/TIFF frames, no spacing.json)",
    )
    p.add_argument(
        "--frame-spacing-mm", type=float, metavar="MM", help="distance between frames (likewise)"
    )
    p.add_argument("--no-report", action="store_true", help="no overlays and no HTML report")
    return p


def class_weights(text: str) -> tuple[str, list[float]]:
    """``--ensemble-weight`` ``CLASS=W,W,...`` -> ``(CLASS, [W, W, ...])``."""
    name, sep, values = text.partition("=")
    try:
        if not sep or not re.fullmatch(r"[a-z_]+", name.strip()):
            raise ValueError
        return name.strip(), [float(v) for v in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give CLASS=W,W,... (e.g. calcium=1,0), one weight per ensemble member"
        ) from None


def quote(value: str) -> str:
    """``value`` as a Hydra quoted string that OmegaConf resolves back to ``value`` exactly
    (quotes, commas, brackets, ``=``, backslashes and ``${`` in paths included)."""
    value = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    value = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    return "'" + value.replace("'", "\\'") + "'"


def runs_on_cuda(device: str, cuda_available: Callable[[], bool] | None = None) -> bool:
    """Whether the model will run on CUDA: ``cuda``/``cuda:N``, or ``auto`` with a GPU."""
    if device == "auto":
        if cuda_available is None:
            import torch

            cuda_available = torch.cuda.is_available
        return bool(cuda_available())
    return device.startswith("cuda")


def to_overrides(
    args: argparse.Namespace, cuda_available: Callable[[], bool] | None = None
) -> list[str]:
    """The Hydra overrides of the infer job that mean what ``args`` say."""
    inputs = [str(x) for x in args.inputs]
    if len(inputs) == 1:
        overrides = [f"input={quote(inputs[0])}"]
    else:
        overrides = [f"input=[{','.join(quote(x) for x in inputs)}]"]
    overrides.append(f"output={quote(str(args.out))}")
    if args.checkpoint:
        ckpts = [quote(str(c)) for c in args.checkpoint]
        value = ckpts[0] if len(ckpts) == 1 else f"[{','.join(ckpts)}]"
        overrides.append(f"checkpoint={value}")
    if args.ensemble_weight:
        weights = ",".join(f"{k}:[{','.join(map(repr, w))}]" for k, w in args.ensemble_weight)
        overrides.append(f"ensemble_weights={{{weights}}}")
    overrides.append(f"device={quote(args.device)}")
    tta = args.tta if args.tta is not None else runs_on_cuda(args.device, cuda_available) or None
    if tta is not None:  # None (CPU, no flag): as the model recommends, off without
        overrides.append(f"tta.enabled={'true' if tta else 'false'}")
    if args.batch_size is not None:
        overrides.append(f"batch_size={int(args.batch_size)}")
    for key in ("pixel_spacing_mm", "frame_spacing_mm"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={float(getattr(args, key))!r}")
    if args.no_report:
        overrides += ["report=false", "overlays.frames=[]"]
    return overrides


def parse(argv: Sequence[str]) -> list[str]:
    """``octseg infer INPUT... --out DIR [options]`` -> the job's Hydra overrides (argparse
    prints the help or the usage error and exits for ``--help`` and bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    named = Counter(name for name, _ in args.ensemble_weight or ())
    twice = [name for name, n in named.items() if n > 1]
    if twice:
        parser.error(f"--ensemble-weight: a class given twice ({', '.join(twice)})")
    return to_overrides(args)
