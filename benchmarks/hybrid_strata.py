"""A scored run's pooled ``evaluate.py`` tables split by what the hybrid inserted in each frame.

Each frame with truth calcium goes to one *kind* stratum (the kind of the one lesion there, or
"several lesions") and one *contrast* stratum (the faintest lesion there; contrast is the calcium
level over the tissue level in front of it, so higher is fainter: ``draw.CONTRAST``). Per
stratum: frames, mean calcium Dice (``segmentation_frames.csv``), frames the run missed (no
calcium found), and the mean arc and maximum-thickness error (auto - truth) over frames where
both have calcium (``frames_matched.csv``). Frames without truth calcium form one more row with
the frames where the run found calcium. Nothing is re-measured: the numbers are evaluate.py's.

With ``visibility``, each frame also goes to a *visibility* stratum measured on the hybrid image
itself (the drawn contrast is a parameter; texture, attenuation and what lies beside the lesion
decide what can be seen): the contrast-to-noise ratio of the truth calcium against background
tissue at the same depth under the lumen on the A-lines beside the lesion (:func:`calcium_cnr`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d

from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.datasets.appearance import lumen_border

FAINT = "faint (contrast >= 0.5)"
CONTRAST_BINS = ((0.35, "clear (contrast < 0.35)"), (0.5, "medium (0.35-0.5)"), (np.inf, FAINT))
NONE = "no truth calcium"
NONE_STENT = "no truth calcium, behind struts"
STENTED, UNSTENTED = "behind struts", "no stent"
KINDS = ("superficial", "deep", "nodule", "several lesions", "no lesion drawn")
CONTRASTS = (*(name for _, name in CONTRAST_BINS), "-")
CNR_BINS = ((1.0, "CNR < 1"), (2.0, "CNR 1-2"), (np.inf, "CNR >= 2"))
VISIBILITIES = (*(name for _, name in CNR_BINS), "CNR not measured")
BESIDE_DEG, GAP_DEG = 30.0, 3.0  # reference A-lines: 3-30 degrees beside the lesion's A-lines


def _bin(x: float, bins: tuple[tuple[float, str], ...]) -> str:
    """The name of the first bin whose upper bound ``x`` is below."""
    return next(name for top, name in bins if x < top)


def _ring_dilate(rows: np.ndarray, n: int) -> np.ndarray:
    """Boolean A-line mask dilated by ``n`` A-lines around the circle."""
    return maximum_filter1d(rows, size=2 * n + 1, mode="wrap")


def calcium_cnr(image: np.ndarray, labels: np.ndarray) -> float:
    """Contrast-to-noise ratio of one polar frame's truth calcium (A-lines x samples): (mean of
    the reference tissue - mean of calcium) / std of the reference. Reference: background pixels
    3-30 degrees beside the calcium A-lines, within the 10th-90th percentile of calcium's depth
    under the lumen border. A-lines with a strut or the guidewire are left out on both sides.
    NaN when fewer than 20 calcium pixels or 20 reference pixels remain."""
    a, r = labels.shape
    clean = ~((labels == STRUT) | (labels == GUIDEWIRE)).any(1)
    depth = np.arange(r)[None] - lumen_border(labels, LUMEN)[:, None]
    on = (labels == CALCIUM).any(1)
    beside = _ring_dilate(on, round(BESIDE_DEG / 360 * a)) & ~_ring_dilate(
        on, round(GAP_DEG / 360 * a)
    )
    ca = (labels == CALCIUM) & clean[:, None]
    if ca.sum() < 20:
        return float("nan")
    lo, hi = np.percentile(depth[ca], [10, 90])
    ref = (labels == BACKGROUND) & (beside & clean)[:, None] & (depth >= lo) & (depth <= hi)
    if ref.sum() < 20:
        return float("nan")
    tissue = image[ref].astype(np.float64)
    return float((tissue.mean() - image[ca].mean()) / tissue.std())


def visibility_label(cnr: float) -> str:
    """The CNR stratum of a frame."""
    return VISIBILITIES[-1] if cnr != cnr else _bin(cnr, CNR_BINS)


def frame_cnrs(build: Path, frames: list[int]) -> list[float]:
    """:func:`calcium_cnr` of ``frames`` of one hybrid build folder (its polar image.npz and
    labels.npz)."""
    paths = [build / "image.npz", build / "labels.npz"]
    for path in paths:
        if not path.exists():
            raise SystemExit(f"{path} missing: visibility reads the hybrid build beside params")
    image, labels = np.load(paths[0])["frames"], np.load(paths[1])["labels"]
    return [calcium_cnr(image[f], labels[f]) for f in frames]


def frame_strata(params: dict, frame: int) -> tuple[str, str]:
    """(kind stratum, contrast stratum) of the lesions the hybrid drew on ``frame``."""
    on = [les for les in params.get("lesions", []) if les["start"] <= frame < les["stop"]]
    if not on:
        return "no lesion drawn", "-"
    kind = on[0]["kind"] if len(on) == 1 else "several lesions"
    return kind, _bin(max(les["contrast"] for les in on), CONTRAST_BINS)


def stent_stratum(params: dict, frame: int) -> str:
    """Whether the hybrid's stent covers ``frame``."""
    st = params.get("stent")
    return STENTED if st and st["start"] <= frame < st["stop"] else UNSTENTED


def frames_table(pool: Path, evaluated: Path, visibility: bool = False) -> pd.DataFrame:
    """One row per frame: truth/auto calcium pixels, Dice, arc and thickness of both sides and
    the frame's strata; from evaluate.py's pooled outputs and ``pool/params/PID.json`` (with
    ``visibility``, also the build folder that file links to)."""
    seg = pd.read_csv(evaluated / "segmentation_frames.csv")
    seg = seg[seg["class"] == "calcium"][
        ["pullback_id", "frame", "dice", "auto_pixels", "manual_pixels", "scored"]
    ]
    cols = ["arc_deg", "max_thickness_mm"]
    keep = [f"{side}_calcium_{c}" for side in ("auto", "manual") for c in cols]
    fm = pd.read_csv(evaluated / "frames_matched.csv")[["pullback_id", "frame", *keep]]
    df = seg.merge(fm, on=["pullback_id", "frame"], how="left")
    paths = {pid: pool / "params" / f"{pid}.json" for pid in df["pullback_id"].unique()}
    params = {}
    for pid, path in paths.items():
        if not path.exists():
            raise SystemExit(f"{path} missing: link the draws' params with pool --cohort")
        params[pid] = json.loads(path.read_text())
    strata = [frame_strata(params[p], int(f)) for p, f in zip(df["pullback_id"], df["frame"])]
    df = df.assign(kind=[s[0] for s in strata], contrast=[s[1] for s in strata])
    df["stent"] = [stent_stratum(params[p], int(f)) for p, f in zip(df["pullback_id"], df["frame"])]
    if visibility:
        df["cnr"] = np.nan
        for pid, g in df[df["manual_pixels"] > 0].groupby("pullback_id"):
            build = paths[pid].resolve().parent
            df.loc[g.index, "cnr"] = frame_cnrs(build, [int(f) for f in g["frame"]])
    return df


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN (no frame to average) -> JSON null


def _summary(g: pd.DataFrame) -> dict:
    both = g[(g["auto_pixels"] > 0) & (g["manual_pixels"] > 0)]
    arc = both["auto_calcium_arc_deg"] - both["manual_calcium_arc_deg"]
    thick = both["auto_calcium_max_thickness_mm"] - both["manual_calcium_max_thickness_mm"]
    return {
        "frames": len(g),
        "dice": _num(g.loc[g["scored"] == 1, "dice"].mean()),
        "missed": int((g["auto_pixels"] == 0).sum()),
        "arc_bias_deg": _num(arc.mean()),
        "arc_abs_err_deg": _num(arc.abs().mean()),
        "thickness_bias_mm": _num(thick.mean()),
    }


def strata(df: pd.DataFrame) -> dict[str, dict]:
    """``{stratum: summary}``: every kind, every contrast bin, (the visibility bins,) behind
    struts or not, all truth calcium, and the frames without truth calcium, all of them and
    those behind struts (``false``: frames where calcium was found)."""
    ca = df[df["manual_pixels"] > 0]
    by_kind, by_contrast = dict(list(ca.groupby("kind"))), dict(list(ca.groupby("contrast")))
    kinds = [*KINDS, *sorted(set(by_kind) - set(KINDS))]  # a kind added to the builder later
    out = {f"kind: {k}": _summary(by_kind[k]) for k in kinds if k in by_kind}
    out |= {f"contrast: {c}": _summary(by_contrast[c]) for c in CONTRASTS if c in by_contrast}
    if "cnr" in ca:
        by_vis = dict(list(ca.groupby(ca["cnr"].map(visibility_label))))
        out |= {f"visibility: {v}": _summary(by_vis[v]) for v in VISIBILITIES if v in by_vis}
    if "stent" in ca:
        by_stent = dict(list(ca.groupby("stent")))
        out |= {f"stent: {k}": _summary(by_stent[k]) for k in (STENTED, UNSTENTED) if k in by_stent}
    out["all truth calcium"] = _summary(ca)
    empty = df[df["manual_pixels"] == 0]
    out[NONE] = _false(empty)
    if "stent" in empty:
        out[NONE_STENT] = _false(empty[empty["stent"] == STENTED])
    return out


def _false(g: pd.DataFrame) -> dict:
    return {"frames": len(g), "false": int((g["auto_pixels"] > 0).sum())}


def _f(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def markdown(results: dict[str, dict[str, dict]]) -> str:
    """One table per run."""
    parts = []
    for run, rows in results.items():
        lines = [
            f"## {run}",
            "",
            "| frames | n | Ca Dice | missed | arc bias ° (mean abs) | thickness bias mm |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in rows.items():
            if "false" in r:
                lines.append(f"| {name} | {r['frames']} | | {r['false']} found calcium | | |")
                continue
            lines.append(
                f"| {name} | {r['frames']} | {_f(r['dice'], '.2f')} | {r['missed']} "
                f"| {_f(r['arc_bias_deg'], '+.1f')} ({_f(r['arc_abs_err_deg'], '.1f')}) "
                f"| {_f(r['thickness_bias_mm'], '+.3f')} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def dice_arc_bars(runs: list[str], dice: np.ndarray, arc: np.ndarray, figsize=(9, 6.4)):
    """Two panels of grouped bars, calcium Dice above and arc bias below: one group per column
    of ``dice`` / ``arc`` (run, group), one bar per run; returns (fig, axes, group positions).
    Also used by benchmarks/pool_draws_figure.py."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, width = np.arange(dice.shape[1]), 0.8 / len(runs)
    fig, axes = plt.subplots(2, 1, figsize=figsize, sharex=True)
    for i, run in enumerate(runs):
        for ax, vals in zip(axes, (dice[i], arc[i])):
            ax.bar(x + (i - (len(runs) - 1) / 2) * width, vals, width, label=run)
    return fig, axes, x


def plot(results: dict[str, dict[str, dict]], path: Path, title: str = "") -> None:
    """Mean calcium Dice and arc bias per stratum, one bar per run."""
    import matplotlib.pyplot as plt

    names = [n for n, r in next(iter(results.values())).items() if "false" not in r]

    def values(key: str) -> np.ndarray:
        cells = [[rows.get(n, {}).get(key) for n in names] for rows in results.values()]
        return np.array([[np.nan if v is None else v for v in row] for row in cells], float)

    fig, axes, x = dice_arc_bars(list(results), values("dice"), values("arc_bias_deg"))
    axes[0].set_ylabel("mean calcium Dice")
    axes[1].set_ylabel("arc bias, auto - truth (°)")
    axes[1].axhline(0, color="k", lw=0.8)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    counts = [
        f"{n.split(': ', 1)[-1]}\n(n={results[next(iter(results))][n]['frames']})" for n in names
    ]
    axes[1].set_xticks(x, counts, rotation=30, ha="right", fontsize=7)
    axes[0].set_ylim(0, 1.25)  # room for the legend above the bars
    axes[0].legend(fontsize=7, loc="upper center", ncol=2)
    axes[0].set_title(title or "Calcium by what the hybrid drew on each frame", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
