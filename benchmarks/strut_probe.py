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
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from octseg.core import atomic
from octseg.core.errors import InputError
from octseg.datasets.hybrid.cohort import make_hybrid, write_pullback
from octseg.datasets.hybrid.console import export_console
from octseg.datasets.hybrid.draw import Stent
from octseg.io import read_pullback
from octseg.io.labels import load_labels


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
    real_dir: str | Path, draws: dict[str, Path], out: str | Path, *, size: int, colour: str
) -> list[Path]:
    """``NAME-stent`` and ``NAME-none`` console exports under ``out`` for each draw."""
    variants = {}
    for name, params in draws.items():
        variants[f"{name}-stent"] = ([], _stent_of(params), {"probe": "stent"})
        variants[f"{name}-none"] = ([], None, {"probe": "none"})
    return export_variants(real_dir, variants, out, size=size, colour=colour)


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
        for path in build(a.real_dir, dict(a.draws), a.out, size=a.size, colour=a.colour):
            print(path)
        return 0
    found = count(a.auto_dir, a.first_frame)
    for pid, frames in found.items():
        print(f"{pid}: {len(frames)} frames with calcium {frames}")
    if a.out:
        atomic.write_json(a.out, found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
