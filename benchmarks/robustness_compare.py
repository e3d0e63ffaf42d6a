"""Compare robustness-suite results of several runs (the CSVs ``benchmarks/robustness.py``
writes) at one severity: lumen area error per corruption, one marker per run, runs grouped by
recipe (e.g. several seeds of each). Writes a plot and prints a markdown table.

    python benchmarks/robustness_compare.py --severity 2 --out docs/images/robustness_seeds.png \
        "4-level:benchmarks/results/robustness_rlh42_isoblood.csv" \
        "5-level:benchmarks/results/robustness_rlh42_deep.csv" ...

Each argument is ``RECIPE:CSV``; runs with the same RECIPE share a colour and a column.
A second table ranks the runs (most corruptions in target, then the smallest mean |area
error|): run on the suite of a *validation* block, it chooses among seeds without looking at the
test block (docs/real_data.md, "Choosing seeds on the validation block").
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

TARGET_PCT = 5.0  # issue 13: |area error| <= 5% at medium severity


def read_runs(specs: list[str], severity: int) -> dict[str, list[dict[str, dict]]]:
    """{recipe: [run, ...]}, a run being {corruption: row} for the clean block and ``severity``."""
    runs: dict[str, list[dict[str, dict]]] = {}
    for spec in specs:
        recipe, _, path = spec.partition(":")
        if not path:
            raise SystemExit(f"expected RECIPE:CSV, got {spec!r}")
        with open(path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["severity"]) in (0, severity)]
        if not rows:
            raise SystemExit(f"{path}: no rows at severity {severity}")
        runs.setdefault(recipe, []).append({r["corruption"]: r for r in rows})
    return runs


def _in_target(row: dict) -> bool:
    return float(row["dice_mean"]) >= 0.95 and abs(float(row["area_bias_pct"])) <= TARGET_PCT


def ranking(runs: dict[str, list[dict[str, dict]]]) -> str:
    """Markdown: every run (``RECIPE #k``, in argument order within its recipe) with the number
    of rows (clean block and each corruption) in target, the mean and worst |area error| and
    the lowest Dice mean, best first (largest share in target, then smallest mean |area error|)."""
    rows = []
    for recipe, recs in runs.items():
        for k, rec in enumerate(recs, 1):
            errs = [abs(float(r["area_bias_pct"])) for r in rec.values()]
            rows.append(
                {
                    "name": f"{recipe} #{k}",
                    "ok": sum(map(_in_target, rec.values())),
                    "n": len(rec),
                    "mean": sum(errs) / len(errs),
                    "worst": max(errs),
                    "dice": min(float(r["dice_mean"]) for r in rec.values()),
                }
            )
    rows.sort(key=lambda r: (-r["ok"] / r["n"], r["mean"], r["name"]))
    lines = [
        "| run | in target | mean abs area error % | worst % | min Dice mean |",
        "|---" * 5 + "|",
    ]
    lines += [
        f"| {r['name']} | {r['ok']}/{r['n']} | {r['mean']:.2f} | {r['worst']:.1f} | {r['dice']:.3f} |"
        for r in rows
    ]
    return "\n".join(lines)


def table(runs: dict[str, list[dict[str, dict]]], names: list[str]) -> str:
    """Markdown: per recipe and corruption the area error of every run, and how many runs met
    the target (Dice >= 0.95 and |area error| <= 5%)."""
    lines = ["| corruption | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for n in names:
        cells = []
        for recs in runs.values():
            vals = [r[n] for r in recs if n in r]
            ok = sum(_in_target(v) for v in vals)
            errs = ", ".join(f"{float(v['area_bias_pct']):+.1f}" for v in vals)
            cells.append(f"{errs} ({ok}/{len(vals)})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs: dict[str, list[dict[str, dict]]], names: list[str], out: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(runs)
    colours = plt.get_cmap("tab10").colors
    for k, (recipe, recs) in enumerate(runs.items()):
        x0 = [i - 0.4 + (k + 0.5) * width for i in range(len(names))]
        for j, rec in enumerate(recs):
            ys = [float(rec[n]["area_bias_pct"]) if n in rec else float("nan") for n in names]
            ax.scatter(x0, ys, color=colours[k % 10], s=22, label=recipe if j == 0 else None)
    ax.axhspan(-TARGET_PCT, TARGET_PCT, color="g", alpha=0.12, label="target ±5%")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("lumen area error, mean over frames (%)")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="RECIPE:CSV")
    p.add_argument("--severity", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="plot (.png)")
    p.add_argument("--title", default="")
    a = p.parse_args(argv)
    runs = read_runs(a.runs, a.severity)
    names = sorted(
        {n for recs in runs.values() for r in recs for n in r}, key=lambda n: (n != "none", n)
    )
    plot(runs, names, a.out, a.title or f"robustness suite, severity {a.severity}")
    print(table(runs, names))
    print()
    print(ranking(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
