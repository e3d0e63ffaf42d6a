"""Do inserted stent struts alone make a model call real wall calcium?

The real held-out frames carry no calcium, yet models trained on hybrids mark some on a few of
them once a hybrid draw has put a stent there (docs/calcium_candidates.md, twenty-eighth
session). This probe separates the stent from every other insert: from a real polar block (a
``octseg.datasets.danilov.build`` folder: dense lumen-only labels) and the ``params.json`` of
hybrid draws it writes two console exports per draw, ``NAME-stent`` (the draw's stent alone)
and ``NAME-none`` (nothing inserted: the control), both with truth. ``infer.py`` runs on them as
on any console export; ``count`` then lists, from its ``frames.csv``, the frames where the model
measured calcium (the truth of both has none).

    python benchmarks/strut_probe.py build REAL_DIR NAME=HYBRID/params.json ... --out OUT \
        [--size 768] [--colour sepia]
    python infer.py checkpoint=CKPT input=OUT/inputs output=AUTO "overlays.frames=[]" report=false
    python benchmarks/strut_probe.py count AUTO [--first-frame 140] [--out R.json]
    python benchmarks/strut_probe.py figure OUT NAME FIG.png --auto MODEL=AUTO [--auto ...] \
        --frames 30 31 [--first-frame 140]

``figure`` shows, for some frames of one draw and per model, the control and the stent-only
export side by side with the calcium ``infer.py`` found outlined in red.

``apposition`` asks whether missed malapposed struts are the struts' doing or the lumen's. It
runs ``evaluate.py`` on the stent-only pullbacks three ways: the model's outputs; the model's
lumen from the control (no strut in the image) with the true strut pixels stamped in
(:func:`swap`); and the truth label maps measured by ``octseg.geometry``. It prints malapposed
struts found and the distance bias per view. ``build --one-control`` writes a single control
``none`` (the controls of all draws are the same frames):

    python benchmarks/strut_probe.py build REAL_DIR NAME=PARAMS.json ... --out OUT --one-control
    python infer.py checkpoint=CKPT input=OUT/inputs output=AUTO "overlays.frames=[]" report=false
    python benchmarks/strut_probe.py apposition OUT AUTO --work W [--out R.md]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octseg.core import atomic
from octseg.core.classes import LUMEN, STRUT
from octseg.core.errors import InputError
from octseg.datasets.hybrid.cohort import make_hybrid, write_pullback
from octseg.datasets.hybrid.console import export_console
from octseg.datasets.hybrid.draw import Stent
from octseg.io import read_pullback
from octseg.io.labels import load_labels, save_labels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_candidates import fmt, loa, row_from_metrics  # noqa: E402
from hybrid_pool import evaluate, linked  # noqa: E402
from strut_distance_bins import bands  # noqa: E402


def _stent_of(params_json: Path) -> Stent:
    stent = json.loads(Path(params_json).read_text()).get("stent")
    if not stent:
        raise InputError(params_json, "this hybrid draw has no stent to probe with")
    return Stent(**stent)


def export_variants(
    real_dir: str | Path,
    variants: dict[str, tuple[list, Stent | None, dict]],
    out: str | Path,
    **console,
) -> list[Path]:
    """One console export under ``out`` per ``NAME: (lesions, stent, meta)``, each inserted alone
    into the real polar block ``real_dir`` (same random stream), with truth and ``meta``."""
    real_dir = Path(real_dir)
    pb = read_pullback(real_dir / "image.npz")
    labels = load_labels(real_dir / "labels.npz").labels
    ps, fs, images = pb.pixel_spacing_mm, pb.frame_spacing_mm, pb.read()
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for pid, (lesions, stent, meta) in variants.items():
            img, lab, rows, struts = make_hybrid(
                images, labels, ps, lesions, stent, np.random.default_rng(0), frame_spacing_mm=fs
            )
            hyb = Path(tmp) / pid
            write_pullback(hyb, img, lab, ps, fs, rows, struts, meta)
            made.append(export_console(hyb, out, pid, **console))
    return made


def build(
    real_dir: str | Path,
    draws: dict[str, Path],
    out: str | Path,
    *,
    size: int,
    colour: str,
    one_control: bool = False,
) -> list[Path]:
    """``NAME-stent`` and ``NAME-none`` console exports under ``out`` for each draw; with
    ``one_control`` a single control ``none`` instead (the controls are all the same frames)."""
    variants = {}
    for name, params in draws.items():
        variants[f"{name}-stent"] = ([], _stent_of(params), {"probe": "stent"})
        if not one_control:
            variants[f"{name}-none"] = ([], None, {"probe": "none"})
    if one_control:
        variants["none"] = ([], None, {"probe": "none"})
    return export_variants(real_dir, variants, out, size=size, colour=colour)


def _control_of(auto_dir: Path, name: str) -> Path:
    """The control's ``infer.py`` folder for draw ``name``: ``NAME-none``, else ``none``."""
    for pid in (f"{name}-none", "none"):
        if (auto_dir / pid / "labels.npz").exists():
            return auto_dir / pid
    raise InputError(auto_dir, f"no {name}-none/ or none/ labels.npz: run infer.py on the probe")


def _check_same_grid(control: Any, truth: Any, auto_dir: Path, name: str) -> None:
    """The control's and ``name``'s label maps must cover the same frames on the same pixels."""
    same = (
        control.labels.shape == truth.labels.shape
        and np.array_equal(control.frames, truth.frames)
        and math.isclose(control.pixel_spacing_mm, truth.pixel_spacing_mm, rel_tol=1e-6)
    )
    if not same:
        raise InputError(
            auto_dir,
            f"control {control.labels.shape} and {name} {truth.labels.shape} label maps differ "
            "in shape, frames or pixel spacing: not the same probe",
        )


def swap(probe_dir: str | Path, auto_dir: str | Path, out: str | Path) -> list[str]:
    """For every ``NAME-stent`` of ``probe_dir/manual``: ``out/NAME-stent/labels.npz``, the
    label map ``infer.py`` wrote for the control (nothing inserted, :func:`_control_of`) with the
    export's *true* strut pixels stamped in (strut pixels the model found in the control become
    lumen). ``evaluate.py`` measures it as any automated result: the malapposition of the true
    struts against the model's lumen when no strut was there, so that comparing it with the
    stent-only run separates what the struts do to the lumen from where the model and the
    expert's lumen differ."""
    probe_dir, auto_dir, out = Path(probe_dir), Path(auto_dir), Path(out)
    made = []
    for truth_dir in sorted((probe_dir / "manual").glob("*-stent")):
        name = truth_dir.name.removesuffix("-stent")
        truth = load_labels(truth_dir / "labels.npz")
        control = load_labels(_control_of(auto_dir, name) / "labels.npz")
        _check_same_grid(control, truth, auto_dir, truth_dir.name)
        lab = control.labels.copy()
        lab[lab == STRUT] = LUMEN
        lab[truth.labels == STRUT] = STRUT
        (out / truth_dir.name).mkdir(parents=True, exist_ok=True)
        save_labels(out / truth_dir.name / "labels.npz", replace(control, labels=lab))
        made.append(truth_dir.name)
    if not made:
        raise InputError(probe_dir, "no manual/*-stent pullbacks: not a strut_probe build")
    return made


VIEWS = {
    "stent": "the model, struts in the image",
    "control": "the model's lumen with nothing inserted, true struts",
    "truth": "the truth label maps measured by octseg.geometry",
}


def apposition(probe_dir: str | Path, auto_dir: str | Path, work: str | Path) -> dict[str, dict]:
    """``evaluate.py`` on the ``*-stent`` pullbacks three ways (:data:`VIEWS`): the probe's
    ``infer.py`` run ``auto_dir``, its :func:`swap` (written to ``work/control-lumen``), and the
    truth label maps themselves (``evaluate.py`` with ``settings.auto_source=labels``, so they are
    measured, not read from the truth tables). Per view: the table's strut numbers and the bias of the distance at truly
    malapposed struts."""
    probe_dir, work = Path(probe_dir), Path(work)
    swap_dir = work / "control-lumen"
    swap(probe_dir, auto_dir, swap_dir)
    manual = probe_dir / "manual"
    ids = sorted(p.name for p in manual.glob("*-stent"))
    views = (
        ("stent", Path(auto_dir), ()),
        ("control", swap_dir, ()),
        ("truth", manual, ("settings.auto_source=labels",)),  # measured, not the truth tables
    )
    rows = {}
    for view, auto, overrides in views:
        with tempfile.TemporaryDirectory() as tmp:
            f = linked(ids, {"auto": auto, "manual": manual}, Path(tmp))
            metrics = evaluate(f["auto"], f["manual"], work / view, *overrides)
            rows[view] = row_from_metrics(metrics)
        rows[view]["malapposed_bias_mm"] = _malapposed_bias(work / view / "struts_matched.csv")
    return rows


def _malapposed_bias(matched_csv: Path) -> float:
    """Mean auto - manual distance over the matched, truly malapposed struts (NaN if none);
    strut-only rows (blank manual side) are not malapposed ones."""
    pairs = pd.read_csv(matched_csv)
    mal = pairs[pairs["manual_malapposed"].fillna(0).astype(bool)]
    out = bands(mal, (-math.inf, math.inf))["bias_mm"]
    return float(out.iloc[0]) if len(out) else math.nan


def apposition_markdown(rows: dict[str, dict]) -> str:
    """:func:`apposition`'s rows as a Markdown table, one row per view."""
    out = [
        "| view | strut F1 | malapposed found (k/n) | strut distance bias (LoA), all matched "
        "struts, mm | bias at malapposed struts mm |",
        "|---|---|---|---|---|",
    ]
    for view, r in rows.items():
        k, n = r.get("malapposed_found"), r.get("malapposed_n_manual")
        out.append(
            f"| {VIEWS[view]} | {fmt(r['strut_f1'], 3)} | {fmt(k)}/{fmt(n)} "
            f"| {loa(r['malapposition_distance'], 3)} | {r['malapposed_bias_mm']:+.3f} |"
        )
    return "\n".join(out) + "\n"


def count(auto_dir: str | Path, first_frame: int = 0) -> dict[str, list[int]]:
    """Per pullback of an ``infer.py`` output: the frames (+ ``first_frame``) with calcium."""
    found = {}
    for csv in sorted(Path(auto_dir).glob("*/frames.csv")):
        df = pd.read_csv(csv)
        hit = df["calcium_area_mm2"].fillna(0) > 0
        found[csv.parent.name] = [int(f) + first_frame for f in df.loc[hit, "frame"]]
    if not found:
        raise InputError(auto_dir, "no */frames.csv: not an infer.py output folder")
    return found


def figure(
    probe_dir: str | Path,
    autos: dict[str, Path],
    name: str,
    frames: list[int],
    path: str | Path,
    first_frame: int = 0,
) -> None:
    """Rows of frames; per model of ``autos`` (label: its ``infer.py`` output) two columns,
    ``NAME-none`` | ``NAME-stent``, with the calcium it found outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [(model, auto, tag) for model, auto in autos.items() for tag in ("none", "stent")]
    fig, axes = plt.subplots(
        len(frames), len(cols), figsize=(3 * len(cols), 3 * len(frames)), squeeze=False
    )
    for row, f in zip(axes, frames, strict=True):
        for ax, (model, auto, tag) in zip(row, cols, strict=True):
            _panel(
                ax, Path(probe_dir) / "inputs" / f"{name}-{tag}", Path(auto) / f"{name}-{tag}", f
            )
            what = "nothing inserted" if tag == "none" else "its stent alone"
            ax.set_title(f"{model}: {name} frame {f + first_frame},\n{what}", fontsize=8)
    fig.suptitle("calcium infer.py found (red); the truth has none", fontsize=9)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _panel(ax, inputs: Path, auto: Path, frame: int) -> None:
    from PIL import Image

    from octseg.core.classes import CALCIUM

    lab = load_labels(auto / "labels.npz")
    ca = lab.labels[int(np.nonzero(lab.frames == frame)[0][0])] == CALCIUM
    png = np.asarray(Image.open(inputs / f"{frame:04d}.png"))
    ax.imshow(png, cmap="gray")  # grey exports as grey (RGB ones as they are)
    if ca.any():
        ax.contour(ca, [0.5], colors="r", linewidths=0.8)
    ax.axis("off")


def _draw(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="stent-only and nothing-inserted console exports")
    b.add_argument("real_dir")
    b.add_argument("draws", nargs="+", type=_draw, metavar="NAME=PARAMS.json")
    b.add_argument("--out", required=True)
    b.add_argument("--size", type=int, default=768)
    b.add_argument("--colour", default="sepia", choices=("sepia", "grey"))
    b.add_argument("--one-control", action="store_true", help="one control 'none' for all draws")
    m = sub.add_parser("apposition", help="malapposition: struts' effect vs the lumen's own")
    m.add_argument("probe_dir")
    m.add_argument("auto_dir", help="infer.py on the probe's inputs")
    m.add_argument("--work", required=True, help="evaluate.py outputs go here")
    m.add_argument("--out", help="write the table (Markdown) and rows (JSON beside it) here")
    c = sub.add_parser("count", help="frames with calcium in an infer.py output")
    c.add_argument("auto_dir")
    c.add_argument("--first-frame", type=int, default=0, help="added to every frame index")
    c.add_argument("--out", help="write the frames as JSON here")
    f = sub.add_parser("figure", help="control and stent-only frames with the calcium found")
    f.add_argument("probe_dir")
    f.add_argument("name")
    f.add_argument("png")
    f.add_argument("--auto", type=_draw, action="append", required=True, metavar="MODEL=AUTO")
    f.add_argument("--frames", type=int, nargs="+", required=True)
    f.add_argument("--first-frame", type=int, default=0, help="added to the frame in titles")
    a = p.parse_args(argv)
    if a.cmd == "figure":
        figure(a.probe_dir, dict(a.auto), a.name, a.frames, a.png, a.first_frame)
        return 0
    if a.cmd == "build":
        made = build(
            a.real_dir,
            dict(a.draws),
            a.out,
            size=a.size,
            colour=a.colour,
            one_control=a.one_control,
        )
        print(*made, sep="\n")
        return 0
    if a.cmd == "apposition":
        rows = apposition(a.probe_dir, a.auto_dir, a.work)
        table = apposition_markdown(rows)
        print(table)
        if a.out:
            atomic.write_text(a.out, table)
            atomic.write_json(Path(a.out).with_suffix(".json"), rows)
        return 0
    found = count(a.auto_dir, a.first_frame)
    for pid, frames in found.items():
        print(f"{pid}: {len(frames)} frames with calcium {frames}")
    if a.out:
        atomic.write_json(a.out, found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
