"""Robustness suite (issue 13): a held-out real block under each corruption at 3 severities,
through infer.py and evaluate.py; writes a CSV, a markdown table and a plot.

    python benchmarks/robustness.py CKPT --src ../shared/data/ivoct-danilov/pullback-001 \
        --frames 140:186 --work /tmp/rob --out benchmarks/results/robustness_after \
        [--code-root DIR] [--step 2] [--corruptions gain gamma ...]

``--code-root`` runs another checkout's infer.py/evaluate.py (e.g. the code before a change) on
the same inputs. Inputs are written once into ``WORK/suite`` and reused (delete to rebuild).
See octseg/datasets/robustness.py and docs/real_data.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from octseg.datasets.robustness import CORRUPTIONS, build_suite, summarize  # noqa: E402
from octseg.model.shipped import checkpoint_files  # noqa: E402

COLUMNS = [
    "corruption", "severity", "n_frames", "dice_mean", "dice_min", "area_bias_pct",
    "area_loa_low_pct", "area_loa_high_pct", "area_mae_pct", "mean_area_mm2",
]  # fmt: skip


def run_product(code: Path, ckpts: list[Path], suite: Path, work: Path, extra=()) -> Path:
    """infer.py on every corrupted pullback, then evaluate.py against the expert labels; several
    checkpoints: their ensemble (octseg.model.ensemble)."""
    from octseg.infer.cli import quote

    names = [quote(str(c)) for c in ckpts]
    ckpt = names[0] if len(names) == 1 else "[" + ",".join(names) + "]"
    infer_out, eval_out = work / "infer", work / "evaluation"
    py = sys.executable
    # one thread per process: on a shared CPU host more threads mostly wait on each other
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run(
        [py, "infer.py", f"checkpoint={ckpt}", f"input={suite / 'inputs'}",
         f"output={infer_out}", "overlays.frames=[]", "report=false", "progress=false",
         "resume=false", *extra],
        cwd=code, check=True, env=env,
    )  # fmt: skip
    subprocess.run(
        [py, "evaluate.py", f"auto={infer_out}", f"manual={suite / 'manual'}", f"out={eval_out}",
         "settings.classes=[1]", "settings.plots=false", "settings.segmentation=false", "settings.n_bootstrap=200",
         "settings.progress=false"],
        cwd=code, check=True, env=env,
    )  # fmt: skip
    return eval_out


def write_table(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        )
    lines = [
        "| corruption | severity | Dice mean | Dice min | area bias % | LoA % | mean abs % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['corruption']} | {r['severity']} | {r['dice_mean']:.3f} | {r['dice_min']:.3f} "
            f"| {r['area_bias_pct']:+.1f} | {r['area_loa_low_pct']:+.1f}..{r['area_loa_high_pct']:+.1f} "
            f"| {r['area_mae_pct']:.1f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["corruption"] for r in rows if r["corruption"] != "none"})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, label in (
        (axes[0], "dice_mean", "lumen Dice (mean)"),
        (axes[1], "area_bias_pct", "lumen area error (mean, %)"),
    ):
        for s, col in zip((1, 2, 3), ("#9ecae1", "#4292c6", "#08306b")):
            vals = [
                next(
                    (r[key] for r in rows if r["corruption"] == n and r["severity"] == s),
                    float("nan"),
                )
                for n in names
            ]
            ax.bar(
                [i + (s - 2) * 0.27 for i in range(len(names))],
                vals,
                0.27,
                color=col,
                label=f"severity {s}",
            )
        clean = [r[key] for r in rows if r["corruption"] == "none"]
        if clean:
            ax.axhline(clean[0], color="k", lw=0.8, ls="--", label="uncorrupted")
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_ylabel(label)
    axes[0].set_ylim(0.5, 1.0)
    axes[0].axhline(0.95, color="r", lw=0.8)
    axes[1].axhspan(-5, 5, color="g", alpha=0.1)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "checkpoint",
        type=Path,
        nargs="+",
        help="one, or several: their ensemble (a shipped model's or ensemble's name: its files)",
    )
    p.add_argument(
        "--src", type=Path, default=ROOT.parent / "shared/data/ivoct-danilov/pullback-001"
    )
    p.add_argument("--frames", default="140:186", help="held-out block START:STOP")
    p.add_argument("--step", type=int, default=1, help="use every STEP-th frame of the block")
    p.add_argument("--corruptions", nargs="*", default=list(CORRUPTIONS))
    p.add_argument("--severities", nargs="*", type=int, default=[1, 2, 3])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="table/plot path without suffix")
    p.add_argument("--code-root", type=Path, default=ROOT)
    p.add_argument("--title", default="")
    p.add_argument("--infer-arg", action="append", default=[], help="extra infer.py override")
    a = p.parse_args(argv)
    start, stop = (int(v) for v in a.frames.split(":"))
    suite = a.work / "suite"
    t0 = time.time()
    if not (suite / "manual").is_dir():
        build_suite(a.src, start, stop, suite, a.corruptions, a.severities, a.step)
    t1 = time.time()
    ev = run_product(
        a.code_root.resolve(), checkpoint_files(a.checkpoint), suite, a.work, a.infer_arg
    )
    rows = summarize(ev, a.work / "infer", suite / "manual")
    write_table(rows, a.out)
    plot(rows, a.out, a.title or f"{' + '.join(map(str, a.checkpoint))} on frames {a.frames}")
    print(a.out.with_suffix(".md").read_text())
    print(f"suite {t1 - t0:.0f} s, product {time.time() - t1:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
