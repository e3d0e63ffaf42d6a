"""Calcium model candidates on the hybrid held-out set, measured through the product path.

For each named candidate (Hydra overrides on top of ``experiment=hybrid``): ``train.py`` (one
thread, no early stopping, ``last.ckpt``), ``infer.py`` on the console exports of the held-out
hybrids, ``evaluate.py`` against their truth; one row per candidate is appended to
``benchmarks/results/hybrid_candidates.json`` (the table is rewritten to ``.md``), and the learning
curves (validation calcium Dice per epoch, from each run's ``metrics.json``) are drawn to
``docs/images/hybrid_candidates_curves.png``. Candidates already in the JSON are skipped
(resumable). A candidate with ``reuse`` runs inference on another candidate's checkpoint (TTA):
no training.

The validation set given to ``train.py`` (``--val-root``) only draws the learning curves: no
checkpoint choice, no early stopping (``last.ckpt`` is evaluated). It is the held-out block, so
the curves are held-out curves, not a tuning signal.

    OMP_NUM_THREADS=1 python benchmarks/hybrid_candidates.py --train-root /tmp/cand/train \\
        --val-root /tmp/hyb/data/hybrid/val --console /tmp/hyb/data/hybrid_console \\
        --work /tmp/cand/work baseline aline
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "hybrid_candidates.json"
CURVES = ROOT / "docs" / "images" / "hybrid_candidates_curves.png"


@dataclass(frozen=True)
class Candidate:
    """A named training recipe: overrides on ``experiment=hybrid``; ``reuse``: infer only."""

    description: str
    train: tuple[str, ...] = ()
    infer: tuple[str, ...] = ()
    reuse: str | None = None
    epochs: int = 18
    extra: dict = field(default_factory=dict)


ALINE = ("loss._target_=octseg.train.losses.ALineDiceCELoss", "++loss.lambda_aline=1.0")
# experiment=hybrid has carried the class weights of `calw` since the first screen and the
# ALineDiceCELoss and 256 A-lines of `calw_aline_grid256` since the tenth session; every
# candidate pins the recipe it ran, so the rows stay reproducible: PRE is the recipe before the
# tenth session, NOW the one before the first screen (no weights either).
PRE = ("loss._target_=monai.losses.DiceCELoss", "~loss.lambda_aline", "data.net_grid.n_alines=128")
NOW = ("loss.weight=null", *PRE)
WIDE = ("model.net.channels=[32,64,128,256]",)
CANDIDATES: dict[str, Candidate] = {
    "baseline": Candidate(
        "experiment=hybrid as committed before this screen (UNet 16-128, 128 A-lines, no weights)",
        NOW,
    ),
    "aline": Candidate(
        "+ ALineDiceCELoss (per-A-line calcium presence BCE, lambda 1)", (*NOW, *ALINE)
    ),
    "grid256": Candidate("net grid 256 A-lines", (*NOW, "data.net_grid.n_alines=256")),
    "wide": Candidate("wider UNet 32-256", (*NOW, *WIDE)),
    "dynunet": Candidate(
        "DynUNet 16-128, deep supervision",
        # experiment=hybrid sets UNet keys (channels, strides, num_res_units) on model.net
        (
            *NOW,
            "model=dynunet",
            "~model.net.channels",
            "~model.net.num_res_units",
            "model.net.strides=[1,2,2,2]",
        ),
    ),
    "calw": Candidate(
        "class weights (calcium x3, strut x3)", (*PRE, "loss.weight=[1.0,1.0,3.0,3.0,1.0]")
    ),
    "calw_aline": Candidate(
        "class weights (calcium x3, strut x3) + ALineDiceCELoss",
        (*PRE, "loss.weight=[1.0,1.0,3.0,3.0,1.0]", *ALINE),
    ),
    "calw_aline_grid256": Candidate(
        "class weights + ALineDiceCELoss, net grid 256 A-lines (experiment=hybrid since then)",
        (*PRE, "loss.weight=[1.0,1.0,3.0,3.0,1.0]", *ALINE, "data.net_grid.n_alines=256"),
    ),
    "calw_aline_tta": Candidate(
        "calw_aline checkpoint, TTA at inference", infer=("tta.enabled=true",), reuse="calw_aline"
    ),
    "calw_aline_grid256_tta": Candidate(
        "calw_aline_grid256 checkpoint, TTA at inference",
        infer=("tta.enabled=true",),
        reuse="calw_aline_grid256",
    ),
    "aline_e30": Candidate("+ ALineDiceCELoss, 30 epochs", (*NOW, *ALINE), epochs=30),
    "baseline_e30": Candidate("baseline, 30 epochs", NOW, epochs=30),
    "aline_tta": Candidate(
        "aline checkpoint, TTA at inference", infer=("tta.enabled=true",), reuse="aline"
    ),
    "baseline_tta": Candidate(
        "baseline checkpoint, TTA at inference", infer=("tta.enabled=true",), reuse="baseline"
    ),
}

# a second training seed of each (the train.yaml default is 42)
for _base in ("calw_aline", "calw_aline_grid256"):
    _c = CANDIDATES[_base]
    CANDIDATES[f"{_base}_s1"] = Candidate(f"{_c.description}, seed 1", (*_c.train, "seed=1"))

# four times more lesions on real frames: the same recipe on a 12-variant hybrid build
# (`cohort build ... --variants 12 --val-variants 3 --seed 2`: training draws 2000-2011, apart
# from every held-out draw), given as --train-root; the description names the build
for _seed, _tag in ((None, "v12"), ("1", "v12_s1")):
    CANDIDATES[_tag] = Candidate(
        "calw_aline_grid256 recipe on the 12-variant hybrid build (--variants 12 --seed 2)"
        + (f", seed {_seed}" if _seed else ""),
        (*CANDIDATES["calw_aline_grid256"].train, *((f"seed={_seed}",) if _seed else ())),
    )

# calcium components under a minimum area removed (postprocess.calcium_min_area_mm2), thresholds
# fixed from the training labels before any held-out run: 0.01 mm² is under every calcium
# component of the training set (synthetic pieces from 0.019 mm²), 0.1 under every one of its
# hybrid frames (from 0.23 mm²)
_MIN_AREA_BASES = ("calw_aline", "calw_aline_grid256", "calw_aline_s1", "calw_aline_grid256_s1")
for _base in (*_MIN_AREA_BASES, "v12", "v12_s1"):
    for _tag, _mm2 in (("min001", 0.01), ("min01", 0.1)):
        CANDIDATES[f"{_base}_tta_{_tag}"] = Candidate(
            f"{_base} checkpoint, TTA, calcium components under {_mm2} mm² removed",
            infer=("tta.enabled=true", f"postprocess.calcium_min_area_mm2={_mm2}"),
            reuse=_base,
        )


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (one thread) with output to ``log``; wall seconds; raise naming the log."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"{cmd[1]} failed (exit {rc}); see {log}")
    return time.perf_counter() - t0


def train(name: str, cand: Candidate, args: argparse.Namespace, work: Path) -> float:
    """Train ``cand`` into ``work/run``; wall seconds."""
    run_dir = work / "run"
    if (run_dir / "last.ckpt").exists() and (work / "train.done").exists():
        return float((work / "train.done").read_text())
    cmd = [
        sys.executable,
        "train.py",
        "experiment=hybrid",
        f"data.root={args.train_root}",
        f"data.val_root={args.val_root}",
        "trainer.num_threads=1",
        f"trainer.max_epochs={cand.epochs}",
        "callbacks.early_stopping.patience=null",
        f"task_name=cand_{name}",
        f"hydra.run.dir={run_dir}",
        *cand.train,
    ]
    seconds = run(cmd, work / "train.log")
    (work / "train.done").write_text(f"{seconds:.1f}")
    return seconds


# what a candidate without inference overrides ran with: checkpoints of experiment=hybrid now
# carry recommended settings (octseg/model/recommended.py) that infer.py would apply unasked
INFER_PINNED = {"tta.enabled": "false", "postprocess.calcium_min_area_mm2": "0.0"}


def pinned_infer(overrides: tuple[str, ...]) -> list[str]:
    """``overrides`` plus the pinned value of every :data:`INFER_PINNED` key they do not set."""
    given = {o.split("=", 1)[0] for o in overrides}
    return [f"{k}={v}" for k, v in INFER_PINNED.items() if k not in given] + list(overrides)


def infer_and_evaluate(cand: Candidate, ckpt: Path, args: argparse.Namespace, work: Path) -> dict:
    """``infer.py`` on the console inputs, ``evaluate.py`` against the manual folder."""
    auto, ev = work / "auto", work / "eval"
    for d in (auto, ev):
        shutil.rmtree(d, ignore_errors=True)
    console = Path(args.console)
    infer_s = run(
        [
            sys.executable,
            "infer.py",
            f"checkpoint={ckpt}",
            f"input={console / 'inputs'}",
            f"output={auto}",
            *pinned_infer(cand.infer),
        ],
        work / "infer.log",
    )
    run(
        [
            sys.executable,
            "evaluate.py",
            f"auto={auto}",
            f"manual={console / 'manual'}",
            f"out={ev}",
            "settings.plots=false",
        ],
        work / "evaluate.log",
    )
    metrics = json.loads((ev / "metrics.json").read_text())
    return {"infer_s": round(infer_s, 1), **row_from_metrics(metrics)}


def _get(d: dict, *keys: str) -> object:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _agreement(m: dict | None) -> dict:
    m = m or {}
    keys = ("n", "bias", "loa_lower", "loa_upper", "icc", "icc_ci_pullbacks", "n_pullbacks")
    keys += ("proportional_slope",)
    return {k: m.get(k) for k in keys}


def _malapposition_measure(struts: dict) -> dict:
    """The matched struts' malapposition distance agreement (the one strut measure in mm)."""
    for key, m in (struts.get("measures") or {}).items():
        if "malappos" in key or "distance" in key:
            return {"measure": key, **_agreement(m)}
    return _agreement(None)


def row_from_metrics(m: dict) -> dict:
    """The table's numbers out of an ``evaluate.py`` ``metrics.json``."""
    seg = _get(m, "segmentation", "classes") or {}
    fm = _get(m, "frames", "measures") or {}
    struts = m.get("struts") or {}
    score = _get(m, "lesions", "calcium_score") or {}
    return {
        "calcium_dice": _get(seg, "calcium", "dice", "mean"),
        "calcium_dice_n": _get(seg, "calcium", "n_frames"),
        "calcium_dice_pooled": _get(seg, "calcium", "dice_pooled"),
        "calcium_dice_ci95": _get(seg, "calcium", "dice_ci95"),
        "calcium_one_empty": _get(seg, "calcium", "n_one_empty"),
        "calcium_auto_only": _get(seg, "calcium", "n_auto_only"),
        "calcium_manual_only": _get(seg, "calcium", "n_manual_only"),
        "lumen_dice": _get(seg, "lumen", "dice", "mean"),
        "calcium_arc": _agreement(fm.get("calcium_arc_deg")),
        "calcium_thickness": _agreement(fm.get("calcium_max_thickness_mm")),
        "calcium_score_kappa_quadratic": _get(score, "kappa_quadratic", "kappa"),
        "calcium_score_kappa_linear": _get(score, "kappa_linear", "kappa"),
        "calcium_score_n": score.get("n"),
        "lesion_f1": _get(m, "lesions", "detection", "f1"),
        "lesions_tp": _get(m, "lesions", "detection", "tp"),
        "lesions_fp": _get(m, "lesions", "detection", "fp"),
        "lesions_fn": _get(m, "lesions", "detection", "fn"),
        "strut_f1": _get(struts, "detection", "f1"),
        "malapposition_distance": _malapposition_measure(struts),
        # among matched strut pairs only; malapposed_share() is the (found / all manual)
        "malapposed_sensitivity_matched": _get(struts, "malapposition", "sensitivity", "value"),
        "malapposed_specificity": _get(struts, "malapposition", "specificity", "value"),
        "malapposed_found": _get(struts, "malapposed_struts", "found"),
        "malapposed_n_manual": _get(struts, "malapposed_struts", "n_manual"),
        "malapposed_found_ci_pullbacks": _get(
            struts, "malapposed_struts", "sensitivity", "ci_pullbacks"
        ),
    }


def malapposed_share(r: dict) -> float | None:
    """Malapposed struts found / all manual malapposed struts (undetected ones count as missed),
    the issue's sensitivity; rows written before those counts were recorded give the matched
    pairs' sensitivity (``malapposed_sensitivity`` in results of session 51 and before)."""
    k, n = r.get("malapposed_found"), r.get("malapposed_n_manual")
    if k is not None and n:
        return k / n
    return r.get("malapposed_sensitivity_matched", r.get("malapposed_sensitivity"))


def curve(run_dir: Path) -> list[float]:
    """Validation calcium Dice per epoch from the run's ``metrics.json``."""
    history = json.loads((run_dir / "metrics.json").read_text())
    return [float(h.get("val/dice_calcium", float("nan"))) for h in history]


def fmt(x: object, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def ci(c: list | None, nd: int = 2) -> str:
    """`` [lo, hi]`` of a 95% CI, or nothing where there is none (one pullback, older tables)."""
    if not c or c[0] is None or c[1] is None:
        return ""
    return f" [{c[0]:.{nd}f}, {c[1]:.{nd}f}]"


def loa(a: dict, nd: int) -> str:
    if a.get("bias") is None:
        return "–"
    return f"{a['bias']:+.{nd}f} ({a['loa_lower']:.{nd}f}..{a['loa_upper']:.{nd}f})"


def one_empty(r: dict) -> str:
    """Frames with calcium on one side only, and (where recorded) how many of them are
    spurious (predicted only) / missed (true only)."""
    n = fmt(r.get("calcium_one_empty"))
    if r.get("calcium_auto_only") is None:
        return n
    return f"{n} ({r['calcium_auto_only']} / {r['calcium_manual_only']})"


HEADER = (
    "| candidate | epochs | train min | Ca Dice (pooled) | Ca one-empty frames (spurious / missed) | arc bias (LoA) ° | arc ICC | thick ICC "
    "| score κw (n) | Ca lesion F1 | lumen Dice | strut F1 | malapp. dist. bias (LoA) mm | malapp. sens / spec |"
)


def table_row(r: dict) -> str:
    mal = r["malapposition_distance"]
    sens, spec = malapposed_share(r), r["malapposed_specificity"]
    return (
        f"| {r['name']} | {r['epochs']} | {fmt(r['train_s'] / 60, 1)} | {fmt(r['calcium_dice'])} "
        f"({fmt(r.get('calcium_dice_pooled'))}) | {one_empty(r)} "
        f"| {loa(r['calcium_arc'], 1)} | {fmt(r['calcium_arc']['icc'])} "
        f"| {fmt(r['calcium_thickness']['icc'])} "
        f"| {fmt(r['calcium_score_kappa_quadratic'])} ({fmt(r['calcium_score_n'])}) "
        f"| {fmt(r.get('lesion_f1'))} | {fmt(r['lumen_dice'], 3)} | {fmt(r['strut_f1'])} | {loa(mal, 3)} "
        f"| {fmt(sens)} / {fmt(spec)} |"
    )


def write_outputs(rows: list[dict], json_path: Path, curves_path: Path) -> None:
    """The JSON, the Markdown table beside it and the learning-curve figure."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "# Calcium model candidates, hybrid held-out console exports (infer.py -> evaluate.py)",
        "",
        "Written by benchmarks/hybrid_candidates.py; 2-core x86_64 VM, no GPU, one thread.",
        "",
        HEADER,
        "|" + "---|" * (HEADER.count("|") - 1),
    ]
    lines += [table_row(r) for r in rows]
    lines += ["", *[f"- **{r['name']}**: {r['description']}" for r in rows], ""]
    json_path.with_suffix(".md").write_text("\n".join(lines))
    plot_curves(rows, curves_path)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in rows:
        if r.get("curve"):
            ax.plot(range(1, len(r["curve"]) + 1), r["curve"], marker=".", label=r["name"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation calcium Dice (net grid)")
    ax.set_title("Hybrid held-out block: calcium Dice per epoch (curves only; last.ckpt evaluated)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_candidate(name: str, args: argparse.Namespace) -> dict:
    cand = CANDIDATES[name]
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    if cand.reuse:
        src = Path(args.work) / cand.reuse / "run"
        train_s, epochs, run_dir = 0.0, 0, src
    else:
        train_s, epochs, run_dir = train(name, cand, args, work), cand.epochs, work / "run"
    ckpt = run_dir / "last.ckpt"
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt}: no checkpoint for candidate {name}")
    row = {"name": name, "description": cand.description, "train_overrides": list(cand.train)}
    row |= {"infer_overrides": list(cand.infer), "reuse": cand.reuse, "epochs": epochs}
    row |= {"train_s": round(train_s, 1), **infer_and_evaluate(cand, ckpt, args, work)}
    row["curve"] = [] if cand.reuse else curve(run_dir)
    return row


def rescore(row: dict, work: Path) -> dict:
    """``row`` with its metric fields re-read from its ``evaluate.py`` output."""
    path = work / row["name"] / "eval" / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no evaluation to rescore candidate {row['name']}")
    row = row | row_from_metrics(json.loads(path.read_text()))
    cand = CANDIDATES.get(row["name"])
    if cand is not None:  # the candidate's current (pinned) definition
        row |= {"description": cand.description, "train_overrides": list(cand.train)}
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("names", nargs="*", help=f"candidates to run, of: {', '.join(CANDIDATES)}")
    p.add_argument("--train-root", required=True, help="train folder (hybrid + synthetic links)")
    p.add_argument("--val-root", required=True, help="validation folder, for the curves only")
    p.add_argument("--console", required=True, help="console exports: inputs/ and manual/")
    p.add_argument("--work", required=True, help="scratch folder for runs and outputs")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--curves", type=Path, default=CURVES)
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-read the rows already in the JSON from WORK/NAME/eval/metrics.json (no runs)",
    )
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in CANDIDATES]
    if unknown:
        p.error(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    rows = json.loads(args.results.read_text()) if args.results.exists() else []
    if args.rescore:
        rows = [rescore(r, Path(args.work)) for r in rows]
        write_outputs(rows, args.results, args.curves)
    for name in args.names:
        if any(r["name"] == name for r in rows):
            print(f"{name}: already in {args.results}, skipped")
            continue
        rows.append(evaluate_candidate(name, args))
        write_outputs(rows, args.results, args.curves)
        print(table_row(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
