"""Every validation number of a model card, through the product (infer.py -> evaluate.py).

    python benchmarks/validate_model.py CKPT [CKPT ...] --data DATA --work W \
        --out benchmarks/results/model_card_default_v1 [--src ../shared/data/ivoct-danilov/pullback-001]

Several checkpoints are validated as their ensemble (the mean of their class probabilities,
``infer.py checkpoint=[...]``); a shipped model's or ensemble's name (``octseg models``) stands
for its files, e.g. ``validate_model.py octseg-calcium-v2 ...``.

Test sets (none of them trained on, none used to choose the checkpoint):

- ``real``: the real Danilov test block (frames 140-185, expert lumen) under the robustness suite
  (benchmarks/robustness.py: 13 corruptions x 3 severities, 12 before session 62; ``--quick``:
  clean frames only);
- ``hybrid``: hybrid versions of the same test block (synthetic calcium / struts / lipid /
  branches in the real frames, exact truth) as console exports, ``DATA/hybrid_test_console``
  (docs/model_card.md gives the build command);
- ``synthetic``: two synthetic pullbacks from a seed the training never used
  (``octseg synth DATA/synth_test --preset small --n 2 --seed 7``, generated if absent).

Writes OUT.md (tables) and OUT.json (the numbers) and prints the tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
VERDICT_ROWS = (
    "lumen_area_mm2",
    "calcium_arc_deg",
    "calcium_max_thickness_mm",
    "calcium_min_depth_mm",
    "max_malapposition_mm",
)


def _run(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, env=ENV)


def _path(value: Path) -> str:
    """An absolute path as a quoted Hydra value: the jobs run in ROOT, not in the caller's
    folder, and a comma, '=' or space in a path must reach them unchanged."""
    from octseg.infer.cli import quote

    return quote(str(Path(value).resolve()))


def _checkpoint_arg(ckpts: list[Path]) -> str:
    """``checkpoint=`` for one file, or the list of several (their ensemble)."""
    files = [_path(c) for c in ckpts]
    return f"checkpoint={files[0]}" if len(files) == 1 else f"checkpoint=[{','.join(files)}]"


def product(ckpts: list[Path], inputs: Path, manual: Path, work: Path) -> dict[str, Any]:
    """infer.py (``ckpts``: one checkpoint or an ensemble's) on ``inputs``, evaluate.py against
    ``manual``; the evaluation's metrics.json."""
    work = work.resolve()
    auto, ev = work / "infer", work / "evaluation"
    _run("infer.py", _checkpoint_arg(ckpts), f"input={_path(inputs)}",
         f"output={_path(auto)}", "overlays.frames=[]", "progress=false",
         "resume=false")  # fmt: skip
    _run("evaluate.py", f"auto={_path(auto)}", f"manual={_path(manual)}", f"out={_path(ev)}",
         "settings.n_bootstrap=200", "settings.progress=false")  # fmt: skip
    return json.loads((ev / "metrics.json").read_text())


def _dice(metrics: dict, name: str) -> dict[str, Any]:
    c = metrics["segmentation"]["classes"].get(name)
    if not c:
        return {}
    return {"dice_mean": c["dice"]["mean"], "dice_median": c["dice"]["median"], "n": c["n_frames"]}


def summary(metrics: dict) -> dict[str, Any]:
    """The model card's numbers from one evaluation."""
    out: dict[str, Any] = {
        f"dice_{n}": _dice(metrics, n) for n in ("lumen", "calcium", "strut", "guidewire")
    }
    for row in metrics["verdict"]:
        if row["level"] == "frame" and row["measurement"] in VERDICT_ROWS:
            keys = ("n", "bias", "loa_lower", "loa_upper", "icc")
            out[row["measurement"]] = {k: row[k] for k in keys}
    struts = metrics["struts"]
    out["strut_f1"] = struts["detection"]["f1"]
    out["strut_precision"] = struts["detection"]["precision"]["value"]
    out["strut_recall"] = struts["detection"]["recall"]["value"]
    mal, every = struts["malapposition"], struts["malapposed_struts"]
    # found / all manual malapposed struts (an undetected one counts as missed): issue 18's
    # sensitivity; the matched pairs' (``malapposed_sensitivity`` before session 52) beside it
    out["malapposed_found"] = every["found"]
    out["malapposed_n_manual"] = every["n_manual"]
    out["malapposed_sensitivity_found"] = every["sensitivity"]["value"]
    out["malapposed_sensitivity_matched"] = mal["sensitivity"]["value"]
    out["malapposed_specificity"] = mal["specificity"]["value"]
    return out


def real_suite(ckpts: list[Path], src: Path, work: Path, quick: bool) -> list[dict[str, str]]:
    out = work / "robustness"
    extra = ["--corruptions"] if quick else []  # "none" (clean frames) is always run
    _run("benchmarks/robustness.py", *map(str, ckpts), "--src", str(src), "--frames", "140:186",
         "--step", "2", "--work", str(work), "--out", str(out), *extra)  # fmt: skip
    with open(out.with_suffix(".csv")) as fh:
        return list(csv.DictReader(fh))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(results: dict[str, Any]) -> str:
    lines = ["| test set | quantity | value |", "|---|---|---|"]
    for name in ("hybrid", "synthetic"):
        for key, val in results[name].items():
            if isinstance(val, dict):
                val = ", ".join(f"{k} {_fmt(v)}" for k, v in val.items())
            lines.append(f"| {name} | {key} | {_fmt(val)} |")
    lines += ["", "| real: corruption | severity | n | Dice mean | min | area bias % | LoA % |"]
    lines.append("|---|---|---|---|---|---|---|")
    for r in results["real"]:
        loa = f"{float(r['area_loa_low_pct']):+.1f}..{float(r['area_loa_high_pct']):+.1f}"
        lines.append(
            f"| {r['corruption']} | {r['severity']} | {r['n_frames']} | "
            f"{float(r['dice_mean']):.3f} | {float(r['dice_min']):.3f} | "
            f"{float(r['area_bias_pct']):+.1f} | {loa} |"
        )
    return "\n".join(lines) + "\n"


def synth_test(data: Path) -> Path:
    out = data / "synth_test"
    if not out.is_dir():
        _run("-m", "octseg.cli", "synth", str(out), "--preset", "small", "--n", "2", "--seed", "7")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, nargs="+", help="one, or several: their ensemble")
    p.add_argument("--data", type=Path, required=True, help="folder of the recipe's data")
    p.add_argument(
        "--src", type=Path, default=ROOT.parent / "shared/data/ivoct-danilov/pullback-001"
    )
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="OUT.md / OUT.json, no suffix")
    p.add_argument("--quick", action="store_true", help="real test block without corruptions")
    a = p.parse_args(argv)
    # the jobs run in ROOT: every path absolute, so that it means what it did here
    a.data, a.src, a.work = a.data.resolve(), a.src.resolve(), a.work.resolve()
    from octseg.model.shipped import checkpoint_files

    ckpts = checkpoint_files(a.checkpoint)
    console = a.data / "hybrid_test_console"
    syn = synth_test(a.data)
    results = {
        "checkpoint": str(a.checkpoint[0])
        if len(a.checkpoint) == 1
        else list(map(str, a.checkpoint)),
        "hybrid": summary(
            product(ckpts, console / "inputs", console / "manual", a.work / "hybrid")
        ),
        "synthetic": summary(product(ckpts, syn, syn, a.work / "synthetic")),
        "real": real_suite(ckpts, a.src, a.work / "real", a.quick),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    a.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
