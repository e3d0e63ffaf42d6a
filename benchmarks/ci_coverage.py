"""How often the 95% CIs over pullbacks of ``evaluate.py`` cover the truth, with few pullbacks.

    python benchmarks/ci_coverage.py [--reps 1000] [--pullbacks 2 3 5 8 16 24] [--only NAME]
        [--out FILE.md]

Simulated cohorts whose frames are near duplicates inside a pullback (AR(1) noise, rho 0.9)
and whose pullbacks differ (a pullback effect), with a known true value:

- ``mean``: a frame-level difference (a bias), pullback effect normal, 30-150 frames each;
- ``pooled Dice``: per-frame Dice about a pullback mean drawn from Beta (mean 0.75), pooled
  over pixel counts that vary by frame (log-normal);
- ``sensitivity``: malapposed struts found (0/1), 3-24 per pullback, the pullback's chance drawn
  from Beta (mean 0.85 or 0.95);
- ``ICC(A,1)``: paired readings whose automated side is the manual one times a slope (0.7 like
  a compressed thickness, 0.95, 0.5), with a pullback-level offset and frame noise; the truth is
  the ICC a 20,000-pullback cohort of the same case reads.

Each cohort of the first three gets the product's interval (what ``evaluate.py`` reports):
:func:`octseg.evaluate.stats.cluster_ratio_ci` (a t interval over pullbacks: the Dice CIs,
``bias_ci_pullbacks``, ``mae_ci_pullbacks``) or, for the sensitivity,
:func:`octseg.evaluate.stats.cluster_proportion_ci` (Wilson at the effective sample size, t on
pullbacks - 1 df: ``ci_pullbacks``), beside the symmetric t interval; and, as the baseline they
replaced in the fiftieth session, a percentile bootstrap that draws whole pullbacks with
replacement (``scipy.stats.bootstrap``); for the mean, also the per-frame t interval (``bias_ci``,
frames taken as independent). The ICC gets the product's ``icc_ci_pullbacks`` (a
delete-one-pullback jackknife), the bootstrap it replaced and the per-pair F-based ``icc_ci``.
Reported: the share of cohorts whose interval holds the true value (nominal 0.95) and the mean
width, over the cohorts with an interval of some width: where every pullback reads the same
(e.g. every malapposed strut found) a Dice or a bias interval has nothing to go by
(``evaluate.py`` reports the point itself), and the bootstrap and symmetric t give none. The
product's malapposed-share interval takes the cap of its effective sample size (the number of
struts) there since session 52, so its row is over every cohort.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from scipy import stats as sst

from octseg.evaluate.stats import (
    _cluster_sums,
    _icc_a1,
    cluster_proportion_ci,
    cluster_ratio_ci,
    icc_absolute_agreement,
    jackknife_icc_ci,
)

Cohort = tuple[np.ndarray, np.ndarray, np.ndarray, float]  # num, den, pullback of each, truth


def _ar1(rng: np.random.Generator, n: int, rho: float = 0.9) -> np.ndarray:
    """Unit-variance AR(1) noise: neighbouring frames nearly alike."""
    e = np.empty(n)
    e[0] = rng.normal()
    for i in range(1, n):
        e[i] = rho * e[i - 1] + np.sqrt(1 - rho**2) * rng.normal()
    return e


def draw_mean(rng: np.random.Generator, k: int) -> Cohort:
    """Frame differences: pullback effect N(0, 1) plus AR(1) noise; the true bias is 0."""
    ns = rng.integers(30, 150, k)
    d = np.concatenate([rng.normal() + _ar1(rng, n) for n in ns])
    return d, np.ones_like(d), np.repeat(np.arange(k), ns), 0.0


def draw_pooled_dice(rng: np.random.Generator, k: int, p: float = 0.75, conc: float = 15) -> Cohort:
    """Pooled Dice = sum(2 x intersection) / sum(pixels); pullback means from Beta(mean p)."""
    ns = rng.integers(30, 150, k)
    num, den = [], []
    for n, q in zip(ns, rng.beta(p * conc, (1 - p) * conc, k), strict=True):
        pixels = rng.lognormal(7, 0.6, n)
        num.append(np.clip(q + 0.08 * _ar1(rng, n), 0, 1) * pixels)
        den.append(pixels)
    return np.concatenate(num), np.concatenate(den), np.repeat(np.arange(k), ns), p


def draw_sensitivity(rng: np.random.Generator, k: int, p: float = 0.85, conc: float = 8) -> Cohort:
    """Malapposed struts found (0/1); each stent's chance from Beta(mean p)."""
    ns = rng.integers(3, 25, k)
    hits = [rng.random(n) < q for n, q in zip(ns, rng.beta(p * conc, (1 - p) * conc, k))]
    x = np.concatenate(hits).astype(float)
    return x, np.ones_like(x), np.repeat(np.arange(k), ns), p


def bootstrap_ci(num: np.ndarray, den: np.ndarray, g: np.ndarray, seed: int) -> list[float]:
    """The baseline: percentile bootstrap of sum(num) / sum(den) over whole pullbacks."""
    s_num, s_den = np.bincount(g, weights=num), np.bincount(g, weights=den)

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return a.sum(axis=axis) / b.sum(axis=axis)

    ci = sst.bootstrap(
        (s_num, s_den), ratio, paired=True, vectorized=True, n_resamples=1000,
        method="percentile", rng=np.random.default_rng(seed),
    ).confidence_interval  # fmt: skip
    return [float(ci.low), float(ci.high)]


def frames_t_ci(num: np.ndarray) -> list[float]:
    """Per-frame t interval of a mean (frames taken as independent: ``bias_ci``)."""
    half = sst.t.ppf(0.975, num.size - 1) * num.std(ddof=1) / np.sqrt(num.size)
    return [num.mean() - half, num.mean() + half]


def _binary(draw: Callable) -> bool:
    """Whether ``draw`` makes 0/1 outcomes (the malapposed share)."""
    return getattr(draw, "func", draw) is draw_sensitivity


def _product_ci(draw: Callable, num: np.ndarray, den: np.ndarray, g: np.ndarray) -> list:
    """The interval ``evaluate.py`` reports for this kind of statistic."""
    if draw is draw_mean:
        return cluster_ratio_ci(num, den, g, bounds=None)
    if _binary(draw):
        return cluster_proportion_ci(num, g)
    return cluster_ratio_ci(num, den, g)


def coverage(draw: Callable, k: int, reps: int, seed: int = 0, baselines: bool = True) -> dict:
    """Share of ``reps`` simulated cohorts of ``k`` pullbacks whose CI holds the truth, and mean
    width, per interval."""
    rng = np.random.default_rng([seed, k])
    binary = _binary(draw)
    hits: dict[str, list[tuple[bool, float]]] = {}
    for r in range(reps):
        num, den, g, truth = draw(rng, k)
        name = (
            "Wilson at n_eff over pullbacks (product)" if binary else "t over pullbacks (product)"
        )
        cis = {name: _product_ci(draw, num, den, g)}
        if baselines:
            cis["percentile bootstrap over pullbacks (before)"] = bootstrap_ci(num, den, g, r)
            if draw is draw_mean:
                cis["t over frames"] = frames_t_ci(num)
            if binary:
                cis["symmetric t over pullbacks"] = cluster_ratio_ci(num, den, g)
        for name, (lo, hi) in cis.items():
            if lo is not None and hi > lo:  # none, or zero width (every pullback alike)
                hits.setdefault(name, []).append((lo <= truth <= hi, hi - lo))
    return {n: (np.mean([h for h, _ in v]), np.mean([w for _, w in v])) for n, v in hits.items()}


DRAWS = {
    "mean": draw_mean,
    "pooled Dice": draw_pooled_dice,
    "sensitivity 0.85": partial(draw_sensitivity, p=0.85),
    "sensitivity 0.95": partial(draw_sensitivity, p=0.95),
}


# ICC scenarios: (slope of auto on manual, SD of a pullback's offset, SD of frame noise)
ICC_CASES = {
    "thickness-like ICC(A,1) (slope 0.7)": (0.7, 0.3, 0.4),
    "close ICC(A,1) (slope 0.95)": (0.95, 0.1, 0.15),
    "poor ICC(A,1) (slope 0.5)": (0.5, 0.5, 0.7),
}


def draw_pairs(
    rng: np.random.Generator, k: int, case: tuple[float, float, float] = (0.7, 0.3, 0.4)
) -> tuple[np.ndarray, ...]:
    """Paired readings (auto, manual, pullback of each) like a lesion's thickness per frame:
    the manual value varies between and within pullbacks; the automated one is ``slope`` x the
    manual, plus a pullback-level offset and its own frame noise (``case``)."""
    slope, offset_sd, noise_sd = case
    ns = rng.integers(30, 150, k)
    manual = np.concatenate([rng.normal() + 0.7 * _ar1(rng, n) for n in ns])
    offset = np.repeat(rng.normal(0, offset_sd, k), ns)
    auto = slope * manual + offset + noise_sd * np.concatenate([_ar1(rng, n) for n in ns])
    return auto, manual, np.repeat(np.arange(k), ns)


def population_icc(case: tuple[float, float, float], seed: int = 1, k: int = 20000) -> float:
    """The ICC(A,1) that a cohort of ``k`` pullbacks of ``case`` reads (the truth the intervals
    should hold; for the thickness-like case 0.840-0.846 over three seeds at 4,000 pullbacks, so
    about 0.001 at 20,000)."""
    auto, manual, _ = draw_pairs(np.random.default_rng(seed), k, case)
    return icc_absolute_agreement(auto, manual)["icc"]


def bootstrap_icc_ci(auto: np.ndarray, manual: np.ndarray, g: np.ndarray, seed: int) -> list:
    """The baseline: percentile bootstrap of ICC(A,1) over whole pullbacks (from per-pullback
    sums); none where over 5% of the resamples leave it undefined."""
    ac, mc = auto - manual.mean(), manual - manual.mean()
    per = _cluster_sums(np.stack([np.ones_like(ac), ac, mc, ac * ac, mc * mc, ac * mc], 1), g)
    k = per.shape[0]
    w = np.random.default_rng(seed).multinomial(k, np.full(k, 1.0 / k), size=1000)
    tot = w @ per
    v = np.minimum(_icc_a1(tot[:, 0], tot[:, 1:]), 1.0)
    if np.isfinite(v).mean() < 0.95:
        return [None, None]
    return list(np.percentile(v[np.isfinite(v)], [2.5, 97.5]))


def icc_coverage(
    k: int, reps: int, case: tuple, truth: float, seed: int = 0, baselines: bool = True
) -> dict:
    """As :func:`coverage`, for the ICC(A,1) of paired readings: the product's interval over
    pullbacks (``icc_ci_pullbacks``, a jackknife), the bootstrap it replaced (from 5 pullbacks,
    as it was reported) and the per-pair F-based interval (``icc_ci``)."""
    rng = np.random.default_rng([seed, k, 1])
    hits: dict[str, list[tuple[bool, float]]] = {}
    for r in range(reps):
        auto, manual, g = draw_pairs(rng, k, case)
        cis = {"jackknife over pullbacks (product)": jackknife_icc_ci(auto, manual, g)}
        if baselines:
            boot = bootstrap_icc_ci(auto, manual, g, r) if k >= 5 else [None, None]
            cis["percentile bootstrap over pullbacks (before)"] = boot
            cis["F-based over frames (icc_ci)"] = icc_absolute_agreement(auto, manual)["icc_ci"]
        for name, (lo, hi) in cis.items():
            if lo is not None and hi > lo:
                hits.setdefault(name, []).append((lo <= truth <= hi, hi - lo))
    return {n: (np.mean([h for h, _ in v]), np.mean([w for _, w in v])) for n, v in hits.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--pullbacks", type=int, nargs="+", default=[2, 3, 5, 8, 16, 24])
    ap.add_argument("--out", type=Path, help="also write the table here (markdown)")
    ap.add_argument(
        "--only", nargs="+", metavar="PREFIX",
        help="only the statistics whose name starts with one of these (e.g. sensitivity)",
    )  # fmt: skip
    args = ap.parse_args(argv)

    def wanted(name: str) -> bool:
        return not args.only or name.startswith(tuple(args.only))

    lines = [
        f"95% CI coverage over {args.reps} simulated cohorts per cell (nominal 0.95; mean width)",
        "",
        "| statistic | interval | " + " | ".join(f"{k} pullbacks" for k in args.pullbacks) + " |",
        "|---|---|" + "---|" * len(args.pullbacks),
    ]
    tables = {
        name: [coverage(draw, k, args.reps) for k in args.pullbacks]
        for name, draw in DRAWS.items()
        if wanted(name)
    }
    for name, case in filter(lambda item: wanted(item[0]), ICC_CASES.items()):
        truth = population_icc(case)
        tables[f"{name}, truth {truth:.3f}"] = [
            icc_coverage(k, args.reps, case, truth) for k in args.pullbacks
        ]
    for name, cells in tables.items():
        for method in dict.fromkeys(m for c in cells for m in c):
            row = " | ".join(
                f"{c[method][0]:.3f} ({c[method][1]:.3g})" if method in c else "none" for c in cells
            )
            lines.append(f"| {name} | {method} | {row} |")
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
