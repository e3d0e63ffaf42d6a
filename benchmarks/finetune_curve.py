"""Few-label fine-tuning (issue 18 item 3): held-out hybrid accuracy against the number of
labelled frames, through the product path.

``curve``: for each N, ``train.py experiment=finetune init_from=BASE`` on N evenly spaced labelled
frames of one hybrid *training* pullback (N = 0: the base model unchanged), then ``infer.py`` on
the hybrid *held-out* pullbacks and ``evaluate.py`` against their truth. Every run gets the same
number of optimiser steps (``--steps``; epochs = steps / batches per epoch), and the curve uses
the run's ``last.ckpt`` (the held-out set never picks a checkpoint or a recipe). ``--scratch``:
the control from random weights (give it its own ``--override optimizer.lr=...``).

``tune``: one recipe variant at one N, judged by train.py's own validation metrics on a *tuning*
folder (another hybrid training pullback: other inserted lesions on the same real frames), never
on the held-out set. ``report``: ``benchmarks/results/finetune_curve.{json,md}`` and
``docs/images/finetune_curve.png`` from those runs. One thread everywhere.

    python benchmarks/finetune_curve.py curve --base DEMO/model.ckpt --data DATA/hybrid \
        --out /tmp/ft/curve --ns 0 10 30 100
    python benchmarks/finetune_curve.py curve --scratch --base DEMO/model.ckpt \
        --data DATA/hybrid --out /tmp/ft/curve --ns 30 100 --override optimizer.lr=0.003
    python benchmarks/finetune_curve.py tune --base DEMO/model.ckpt --data DATA/hybrid \
        --tune-val DATA/tune_val --out /tmp/ft/tune --n 30 --variant H --override optimizer.lr=0.0001
    python benchmarks/finetune_curve.py report --base DEMO/model.ckpt --data DATA/hybrid \
        --out /tmp/ft/curve --tune-jsonl /tmp/ft/tune/tune.jsonl --extra lr3e-4=/tmp/ft/curve_lr3e-4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
BATCH = 8


def epochs_for(n: int, steps: int, batch: int = BATCH) -> int:
    """Epochs giving about ``steps`` optimiser steps on ``n`` frames (train.py drops the last
    partial batch when there are more frames than one batch)."""
    per_epoch = n // batch if n > batch else 1
    return max(1, math.ceil(steps / per_epoch))


def run(cmd: list[str], log: Path) -> float:
    """Run one job (one thread), its output into ``log``; returns the wall time in seconds."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, env=ENV, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - t0


def finetune(
    args: argparse.Namespace, n: int, out: Path, val_root: Path, extra: list[str]
) -> tuple[Path, float]:
    """``train.py experiment=finetune`` on ``n`` frames of ``args.pullback``; (last.ckpt, s)."""
    frames = out / "labelled.json"
    labels = args.data / "train" / args.pullback / "labels.npz"
    sys.path.insert(0, str(ROOT))
    from octseg.train.data import label_frame_index

    frames.write_text(json.dumps({args.pullback: label_frame_index(labels).tolist()}))
    epochs = epochs_for(n, args.steps)
    cmd = [
        sys.executable,
        "train.py",
        "experiment=finetune",
        *(["init_required=false"] if args.scratch else [f"init_from={args.base}"]),
        f"data.root={args.data / 'train'}",
        f"data.val_root={val_root}",
        f"data.labelled_frames={frames}",
        f"data.max_labelled_frames={n}",
        f"trainer.max_epochs={epochs}",
        f"trainer.val_every_n_epochs={epochs}",
        "trainer.num_threads=1",
        f"hydra.run.dir={out / 'train'}",
        *extra,
    ]
    return out / "train" / "last.ckpt", run(cmd, out / "train.log")


def infer_and_evaluate(args: argparse.Namespace, ckpt: Path, out: Path) -> tuple[dict, float]:
    """``infer.py`` on the held-out hybrid pullbacks, ``evaluate.py`` against their truth."""
    val = args.data / "val"
    t = run(
        [
            sys.executable,
            "infer.py",
            f"checkpoint={ckpt}",
            f"input={val}",
            f"output={out / 'infer'}",
            "report=false",
            "overlays.frames=[]",
            "progress=false",
            "writers=1",
        ],
        out / "infer.log",
    )
    t += run(
        [
            sys.executable,
            "evaluate.py",
            f"auto={out / 'infer'}",
            f"manual={val}",
            f"out={out / 'eval'}",
            "settings.n_bootstrap=200",
            "settings.plots=false",
            "settings.progress=false",
        ],
        out / "evaluate.log",
    )
    return json.loads((out / "eval" / "metrics.json").read_text()), t


def pick(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The curve's numbers from evaluate.py's metrics.json."""

    def get(*path: str) -> float | None:
        node: Any = metrics
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return None if node is None else float(node)

    seg = ("segmentation", "classes")
    return {
        "calcium_dice": get(*seg, "calcium", "dice", "mean"),
        "calcium_dice_pooled": get(*seg, "calcium", "dice_pooled"),
        "lumen_dice": get(*seg, "lumen", "dice", "mean"),
        "calcium_arc_bias_deg": get("frames", "measures", "calcium_arc_deg", "bias"),
        "calcium_arc_icc": get("frames", "measures", "calcium_arc_deg", "icc"),
        "strut_f1": get("struts", "detection", "f1"),
    }


def curve(args: argparse.Namespace) -> None:
    rows = []
    for n in args.ns:
        out = args.out / f"n{n:03d}{'-scratch' if args.scratch else ''}"
        out.mkdir(parents=True, exist_ok=True)
        ckpt, t_train = args.base, 0.0
        if n > 0:
            ckpt, t_train = finetune(args, n, out, args.data / "val", args.override)
        metrics, t_eval = infer_and_evaluate(args, ckpt, out)
        row = {
            "n_labelled": n,
            "init": "random" if args.scratch else str(args.base),
            "epochs": epochs_for(n, args.steps) if n else 0,
            "train_s": round(t_train, 1),
            "infer_evaluate_s": round(t_eval, 1),
            **pick(metrics),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        name = "scratch" if args.scratch else "curve"
        (args.out / f"{name}.json").write_text(json.dumps(rows, indent=2))
    if not args.scratch:
        (args.out / "curve.md").write_text(table(rows) + "\n")
        plot(rows, args.out / "finetune_curve.png")


COLUMNS = [
    ("n_labelled", "labelled frames", "{}"),
    ("epochs", "epochs", "{}"),
    ("calcium_dice", "calcium Dice (mean/frame)", "{:.3f}"),
    ("calcium_dice_pooled", "calcium Dice (pooled)", "{:.3f}"),
    ("calcium_arc_bias_deg", "calcium arc bias (deg)", "{:+.1f}"),
    ("calcium_arc_icc", "calcium arc ICC", "{:.2f}"),
    ("lumen_dice", "lumen Dice", "{:.3f}"),
    ("strut_f1", "strut F1", "{:.3f}"),
    ("train_s", "train (s)", "{:.0f}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    """The curve as a Markdown table."""
    head = "| " + " | ".join(t for _, t, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = [
        "| "
        + " | ".join("n/a" if r.get(k) is None else f.format(r[k]) for k, _, f in COLUMNS)
        + " |"
        for r in rows
    ]
    return "\n".join([head, rule, *body])


def plot(rows: list[dict[str, Any]], png: Path) -> None:
    """Calcium and lumen Dice and strut F1 against the number of labelled frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n_labelled"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for key, label in [
        ("calcium_dice", "calcium Dice (mean per frame)"),
        ("calcium_dice_pooled", "calcium Dice (pooled)"),
        ("lumen_dice", "lumen Dice"),
        ("strut_f1", "strut F1"),
    ]:
        ax.plot(ns, [r[key] for r in rows], marker="o", label=label)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_ylim(0, 1)
    ax.set_xlabel("labelled frames of one hybrid training pullback")
    ax.set_title(
        "fine-tuned synthetic model, hybrid held-out (infer.py -> evaluate.py)", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def tune(args: argparse.Namespace) -> None:
    out = args.out / args.variant
    out.mkdir(parents=True, exist_ok=True)
    _, t = finetune(args, args.n, out, args.tune_val, args.override)
    summary = json.loads((out / "train" / "train_summary.json").read_text())
    val = summary["last_val"]
    row = {
        "variant": args.variant,
        "overrides": args.override,
        "n_labelled": args.n,
        "train_s": round(t, 1),
        **{k: val.get(k) for k in ("dice_calcium", "dice_lumen", "strut_f1", "score")},
    }
    print(json.dumps(row), flush=True)
    with (args.out / "tune.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def report(args: argparse.Namespace) -> None:
    """``benchmarks/results/finetune_curve.{json,md}`` and the plot from the runs under
    ``--out`` (curve.json, scratch.json, tune/tune.jsonl) and ``--extra NAME=FOLDER`` curves."""
    rows = json.loads((args.out / "curve.json").read_text())
    scratch_file = args.out / "scratch.json"
    scratch = json.loads(scratch_file.read_text()) if scratch_file.is_file() else []
    extra = {}
    for item in args.extra:
        name, folder = item.split("=", 1)
        extra[name] = json.loads((Path(folder) / "curve.json").read_text())
    tune_file = args.tune_jsonl
    tuned = [json.loads(x) for x in tune_file.read_text().splitlines()] if tune_file else []
    results = ROOT / "benchmarks" / "results"
    out = {
        "machine": args.machine,
        "base": str(args.base),
        "steps": args.steps,
        "curve": rows,
        "from_random_weights": scratch,
        "other_recipes": extra,
        "tuning": tuned,
    }
    (results / "finetune_curve.json").write_text(json.dumps(out, indent=2) + "\n")
    parts = [
        "# Few-label fine-tuning: hybrid held-out accuracy against labelled frames",
        "",
        f"Base model `{args.base}` (the `make demo` model: experiment=synthetic, never saw a hybrid "
        f"or real frame), fine-tuned on N evenly spaced frames of `{args.pullback}` with "
        f"{args.steps} optimiser steps per run (epochs = steps / batches), `last.ckpt`; "
        "`infer.py` on the 3 hybrid held-out pullbacks (138 frames of the held-out real block), "
        "`evaluate.py` against their truth. One pullback of one patient; hybrid calcium is "
        f"synthetic. Machine: {args.machine}. Details and reading: docs/finetune.md.",
        "",
        "## Recipe (experiment=finetune)",
        "",
        table(rows),
        "",
    ]
    if scratch:
        parts += ["## Control: random weights, lr 0.003, same steps", "", table(scratch), ""]
    for name, more in extra.items():
        parts += [f"## Recipe variant {name}", "", table(more), ""]
    (results / "finetune_curve.md").write_text("\n".join(parts))
    plot(rows, ROOT / "docs" / "images" / "finetune_curve.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["curve", "tune", "report"])
    ap.add_argument("--base", type=Path, required=True, help="checkpoint to fine-tune")
    ap.add_argument("--data", type=Path, required=True, help="hybrid dataset (train/, val/)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pullback", default="hyb-train-000-136-v0", help="the labelled pullback")
    ap.add_argument("--steps", type=int, default=120, help="optimiser steps per fine-tuning")
    ap.add_argument("--ns", type=int, nargs="+", default=[0, 10, 30, 100])
    ap.add_argument("--n", type=int, default=30, help="tune: labelled frames")
    ap.add_argument("--tune-val", type=Path, help="tune: validation dataset folder")
    ap.add_argument("--variant", default="default", help="tune: name of the variant")
    ap.add_argument("--override", nargs="*", default=[], help="extra train.py overrides")
    ap.add_argument(
        "--scratch", action="store_true", help="control: train from random weights (no init_from)"
    )
    ap.add_argument("--extra", nargs="*", default=[], help="report: NAME=FOLDER more curves")
    ap.add_argument("--tune-jsonl", type=Path, help="report: the tune runs' tune.jsonl")
    ap.add_argument("--machine", default="", help="report: where it ran")
    args = ap.parse_args(argv)
    args.base, args.data, args.out = args.base.resolve(), args.data.resolve(), args.out.resolve()
    {"curve": curve, "tune": tune, "report": report}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
