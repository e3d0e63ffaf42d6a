"""Two looks of the same hybrid draws: is the truth the same, and is the back border in the image?

``cohort build ... --calcium-look flat`` and ``--calcium-look fade`` of one seed draw the same
lesions, struts and distractors; only the calcium's grey differs (RULE46,
``benchmarks/results/calcium_look_s63.md``). For each draw given in both looks this script:

- checks that every val pullback's ``labels.npz``, ``truth/frames.csv`` and ``truth/struts.csv``
  are identical (and fails, naming the file, where they are not);
- measures, on every frame with truth calcium, ``back_border_probe.border_step`` in each look:
  the grey behind the truth's back border minus the grey inside it, over the A-lines where the
  calcium is thickest (<= 0: the back border is not in the image);
- writes OUT.csv (one row per frame), OUT.md (the share of frames with no visible back border,
  the median step, by truth thickness) and OUT.png (the grey along the thickest A-lines of the
  frames whose flat look hides the border most, in both looks).

    python benchmarks/calcium_look.py --pair f148=FLAT/test_s148:FADE/test_s148 ... --out OUT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from back_border_probe import (  # noqa: E402
    THICK_BANDS,
    _polar,
    border_step,
    finish_panel,
    plot_thickest,
    save_profiles,
    write_outputs,
)

from octseg.core.errors import InputError  # noqa: E402

LOOKS = ("flat", "fade")
SAME_FILES = ("labels.npz", "truth/frames.csv", "truth/struts.csv")


def _same_truth(flat: Path, fade: Path, same_labels: bool) -> None:
    """Raise InputError naming the first file of ``SAME_FILES`` that differs (the label maps,
    already read, compared by the caller: ``same_labels``)."""
    for name in SAME_FILES:
        if name.endswith(".npz"):
            same = same_labels
        else:
            same = (flat / name).read_text() == (fade / name).read_text()
        if not same:
            raise InputError(fade / name, f"differs from {flat / name}: not the same draw")


def compare_pullback(draw: str, pair: tuple[Path, Path], pullback: str) -> list[dict]:
    """One row per truth-calcium frame of one val pullback (``DRAW-vK``) in both looks."""
    (flat, labels, _), (fade, fade_labels, _) = (_polar({draw: b}, pullback) for b in pair)
    folder = next((pair[0] / "val").glob(f"*-{pullback.rsplit('-', 1)[1]}"))
    _same_truth(folder, pair[1] / "val" / folder.name, np.array_equal(labels, fade_labels))
    truth = pd.read_csv(folder / "truth" / "frames.csv").set_index("frame")
    images = {"flat": flat, "fade": fade}
    rows = []
    for f in range(labels.shape[0]):
        steps = {k: border_step(images[k][f], labels[f]) for k in LOOKS}
        if steps["flat"] is None:
            continue
        row = {"pullback_id": pullback, "frame": f}
        row["truth"] = float(truth.loc[f, "calcium_max_thickness_mm"])
        row.update({f"{k}_step": v[1] - v[0] for k, v in steps.items()})
        rows.append(row)
    return rows


def compare(pairs: dict[str, tuple[Path, Path]]) -> pd.DataFrame:
    rows = []
    for draw, (flat, fade) in pairs.items():
        names = {look: sorted(p.name for p in (b / "val").glob("hyb-*")) for look, b in
                 zip(LOOKS, (flat, fade), strict=True)}  # fmt: skip
        if not names["flat"]:
            raise InputError(flat / "val", "no val pullbacks (hyb-*) in this build")
        if names["flat"] != names["fade"]:
            raise InputError(fade / "val", f"holds {names['fade']}, not {flat}'s {names['flat']}")
        for name in names["flat"]:
            rows += compare_pullback(draw, (flat, fade), f"{draw}-{name.rsplit('-', 1)[1]}")
    if not rows:
        raise InputError(None, "no frame with truth calcium and room behind it")
    return pd.DataFrame(rows)


def markdown(d: pd.DataFrame) -> str:
    lines = [
        "| truth thickness (mm) | frames | no visible back border: flat | fade "
        "| median step: flat | fade |",
        "|---|---|---|---|---|---|",
    ]
    for name, lo, hi in [("all", -np.inf, np.inf)] + [(f"{a}-{b}", a, b) for a, b in THICK_BANDS]:
        b = d[(d.truth > lo) & (d.truth <= hi)]
        if b.empty:
            continue
        lines.append(
            f"| {name} | {len(b)} | {(b.flat_step <= 0).mean():.1%} | {(b.fade_step <= 0).mean():.1%} "
            f"| {b.flat_step.median():+.3f} | {b.fade_step.median():+.3f} |"
        )
    return "\n".join(lines) + "\n"


def figure(d: pd.DataFrame, pairs: dict[str, tuple[Path, Path]], out: Path, n: int = 3) -> None:
    """The ``n`` frames over 0.5 mm (any, if none is) whose flat look hides the back border
    most: the grey along their thickest A-lines in both looks, truth calcium shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thick = d[d.truth > 0.5]
    picks = (d if thick.empty else thick).nsmallest(n, "flat_step")
    fig, axes = plt.subplots(1, len(picks), figsize=(4.2 * len(picks), 3.2), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, r in zip(axes, picks.itertuples(), strict=True):
        draw = r.pullback_id.rsplit("-", 1)[0]
        for build, look, colour in zip(pairs[draw], LOOKS, ("tab:grey", "k"), strict=True):
            image, labels, ps = _polar({draw: build}, r.pullback_id)
            span = plot_thickest(ax, image[r.frame], labels[r.frame], ps, color=colour, label=look)
        finish_panel(ax, span, ps, f"{r.pullback_id} frame {r.frame}: truth {r.truth:.2f} mm\n"
                     f"step flat {r.flat_step:+.2f}, fade {r.fade_step:+.2f}")  # fmt: skip
    save_profiles(fig, axes, out)


def _pair(text: str) -> tuple[str, tuple[Path, Path]]:
    draw, _, folders = text.partition("=")
    flat, _, fade = folders.partition(":")
    if not (draw and flat and fade):
        raise argparse.ArgumentTypeError(f"expected DRAW=FLAT_BUILD:FADE_BUILD, got {text!r}")
    return draw, (Path(flat), Path(fade))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", type=_pair, action="append", required=True,
                    help="DRAW=FLAT_BUILD:FADE_BUILD (cohort build folders of one seed)")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True, help="OUT.csv / OUT.md / OUT.png")
    a = ap.parse_args(argv)
    pairs = dict(a.pair)
    if len(pairs) < len(a.pair):
        ap.error("each DRAW may be given once")
    d = compare(pairs)
    write_outputs(d, a.out, markdown(d), lambda png: figure(d, pairs, png))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
