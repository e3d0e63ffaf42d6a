"""Is the truth's back calcium border in the image? The thickness agreement split by it.

A hybrid frame's calcium is painted at ``contrast x`` the tissue level in front of it
(``octseg.datasets.hybrid.insert``), while the tissue behind it keeps the real frame's level at
that depth, which falls with depth. Where the real tissue behind has fallen to the calcium's
level or below, the truth's back border has nothing in the image to mark it. This probe measures,
on the polar hybrid image of each frame of a ``thickness_probe.py`` table (catheter rays through
the truth, on every A-line where the truth's calcium is within 90% of its thickest):

- ``inside``: the mean grey over the last 8 samples of calcium, up to its back border (fewer
  where the calcium is thinner);
- ``outside``: the mean grey over the 8 samples behind it;
- ``border_step`` = outside - inside (> 0: the tissue behind is brighter, a visible border).

It then gives, by ``border_step`` band and truth thickness band, the frames and the mean errors
of the probe (``site``: at the truth's thickest point; ``product``: what ``evaluate.py``
compares), and the frame thickness ICC (``octseg.evaluate.stats``) over frames with a visible
border and over the rest. The split is by image and truth alone, never by the model's output.

    python benchmarks/back_border_probe.py PROBE.csv --build f100=F/test_s100 ... --out OUT

``PROBE.csv``: ``thickness_probe.py``'s table of a pool (``benchmarks/hybrid_pool.py``; pullback
ids ``<draw>-v<k>``); ``--build DRAW=FOLDER``: the ``cohort build`` folder of that draw (its
``val/*-v<k>`` holds ``image.npz`` and ``labels.npz``). Writes OUT.csv, OUT.md and OUT.png (the
grey along the thickest A-lines of the 0.5-0.9 mm frames with the clearest and the least visible
back border).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from octseg.core import atomic  # noqa: E402
from octseg.core.classes import CALCIUM  # noqa: E402
from octseg.core.errors import InputError  # noqa: E402
from octseg.evaluate import stats  # noqa: E402

WINDOW = 8  # samples on each side of the back border
STEP_BANDS = (-1.0, 0.0, 0.02, 0.05, 0.1, 1.0)
THICK_BANDS = ((0.0, 0.5), (0.5, 0.9), (0.9, np.inf))


def border_step(image: np.ndarray, labels: np.ndarray) -> tuple[float, float] | None:
    """``(inside, outside)`` mean grey at the back calcium border of one polar frame, over the
    A-lines where the calcium is within 90% of its thickest (None: no such A-line with room
    behind it)."""
    ca = labels == CALCIUM
    if not ca.any():
        return None
    inside, outside = [], []
    for a in _thickest_rows(ca):
        idx = np.flatnonzero(ca[a])
        back = idx.max()
        if back + WINDOW + 1 < image.shape[1]:
            inside.append(image[a, max(idx.min(), back - WINDOW + 1) : back + 1].mean())
            outside.append(image[a, back + 1 : back + 1 + WINDOW].mean())
    return (float(np.mean(inside)), float(np.mean(outside))) if inside else None


def _thickest_rows(ca: np.ndarray) -> np.ndarray:
    """The A-lines of a polar calcium mask ``(A, R)`` where it is within 90% of its thickest."""
    count = ca.sum(axis=1)
    return np.flatnonzero(count >= 0.9 * count.max())


def _polar(builds: dict[str, Path], pullback: str) -> tuple[np.ndarray, np.ndarray, float]:
    draw, variant = pullback.rsplit("-", 1)
    found = sorted((builds[draw] / "val").glob(f"*-{variant}"))
    if len(found) != 1:
        raise InputError(builds[draw], f"expected one val/*-{variant} folder for {pullback}")
    image = np.load(found[0] / "image.npz")["frames"].astype(np.float32) / 255.0
    lab = np.load(found[0] / "labels.npz")
    return image, lab["labels"], float(lab["pixel_spacing_mm"])


def measure(probe: pd.DataFrame, builds: dict[str, Path]) -> pd.DataFrame:
    rows = []
    for pid, group in probe.groupby("pullback_id"):
        image, labels, _ = _polar(builds, str(pid))
        for r in group.itertuples():
            got = border_step(image[r.frame], labels[r.frame])
            if got is not None:
                rows.append({**r._asdict(), "inside": got[0], "outside": got[1]})
    if not rows:
        raise InputError(None, "no frame of the probe table has calcium with room behind it")
    out = pd.DataFrame(rows).drop(columns="Index")
    out["border_step"] = out.outside - out.inside
    return out


def _icc(d: pd.DataFrame) -> str:
    if len(d) < 3:
        return "–"
    return f"{stats.icc_absolute_agreement(d.truth + d['product'], d.truth)['icc']:.3f}"


def markdown(d: pd.DataFrame) -> str:
    lines = [
        "| truth thickness (mm) | border step | frames | error at the thickest point (mm) "
        "| product error (mm) | inside | outside |",
        "|---|---|---|---|---|---|---|",
    ]
    step = pd.cut(d.border_step, STEP_BANDS)
    for lo, hi in THICK_BANDS:
        band = d[(d.truth > lo) & (d.truth <= hi)]
        for interval, b in band.groupby(step[band.index], observed=True):
            lines.append(
                f"| {lo}-{hi} | {interval} | {len(b)} | {b.site.mean():+.3f} "
                f"| {b['product'].mean():+.3f} | {b.inside.mean():.3f} | {b.outside.mean():.3f} |"
            )
    lines += ["", "| frames | n | truth SD (mm) | frame thickness ICC |", "|---|---|---|---|"]
    for name, sub in (
        ("all", d),
        ("visible back border (step > 0)", d[d.border_step > 0]),
        ("no visible back border (step <= 0)", d[d.border_step <= 0]),
    ):
        lines.append(f"| {name} | {len(sub)} | {sub.truth.std():.3f} | {_icc(sub)} |")
    return "\n".join(lines) + "\n"


def _thickest_profile(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mean grey along the A-lines where the calcium is within 90% of its thickest, and the
    first and last calcium samples on them (medians)."""
    ca = labels == CALCIUM
    rows = _thickest_rows(ca)
    first = int(np.median([np.flatnonzero(ca[a]).min() for a in rows]))
    last = int(np.median([np.flatnonzero(ca[a]).max() for a in rows]))
    return image[rows].mean(axis=0), first, last


def plot_thickest(ax, image: np.ndarray, labels: np.ndarray, ps: float, **style) -> tuple:
    """The grey profile along the thickest A-lines of one polar frame on ``ax`` (depth in mm);
    returns the truth calcium's (first, last) sample on them."""
    prof, first, last = _thickest_profile(image, labels)
    ax.plot(np.arange(prof.size) * ps, prof, lw=1, **{"color": "k", **style})
    return first, last


def finish_panel(ax, span: tuple[int, int], ps: float, title: str) -> None:
    """The truth calcium shaded on a :func:`plot_thickest` panel, and its title."""
    ax.axvspan(span[0] * ps, (span[1] + 1) * ps, color="tab:orange", alpha=0.3, label="truth Ca")
    ax.set_title(title, fontsize=8.5)
    ax.set_xlabel("depth from the catheter (mm)")


def save_profiles(fig, axes, out: Path) -> None:
    """Label a row of :func:`plot_thickest` panels and save the figure to ``out``."""
    import matplotlib.pyplot as plt

    axes[0].set_ylabel("grey (mean over the thickest A-lines)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def figure(d: pd.DataFrame, builds: dict[str, Path], out: Path) -> None:
    """For 0.5-0.9 mm truth: the frame with the clearest back border and the one with the most
    negative step, as the grey profile along their thickest A-lines (truth calcium shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    band = d[(d.truth > 0.5) & (d.truth <= 0.9)]
    picks = [band.loc[band.border_step.idxmax()], band.loc[band.border_step.idxmin()]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), dpi=110, sharey=True)
    for ax, r in zip(axes, picks, strict=True):
        image, labels, ps = _polar(builds, str(r.pullback_id))
        span = plot_thickest(ax, image[int(r.frame)], labels[int(r.frame)], ps)
        finish_panel(ax, span, ps, f"{r.pullback_id} frame {int(r.frame)}: step "
                     f"{r.border_step:+.2f}, truth {r.truth:.2f} mm, v3 at its thickest "
                     f"{r.site:+.2f} mm")  # fmt: skip
    save_profiles(fig, axes, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", type=Path, help="thickness_probe.py's OUT.csv")
    ap.add_argument("--build", action="append", required=True, help="DRAW=cohort build folder")
    ap.add_argument("--out", type=Path, required=True, help="OUT.csv / OUT.md, no suffix")
    a = ap.parse_args(argv)
    builds = {k: Path(v) for k, v in (b.split("=", 1) for b in a.build)}
    d = measure(pd.read_csv(a.probe), builds)
    write_outputs(d, a.out, markdown(d), lambda png: figure(d, builds, png))
    return 0


def write_outputs(d: pd.DataFrame, out: Path, text: str, draw) -> None:
    """OUT.csv (the frame table), OUT.md (``text``, also printed) and OUT.png (``draw(path)``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out.with_suffix(".csv"), d.to_csv(index=False, float_format="%.4f"))
    atomic.write_text(out.with_suffix(".md"), text)
    draw(out.with_suffix(".png"))
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
