"""Where a frame's maximum calcium thickness error comes from: the border at the thickest point,
or a different point read thicker.

``octseg.geometry`` reads a frame's maximum calcium thickness as the most calcium samples on any
ray from the lumen centroid (docs/metrics.md). An automated reading can miss that number in two
ways: its borders are off where the truth is thickest (**at the site**), or it is thicker than
the truth somewhere else and the maximum picks that ray (**selection**). This probe casts the
product's own rays (``octseg.geometry.measure``: the manual lumen's centroid, the product's ray
grid and sampling) through both label maps of each frame with calcium on both sides, and writes:

- ``site``: the automated thickness at the truth's thickest point (the most over the rays within
  ``--site-deg``, by default 2°, of any ray where the truth is thickest: a lesion of even
  thickness has many), minus the truth's maximum;
- ``selection``: the automated maximum over all rays minus its thickness at that site (>= 0);
- ``product``: auto - manual of the two ``frames.csv`` (what ``evaluate.py`` compares);
- ``raster``: the truth label map's maximum on these rays minus the manual ``frames.csv`` value
  (for hybrid and synthetic truth the exact shape's thickness; the raster reads about one
  sample more);
- ``offset_deg``: how far the nearest pair of a truth-thickest ray and an automated-thickest
  ray lie apart;
- ``reach_mm``: how far from the catheter the truth's calcium reaches on that frame (its
  farthest calcium pixel; session 56: thick calcium reaching past 2.5 mm is what reads thin);
  ``lesions``: the truth's calcium pieces on the frame (with several, the reach can be another
  lesion's than the thickest one's, so the summary repeats the reach table for one-lesion
  frames).

The summary also gives the product error by how far the truth reaches (:data:`REACH_BANDS`)
within each truth band. ``raster`` + ``site`` + ``selection`` is the error with both sides' rays cast from the manual
centroid; the product's differs from it by the centroid the automated side's own rays start
from. The summary gives them by truth thickness band, with the ICC and proportional bias
(:mod:`octseg.evaluate.stats`) of the reading at the site beside the automated maximum's.
Selection is >= 0 by construction: the maximum of any noisy reading over many rays is biased
upwards, so read it beside the site error, not alone.

    python benchmarks/thickness_probe.py AUTO MANUAL --out OUT   # OUT.csv, OUT.md, OUT.json

``AUTO``: ``infer.py`` outputs; ``MANUAL``: the truth folders (``labels.npz`` + ``frames.csv``
per pullback, e.g. a console export's ``manual/``), in the same space and spacing.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage as ndi

from octseg.core import atomic
from octseg.core.classes import CALCIUM
from octseg.core.errors import InputError
from octseg.evaluate import stats
from octseg.geometry import lumen as lu
from octseg.geometry import measure as me
from octseg.geometry.kernels import count_along, eq_u8
from octseg.geometry.settings import GeometrySettings
from octseg.io.labels import LabelFile, load_labels

BANDS = ((0.0, 0.5), (0.5, 0.9), (0.9, math.inf))
"""Truth thickness bands of the summary (mm): thin, up to the thick cut-off, thicker."""
REACH_BANDS = ((0.0, 2.0), (2.0, 2.5), (2.5, 3.0), (3.0, math.inf))
"""How far the truth's calcium reaches from the catheter (mm), bands of the summary's second
table."""


def _counts(vals: torch.Tensor, ps: float, rho_l, shadow) -> dict[str, torch.Tensor]:
    """Calcium samples on each ray ``(B, n)`` (the ``fns`` signature of ``_ray_metrics``)."""
    return {"counts": count_along(eq_u8(vals, CALCIUM), -1)}


def ray_thickness(
    auto: torch.Tensor, manual: torch.Tensor, lf: LabelFile, s: GeometrySettings, cache: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Calcium thickness (mm) on each of ``s.n_rays`` rays ``(B, n)`` of both label chunks
    ``(B, H, W)``, all cast from the manual lumen's centroid."""
    ps, space = lf.pixel_spacing_mm, lf.space
    center = lf.center if space == "cartesian" else None
    lum = me._lumen(manual, space, ps, center, s, cache)
    phi = torch.arange(s.n_rays, dtype=torch.float32) * (lu.TWO_PI / s.n_rays)
    work = me._work_buffer(cache, manual)
    reach = max(
        me._calcium_pixels(lab, space == "polar", ps, center, work)[2] for lab in (auto, manual)
    )
    reach = max(reach, float(lum.radii.max()) + 2 * ps)
    out = []
    for lab in (auto, manual):
        res = me._ray_metrics(lab, space, ps, center, s.n_rays, cache, lum, phi, reach, [_counts])
        out.append(res["counts"].numpy() * ps)
    return out[0], out[1]


def calcium_reach(labels: np.ndarray, lf: LabelFile) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of ``labels`` ``(B, H, W)``: the farthest calcium pixel from the catheter (mm;
    NaN without calcium; polar maps: sample j lies j x the spacing from the catheter) and the
    number of calcium lesions on the frame (8-connected pieces; polar: A-lines periodic is not
    taken into account, so a lesion across A-line 0 counts twice). With several lesions the
    reach can be another lesion's than the thickest one's."""
    reach, lesions = np.full(labels.shape[0], np.nan), np.zeros(labels.shape[0], int)
    for i, lab in enumerate(labels):
        ca = lab == CALCIUM
        ys, xs = np.nonzero(ca)
        lesions[i] = ndi.label(ca, structure=np.ones((3, 3)))[1]
        if ys.size and lf.space == "polar":
            reach[i] = xs.max() * lf.pixel_spacing_mm
        elif ys.size:
            reach[i] = np.hypot(ys - lf.center[0], xs - lf.center[1]).max() * lf.pixel_spacing_mm
    return reach, lesions


def frame_rows(a: np.ndarray, m: np.ndarray, site_rays: int) -> list[dict | None]:
    """Per frame of ray thicknesses ``a`` / ``m`` ``(B, n)``: truth maximum, thickness at the
    site, automated maximum and the angle between the two maxima (None: calcium missing on a
    side)."""
    n = a.shape[1]
    rows: list[dict | None] = []
    for ai, mi in zip(a, m, strict=True):
        if mi.max() <= 0 or ai.max() <= 0:
            rows.append(None)
            continue
        tops = np.flatnonzero(mi == mi.max())  # every ray where the truth is thickest
        site = (tops[:, None] + np.arange(-site_rays, site_rays + 1)[None]) % n
        near = ai[site.ravel()].max()
        gap = np.abs(tops[:, None] - np.flatnonzero(ai == ai.max())[None])
        offset = np.minimum(gap, n - gap).min() * 360.0 / n
        rows.append(dict(truth=mi.max(), at_site=near, auto_max=ai.max(), offset_deg=offset))
    return rows


def probe_pullback(auto_dir: Path, manual_dir: Path, s: GeometrySettings, site_deg: float):
    """The per-frame rows of one pullback (the frames with calcium on both sides)."""
    la, lm = load_labels(auto_dir / "labels.npz"), load_labels(manual_dir / "labels.npz")
    same = (la.labels.shape, la.space, la.pixel_spacing_mm) == (
        lm.labels.shape, lm.space, lm.pixel_spacing_mm
    )  # fmt: skip
    if not same or (la.space == "cartesian" and not np.allclose(la.center, lm.center)):
        raise InputError(auto_dir, f"label maps not on the grid of {manual_dir / 'labels.npz'}")
    fa = pd.read_csv(auto_dir / "frames.csv").set_index("frame")
    fm = pd.read_csv(manual_dir / "frames.csv").set_index("frame")
    site_rays = round(site_deg * s.n_rays / 360.0)
    frames, rows, cache = lm.frames, [], {}
    for start in range(0, lm.n_frames, 32):
        sl = slice(start, start + 32)
        a, m = ray_thickness(
            torch.from_numpy(la.labels[sl]), torch.from_numpy(lm.labels[sl]), lm, s, cache
        )
        reach, lesions = calcium_reach(lm.labels[sl], lm)
        rows_sl = frame_rows(a, m, site_rays)
        for f, r, far, n in zip(frames[sl], rows_sl, reach, lesions, strict=True):
            if r is not None:
                r["reach_mm"], r["lesions"] = far, n
                col = "calcium_max_thickness_mm"
                manual = fm[col].get(int(f), np.nan)
                product = fa[col].get(int(f), np.nan) - manual
                rows.append(dict(pullback_id=manual_dir.name, frame=int(f), product=product,
                                 raster=r["truth"] - manual, **r))  # fmt: skip
    return rows


def summary(df: pd.DataFrame) -> dict:
    """By truth band: frames, mean product error, raster, site error and selection, share of
    automated maxima more than 10° away; overall: ICC and proportional bias of the reading at
    the site and of the automated maximum (both from the manual centroid)."""
    out: dict = {"bands": []}
    for lo, hi in BANDS:
        b = df[(df.truth > lo) & (df.truth <= hi)]
        out["bands"].append({
            "band_mm": [lo, None if math.isinf(hi) else hi], "n": len(b),
            "product": b["product"].mean(), "raster": b.raster.mean(), "site": b.site.mean(),
            "selection": b.selection.mean(), "away_over_10deg": (b.offset_deg > 10).mean(),
        } if len(b) else {"band_mm": [lo, None if math.isinf(hi) else hi], "n": 0})  # fmt: skip
    out["by_reach"] = by_reach(df)
    out["by_reach_one_lesion"] = by_reach(df[df.lesions == 1])
    ids = list(df.pullback_id)
    for name, col in (("at_site", "at_site"), ("auto_max", "auto_max")):
        x, t = df[col].to_numpy(), df.truth.to_numpy()
        pb = stats.proportional_bias(x, t, ids)
        out[name] = {
            "icc": stats.icc_absolute_agreement(x, t)["icc"],
            "bias": float(np.mean(x - t)),
            "proportional_slope": pb["proportional_slope"],
            "proportional_slope_ci_pullbacks": pb["proportional_slope_ci_pullbacks"],
        }
    return out


def _band(lo: float, hi: float) -> str:
    return f"> {lo}" if math.isinf(hi) else f"{lo}-{hi}"


def by_reach(df: pd.DataFrame) -> list[dict]:
    """Mean product error and frames per (truth thickness band, reach band)."""
    rows = []
    for lo, hi in BANDS:
        for r0, r1 in REACH_BANDS:
            b = df[(df.truth > lo) & (df.truth <= hi) & (df.reach_mm > r0) & (df.reach_mm <= r1)]
            err = float(b["product"].mean()) if len(b) else None
            rows.append(
                {"band": _band(lo, hi), "reach": _band(r0, r1), "n": len(b), "product": err}
            )
    return rows


def reach_markdown(rows: list[dict]) -> list[str]:
    """The product error by truth band (rows) and reach band (columns): 'mean (frames)'."""
    reaches = [_band(r0, r1) for r0, r1 in REACH_BANDS]
    lines = [
        "| truth thickness (mm) \\ calcium reaches (mm from the catheter) | "
        + " | ".join(reaches)
        + " |",
        "|---" * (len(reaches) + 1) + "|",
    ]
    for lo, hi in BANDS:
        cells = [r for r in rows if r["band"] == _band(lo, hi)]
        txt = [f"{c['product']:+.3f} ({c['n']})" if c["n"] else "–" for c in cells]
        lines.append(f"| {_band(lo, hi)} | " + " | ".join(txt) + " |")
    return lines


def markdown(s: dict) -> str:
    def f(v: float | None, nd: int = 3, sign: str = "+") -> str:
        return "–" if v is None or math.isnan(v) else f"{v:{sign}.{nd}f}"

    lines = [
        "| truth thickness (mm) | frames | product error (mm) | raster truth | at the thickest point "
        "| selection | auto maximum > 10° away |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in s["bands"]:
        lo, hi = b["band_mm"]
        band = _band(lo, math.inf if hi is None else hi)
        if not b["n"]:
            lines.append(f"| {band} | 0 | | | | | |")
            continue
        lines.append(
            f"| {band} | {b['n']} | {f(b['product'])} | {f(b['raster'])} | {f(b['site'])} "
            f"| {f(b['selection'])} "
            f"| {b['away_over_10deg']:.0%} |"
        )
    lines += ["", *reach_markdown(s["by_reach"])]
    lines += [
        "",
        "Frames with one calcium lesion only:",
        "",
        *reach_markdown(s["by_reach_one_lesion"]),
    ]
    lines += [
        "",
        "| reading (rays from the manual centroid) | ICC | bias (mm) | proportional slope [95% CI over pullbacks] |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("at_site", "at the truth's thickest point"),
        ("auto_max", "automated maximum"),
    ):
        r = s[name]
        ci = r["proportional_slope_ci_pullbacks"]
        cis = "" if ci is None or ci[0] is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        lines.append(
            f"| {label} | {f(r['icc'], 3, '')} | {f(r['bias'])} "
            f"| {f(r['proportional_slope'], 2, '')}{cis} |"
        )
    return "\n".join(lines) + "\n"


def probe(auto: Path, manual: Path, site_deg: float = 2.0) -> pd.DataFrame:
    """Every pullback of ``manual`` that has calcium truth and an ``auto`` counterpart."""
    s = GeometrySettings()
    rows = []
    for mdir in sorted(p for p in manual.iterdir() if (p / "labels.npz").is_file()):
        adir = auto / mdir.name
        if not (adir / "labels.npz").is_file():
            raise InputError(adir, "no automated labels.npz for this manual pullback")
        rows += probe_pullback(adir, mdir, s, site_deg)
    if not rows:
        raise InputError(manual, "no frame with calcium on both sides")
    df = pd.DataFrame(rows)
    df["site"] = df.at_site - df.truth
    df["selection"] = df.auto_max - df.at_site
    return df


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("auto", type=Path, help="infer.py output folder")
    ap.add_argument("manual", type=Path, help="truth folder (labels.npz + frames.csv per pullback)")
    ap.add_argument(
        "--out", type=Path, required=True, help="OUT.csv / OUT.md / OUT.json, no suffix"
    )
    ap.add_argument(
        "--site-deg", type=float, default=2.0, help="half-width of the thickest point (deg)"
    )
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    df = probe(a.auto, a.manual, a.site_deg)
    s = summary(df)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(a.out.with_suffix(".csv"), df.to_csv(index=False, float_format="%.4f"))
    atomic.write_text(a.out.with_suffix(".json"), json.dumps(s, indent=1) + "\n")
    atomic.write_text(a.out.with_suffix(".md"), markdown(s))
    print(markdown(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
