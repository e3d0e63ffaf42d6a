"""The whole product on built-in data, from scratch, in a few minutes on 2 CPU cores.

1. generate a small synthetic cohort with exact ground truth (octseg.datasets.synth): training pullbacks
   and separate held-out pullbacks;
2. train a small U-Net briefly with the training job (:mod:`octseg.jobs`, the job of
   ``train.py`` / ``octseg train``, run in this process) - or reuse the checkpoint a previous run
   of this command left in ``OUT/model.ckpt``;
3. batch inference on the held-out pullbacks (labels, tables, overlays, HTML reports,
   cohort summary);
4. evaluate the automated measurements against the held-out truth (octseg.evaluate);
5. print where the HTML reports are.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# the held-out test pullbacks: a seed the training and validation cohorts never use
HELDOUT_SEED = 1000


def _say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _cohort(out: Path, n: int, seed: int, progress: bool) -> Path:
    from octseg.datasets.synth.cohort import ensure_cohort

    return ensure_cohort(out, n, seed, "small", progress=progress, log=_say)


@contextmanager
def _isolated() -> Iterator[None]:
    """What the training job changes in this process - torch's thread count, the global random
    states, the root logger - is put back afterwards, as if it had run in a process of its own."""
    import numpy as np
    import torch

    from octseg.jobs import kept_logging

    threads = torch.get_num_threads()
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002
    try:
        with kept_logging():
            yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(states[0])
        np.random.set_state(states[1])  # noqa: NPY002
        torch.set_rng_state(states[2])


def _train(out: Path, epochs: int, threads: int, extra: Sequence[str] = ()) -> Path:
    """Train with the ``experiment=synthetic`` recipe (its cohorts are generated into
    ``OUT/data/train`` and ``OUT/data/val``) for ``epochs`` epochs, or reuse ``OUT/model.ckpt``.
    ``extra``: Hydra overrides appended to the demo's own (they win over them)."""
    from octseg.jobs import run

    ckpt = out / "model.ckpt"
    if ckpt.is_file():
        _say(f"reusing the model trained by an earlier demo run: {ckpt} (delete it to retrain)")
        return ckpt
    run_dir = out / "train"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    overrides = [
        "experiment=synthetic",
        "task_name=demo",
        f"hydra.run.dir={run_dir}",
        f"data.root={out / 'data' / 'train'}",
        f"data.val_root={out / 'data' / 'val'}",
        f"trainer.max_epochs={epochs}",
        f"trainer.num_threads={threads}",
        *extra,
    ]
    _say(f"training a small U-Net for {epochs} epochs (octseg train experiment=synthetic)")
    try:
        with _isolated():
            run("train", overrides)
    except SystemExit as exc:  # Hydra reports a failed job and exits
        if exc.code:
            raise SystemExit(f"demo: training failed (exit {exc.code}); see {run_dir}") from None
    best = run_dir / "best.ckpt"
    if not best.is_file():
        best = run_dir / "last.ckpt"
    shutil.copyfile(best, ckpt)
    _say(f"TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}")
    return ckpt


_KEY_MEASURES = (
    ("frame", "lumen_area_mm2"),
    ("frame", "calcium_arc_deg"),
    ("frame", "calcium_max_thickness_mm"),
    ("frame", "stent_area_mm2"),
    ("strut", "distance_mm"),
    ("lesion", "max_arc_deg"),
)


def _verdict_table(path: Path) -> str:
    """A few key rows of the evaluation's verdict table, for the terminal."""
    from octseg.geometry.tables import read_csv

    if not path.is_file():
        return f"(no verdict table at {path})"
    rows = {(r["level"], r["measurement"]): r for r in read_csv(path)}
    lines = ["automated vs true measurements on the held-out pullbacks:"]
    lines.append(f"  {'measurement':<34}{'n':>5}{'bias':>10}{'95% LoA':>22}{'ICC':>7}")
    for key in _KEY_MEASURES:
        r = rows.get(key)
        if r is None:
            continue
        icc = _num(r.get("icc"), ".3f")
        loa = f"{_num(r.get('loa_lower'), '.3g')} .. {_num(r.get('loa_upper'), '.3g')}"
        name = f"{key[0]} {key[1]}"
        lines.append(
            f"  {name:<34}{int(r['n']):>5}{_num(r.get('bias'), '.3g'):>10}{loa:>22}{icc:>7}"
        )
    return "\n".join(lines)


def _num(v: Any, fmt: str) -> str:
    """A verdict-table cell: ``-`` where the statistic is empty (too few pairs)."""
    return "-" if v in (None, "") else format(float(v), fmt)


def run_demo(
    out_dir: str | Path = "demo_output",
    *,
    n_heldout: int = 2,
    epochs: int = 16,
    threads: int = 2,
    progress: bool = True,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Run everything; returns the paths of what it wrote (reports, manifest, evaluation).

    ``overrides``: extra Hydra overrides for the training job (``KEY=VALUE``, as on the
    ``octseg train`` command line), appended after the demo's own; ignored when an earlier run's
    model is reused."""
    from octseg.infer.pipeline import InferSettings, run_inference

    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    heldout = _cohort(out / "data" / "heldout", n_heldout, seed=HELDOUT_SEED, progress=progress)
    ckpt = _train(out, epochs, threads, overrides)

    _say(f"batch inference on the {n_heldout} held-out pullbacks")
    infer_out = out / "inference"
    res = run_inference(
        InferSettings(
            checkpoint=str(ckpt),
            input=str(heldout),
            output=str(infer_out),
            batch_size=8,
            progress=progress,
        )
    )
    result: dict[str, Any] = {
        "checkpoint": ckpt,
        "manifest": infer_out / "manifest.json",
        "cohort_summary": infer_out / "summary.csv",
        "reports": sorted(infer_out.glob("*/report.html")),
        "failed": res["n_failed"],
    }
    try:
        from octseg.evaluate.pipeline import evaluate
    except ImportError:
        _say("octseg.evaluate is not available: skipping the evaluation against the truth")
    else:
        _say("evaluating the automated measurements against the held-out truth")
        ev_out = out / "evaluation"
        ev = evaluate(infer_out, heldout, ev_out)
        result["evaluation"] = ev_out
        result["malapposed_struts"] = ev.metrics.get("struts", {}).get("malapposed_struts")
        result["where"] = ev.metrics["frames"].get("where", {})
        for name in ("report.html", "metrics.json", "summary.md"):
            if (ev_out / name).is_file():
                result[f"evaluation_{name}"] = ev_out / name
    _say(f"done in {time.perf_counter() - t0:.0f} s")
    for rep in result["reports"]:
        print(f"HTML report: {rep}")
    if "evaluation" in result:
        from octseg.report.evaluation import malapposed_struts_line
        from octseg.report.where import where_line

        print(_verdict_table(result["evaluation"] / "verdict.csv"))
        if result["malapposed_struts"]:  # the demo's own issue-18 target
            print(malapposed_struts_line(result["malapposed_struts"]))
        for column, w in result["where"].items():
            print(where_line(column, w))
        print(f"Evaluation against the truth: {result['evaluation'] / 'report.html'}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``make demo`` / ``python -m octseg.demo``."""
    ap = argparse.ArgumentParser(prog="python -m octseg.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo_output"), help="demo output folder")
    ap.add_argument("--retrain", action="store_true", help="train again even if a model exists")
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Hydra override for the training job, e.g. loss.weight=[1,1,1,5,1] (repeatable; "
        "appended after the demo's own, so trainer.max_epochs=24 wins over the default; only "
        "used when the demo trains, see --retrain)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        metavar="N",
        help="torch threads for training (default 2; 1 where the cores are shared)",
    )
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads {args.threads}: expected >= 1")
    for o in args.override:
        if "=" not in o:
            ap.error(f"--override {o!r}: expected KEY=VALUE")
    if args.retrain:
        (args.out / "model.ckpt").unlink(missing_ok=True)
    result = run_demo(args.out, threads=args.threads, overrides=args.override)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
