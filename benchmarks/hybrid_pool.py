"""The pooled held-out set of issue 18 (several lesion draws over the same held-out real frames),
scored through the product path: pooled and per draw.

``pool`` links the console exports of each draw (``cohort build ... --console``: ``inputs/PID``
and ``manual/PID``) into one folder under unique ids ``DRAW-vK`` (the ``-vK`` suffix of each
pullback id). ``score`` runs ``evaluate.py`` on the ``infer.py`` outputs of each named run against
the pool's truth, once on the whole pool and once per draw (``auto/`` and ``manual/`` of the
draw's pullbacks linked), and writes a JSON of rows and a Markdown table per view.

``strata`` splits a scored run's pooled ``evaluate.py`` tables by what the hybrid inserted in each
frame (the lesion kind, or several lesions; the faintest lesion's contrast): frames with truth
calcium, mean calcium Dice, missed frames, arc and thickness bias. It needs each pullback's
``params.json``, linked into ``POOL/params/`` by ``pool --cohort DRAW=BUILD`` (the ``cohort
build`` folder the console export came from). ``--visibility`` adds strata by the calcium's
contrast-to-noise ratio measured on each build's hybrid image.

    python benchmarks/hybrid_pool.py pool POOL d0=D/hybrid_console d1=D/test_s1_console ... \
        --cohort d0=D/hybrid --cohort d1=D/test_s1 ...
    python infer.py checkpoint=RUN/last.ckpt input=POOL/inputs output=AUTO report=false "overlays.frames=[]"
    python benchmarks/hybrid_pool.py score POOL --run recipe=AUTO --run ... --out R.json
    python benchmarks/hybrid_pool.py strata POOL --run recipe=R/recipe-pooled --out S.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hybrid_candidates import (  # noqa: E402
    ci,
    curve,
    fmt,
    loa,
    malapposed_share,
    one_empty,
    plot_curves,
    row_from_metrics,
)
from hybrid_strata import frames_table, strata  # noqa: E402
from hybrid_strata import markdown as strata_markdown  # noqa: E402
from hybrid_strata import plot as strata_plot  # noqa: E402


def _relink(target: Path, link: Path) -> None:
    """``link`` -> ``target`` (absolute), replacing a link already there."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    os.symlink(target.resolve(), link, target_is_directory=target.is_dir())


def pool(out: Path, draws: dict[str, Path]) -> list[str]:
    """Link every draw's ``inputs/PID`` and ``manual/PID`` as ``DRAW-vK``; the pooled ids.
    Every draw folder is checked before anything is linked."""
    for name, console in draws.items():
        gone = [p for p in ("inputs", "manual") if not (console / p).is_dir()]
        if gone:
            raise SystemExit(
                f"draw {name}: {console} has no {' or '.join(gone)}/ (a console export?)"
            )
    ids = []
    for name, console in draws.items():
        for src in sorted((console / "inputs").iterdir()):
            pid = f"{name}-{src.name.rsplit('-', 1)[-1]}"
            for part in ("inputs", "manual"):
                _relink(console / part / src.name, out / part / pid)
            ids.append(pid)
    if len(set(ids)) != len(ids):
        raise SystemExit(f"pooled ids are not unique: {ids}")
    return ids


def link_params(out: Path, draws: dict[str, Path], cohorts: dict[str, Path]) -> int:
    """Link each pooled pullback's ``params.json`` from its draw's ``cohort build`` folder as
    ``out/params/DRAW-vK.json``; the number linked. A draw without a build is skipped."""
    n = 0
    for name, build in cohorts.items():
        if name not in draws:
            raise SystemExit(f"--cohort {name}: no draw of that name")
        for src in sorted((draws[name] / "inputs").iterdir()):
            found = sorted(build.glob(f"*/{src.name}/params.json"))
            if len(found) != 1:
                raise SystemExit(f"draw {name}: {len(found)} params.json for {src.name} in {build}")
            _relink(found[0], out / "params" / f"{name}-{src.name.rsplit('-', 1)[-1]}.json")
            n += 1
    return n


def evaluate(auto: Path, manual: Path, out: Path, *overrides: str) -> dict:
    """``evaluate.py`` (plots off, more Hydra ``overrides`` if given); its ``metrics.json``."""
    cmd = [sys.executable, "evaluate.py", f"auto={auto}", f"manual={manual}", f"out={out}"]
    cmd += ["settings.plots=false", "settings.progress=false", *overrides]
    with (out.parent / f"{out.name}.log").open("w") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    return json.loads((out / "metrics.json").read_text())


def linked(ids: list[str], folders: dict[str, Path], tmp: Path) -> dict[str, Path]:
    """``auto`` and ``manual`` folders holding links to the pullbacks ``ids`` only."""
    out = {}
    for part, src in folders.items():
        (tmp / part).mkdir(parents=True)
        for pid in ids:
            os.symlink((src / pid).resolve(), tmp / part / pid, target_is_directory=True)
        out[part] = tmp / part
    return out


def score_run(name: str, auto: Path, pool_dir: Path, work: Path) -> dict[str, dict]:
    """Rows of one run: ``{"pooled": row, DRAW: row, ...}``."""
    manual = pool_dir / "manual"
    rows = {"pooled": row_from_metrics(evaluate(auto, manual, work / f"{name}-pooled"))}
    draws = sorted({p.name.rsplit("-", 1)[0] for p in manual.iterdir()})
    for draw in draws:
        ids = sorted(p.name for p in manual.iterdir() if p.name.rsplit("-", 1)[0] == draw)
        with tempfile.TemporaryDirectory() as tmp:
            f = linked(ids, {"auto": auto, "manual": manual}, Path(tmp))
            rows[draw] = row_from_metrics(evaluate(f["auto"], f["manual"], work / f"{name}-{draw}"))
    return rows


HEADER = (
    "| run | Ca Dice [95% CI over pullbacks] (pooled) | one-side-empty frames (spurious / missed) | arc bias (LoA) °, ICC | thick ICC [95% CI over pullbacks]; slope on truth "
    "| score κw (n) | lesions found / false / missed | strut F1 | malapposition bias (LoA) mm "
    "| mal. sens (k/n [95% CI of k/n over pullbacks]) / spec |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def thickness_cell(th: dict) -> str:
    """ICC [CI over pullbacks]; the proportional bias (slope of the differences on the truth:
    below 0, thin calcium reads thick and thick calcium thin) where the results have it."""
    cell = f"{fmt(th['icc'])}{ci(th.get('icc_ci_pullbacks'))}"
    slope = th.get("proportional_slope")
    return cell if slope is None else f"{cell}; {fmt(slope)}"


def row_line(name: str, r: dict) -> str:
    arc = r["calcium_arc"]
    k, n = r.get("malapposed_found"), r.get("malapposed_n_manual")
    return (
        f"| {name} | {fmt(r['calcium_dice'])}{ci(r.get('calcium_dice_ci95'))} "
        f"({fmt(r.get('calcium_dice_pooled'))}) "
        f"| {one_empty(r)} | {loa(arc, 1)}, {fmt(arc['icc'], 3)} "
        f"| {thickness_cell(r['calcium_thickness'])} "
        f"| {fmt(r['calcium_score_kappa_quadratic'])} ({fmt(r['calcium_score_n'])}) "
        f"| {fmt(r.get('lesions_tp'))} / {fmt(r.get('lesions_fp'))} / {fmt(r.get('lesions_fn'))} "
        f"| {fmt(r['strut_f1'], 3)} | {loa(r['malapposition_distance'], 3)} "
        f"| {fmt(malapposed_share(r))} ({fmt(k)}/{fmt(n)}"
        f"{ci(r.get('malapposed_found_ci_pullbacks'))}) "
        f"/ {fmt(r['malapposed_specificity'])} |"
    )


def markdown(results: dict[str, dict[str, dict]]) -> str:
    views = list(next(iter(results.values())))
    parts = []
    for view in views:
        lines = [f"## {view}", "", HEADER]
        lines += [row_line(name, rows[view]) for name, rows in results.items() if view in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_strata(
    pool_dir: Path, runs: dict[str, str], out: Path, visibility: bool = False
) -> dict[str, dict]:
    """``hybrid_strata`` tables of each run's pooled evaluate.py output to ``out`` (+ JSON);
    ``visibility``: also by the calcium's contrast-to-noise ratio on the hybrid image."""
    results = {n: strata(frames_table(pool_dir, Path(d), visibility)) for n, d in runs.items()}
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    text = strata_markdown(results)
    out.write_text(text)
    print(text)
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pool", help="link the draws' console exports into one pool")
    a.add_argument("out", type=Path)
    a.add_argument("draws", nargs="+", help="NAME=CONSOLE_FOLDER")
    a.add_argument(
        "--cohort", action="append", default=[], help="NAME=BUILD: link its params.json (strata)"
    )
    s = sub.add_parser("score", help="evaluate.py on each run's outputs, pooled and per draw")
    s.add_argument("pool", type=Path)
    s.add_argument("--run", action="append", required=True, help="NAME=INFER_OUTPUT")
    s.add_argument("--out", type=Path, required=True, help="results JSON (Markdown beside it)")
    s.add_argument(
        "--work", type=Path, default=None, help="evaluate.py outputs (default: beside --out)"
    )
    s.add_argument(
        "--train", action="append", default=[], help="NAME=RUN_DIR: its learning curve to --curves"
    )
    s.add_argument("--curves", type=Path, default=None, help="learning-curve figure (PNG)")
    t = sub.add_parser("strata", help="a scored run's pooled tables by lesion kind and contrast")
    t.add_argument("pool", type=Path)
    t.add_argument("--run", action="append", required=True, help="NAME=POOLED_EVALUATE_OUTPUT")
    t.add_argument("--out", type=Path, required=True, help="Markdown (JSON beside it)")
    t.add_argument("--plot", type=Path, default=None, help="also a bar figure (PNG)")
    t.add_argument("--title", default="", help="the figure's title")
    t.add_argument(
        "--visibility",
        action="store_true",
        help="also by the calcium's contrast-to-noise ratio on the hybrid image (reads the builds)",
    )
    args = p.parse_args(argv)
    if args.cmd == "pool":
        draws = {k: Path(v) for k, v in (d.split("=", 1) for d in args.draws)}
        print(f"{len(pool(args.out, draws))} pullbacks pooled")
        cohorts = {k: Path(v) for k, v in (c.split("=", 1) for c in args.cohort)}
        if cohorts:
            print(f"{link_params(args.out, draws, cohorts)} params.json linked")
        return
    if args.cmd == "strata":
        runs = dict(r.split("=", 1) for r in args.run)
        results = write_strata(args.pool, runs, args.out, args.visibility)
        if args.plot:
            strata_plot(results, args.plot, args.title)
        return
    work = args.work or args.out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name, auto in (r.split("=", 1) for r in args.run):
        results[name] = score_run(name, Path(auto), args.pool, work)
        args.out.write_text(json.dumps(results, indent=1))
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    if args.curves and args.train:
        runs = (t.split("=", 1) for t in args.train)
        plot_curves([{"name": n, "curve": curve(Path(d))} for n, d in runs], args.curves)


if __name__ == "__main__":
    main()
