"""Agreement statistics between automated and manual measurements.

Everything returns plain dicts of Python floats/ints/None (never NaN), ready for ``metrics.json``.
Degenerate inputs are handled explicitly and explained in a ``notes`` list:

- ``n < 2``: no spread, so no limits of agreement, ICC or correlation (``None``); ``n < 3``: no
  ICC or correlation either (they need at least three pairs to mean anything).
- Identical inputs (every difference 0): bias 0, limits of agreement ``[0, 0]`` and ICC 1 with CI
  ``[1, 1]``. pingouin returns NaN there (0/0 in its ANOVA mean squares), so this case is set
  explicitly rather than taken from pingouin.
- Zero variance in one rater only (e.g. every manual value equal and the automated values not):
  the correlation is undefined (``None``) and so is an ICC that pingouin cannot compute.

Forms and methods (also stated in every result under ``"methods"`` of ``metrics.json``):

- Bland-Altman: bias = mean(auto - manual); limits of agreement = bias +- 1.96 SD of the
  differences; their 95% CIs are the approximate ones of Bland & Altman (1986, 1999):
  SE(bias) = SD/sqrt(n), SE(limit) = SD*sqrt(3/n), with Student's t on n-1 degrees of freedom.
- ICC: ``pingouin.intraclass_corr``, the row ICC(A,1) = two-way random effects, absolute
  agreement, single measure (McGraw & Wong ICC(A,1) = Shrout & Fleiss ICC(2,1)), with pingouin's
  F-based 95% CI (unrounded).
- Pearson and Spearman r with 95% CIs from ``pingouin.corr`` (Fisher z).
- Mean absolute error with a percentile bootstrap 95% CI (``scipy.stats.bootstrap``, seeded).
- Segmentation overlap (mean and pooled Dice): a 95% CI over pullbacks
  (:func:`cluster_ratio_ci`: cluster-robust CR1 variance, Student's t on pullbacks - 1 degrees
  of freedom), because neighbouring frames of one pullback are near duplicates: treating frames
  as independent would give an interval far too narrow. The share of malapposed struts found:
  Wilson's interval at the effective sample size that the same variance gives
  (:func:`cluster_proportion_ci`, the survey modified-Wilson interval), which stays inside
  [0, 1] near a share of 1.
- Bias, ICC(A,1) and MAE also get a 95% CI over pullbacks (:func:`cluster_agreement_ci`, keys
  ``*_ci_pullbacks``) when the pairs' pullbacks are given: bias and MAE (means of the
  differences and of their absolute values) the same cluster-robust t interval, the ICC a
  delete-one-pullback jackknife with t on pullbacks - 1 degrees of freedom
  (:func:`jackknife_icc_ci`). The F-based ICC CI and the t-based bias CI treat every frame as
  independent, so with many frames per pullback they are too narrow.
- Why these and not a percentile bootstrap over pullbacks (what ``evaluate.py`` reported until
  the forty-ninth session): with few pullbacks the bootstrap covers far less than 95%
  (``benchmarks/ci_coverage.py``, simulated pullbacks of correlated frames: a pooled Dice 0.49 at
  2 pullbacks, 0.81 at 5, 0.89 at 8, 0.92 at 16, the t interval 0.93, 0.92, 0.93, 0.95; an ICC
  of 0.85 0.71 at 5, 0.81 at 8, 0.87 at 16, the jackknife 0.94-0.95).
- Proportional bias (:func:`proportional_bias`): the least-squares line of the differences on
  the manual value, the reference (Krouwer 2008). A slope below 0 is a compression (small values
  read high, large ones low), a pattern that lowers an ICC while the bias stays near 0; an
  error-prone manual reading also pulls it below 0 (regression dilution). Its 95% CI over pairs
  (OLS, t) and, with the pairs' pullbacks, over pullbacks (CR1, t on pullbacks - 1 df; from 5
  pullbacks).
- Cohen's kappa from ``sklearn.metrics.cohen_kappa_score`` (unweighted, linear- or
  quadratic-weighted as named), its asymptotic 95% CI from ``statsmodels`` ``cohens_kappa``.
- Proportions (precision, recall, sensitivity, ...) with Wilson 95% CIs (statsmodels).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

ICC_FORM = (
    "ICC(A,1): two-way random effects, absolute agreement, single measure "
    "(McGraw & Wong ICC(A,1) = Shrout & Fleiss ICC(2,1)); pingouin.intraclass_corr"
)
BA_METHOD = (
    "Bland-Altman on auto - manual: bias = mean difference, limits = bias +- 1.96 SD; "
    "95% CIs: SE(bias) = SD/sqrt(n), SE(limit) = SD*sqrt(3/n), t(n-1)"
)
MAE_METHOD = "mean |auto - manual|, 95% CI by percentile bootstrap (scipy.stats.bootstrap, seeded)"
CORR_METHOD = "pingouin.corr (Pearson; Spearman), 95% CI by Fisher z"
KAPPA_METHOD = (
    "sklearn.metrics.cohen_kappa_score (weights None | 'linear' | 'quadratic' as named); "
    "95% CI: asymptotic, statsmodels.stats.inter_rater.cohens_kappa"
)
PROPORTION_METHOD = "Wilson score 95% CI (statsmodels proportion_confint)"
CLUSTER_METHOD = (
    "segmentation Dice (mean over frames; pooled over pixels): 95% CI over pullbacks, "
    "cluster-robust (CR1 sandwich of the ratio of sums, statsmodels WLS cov_type='cluster') with "
    "Student's t on pullbacks - 1 df, clipped to [0, 1]; non-finite values dropped; none with "
    "fewer than 2 pullbacks; [r, r] where every pullback reads the same r (no spread to go by, "
    "not certainty)"
)
PROPORTION_CLUSTER_METHOD = (
    "malapposed struts found (struts.malapposed_struts.sensitivity.ci_pullbacks): 95% CI over "
    "pullbacks, Wilson's interval at the effective sample size p(1-p)/V (V: the CR1 variance of "
    "the share over pullbacks; capped at the number of struts) with Student's t on pullbacks - 1 "
    "df in place of z (the survey modified-Wilson interval); where every pullback has the same "
    "share (all found, say) at the number of struts, the cap; none with fewer than 2 pullbacks"
)

PROPORTIONAL_METHOD = (
    "proportional bias: ordinary least-squares line of auto - manual on manual (the reference; "
    "Krouwer 2008); below 0: small values read high, large ones low (a manual reading's own "
    "error also pulls it below 0); slope 95% CI over pairs (t on n - 2 df) and over pullbacks "
    "(cluster-robust CR1, statsmodels OLS cov_type='cluster', t on pullbacks - 1 df; from 5 "
    "pullbacks); none with fewer than 3 pairs or manual values that do not vary"
)
PULLBACK_CI_METHOD = (
    "bias and MAE: 95% CI over pullbacks, cluster-robust (CR1) with Student's t on pullbacks - 1 "
    "df (from 2 pullbacks); ICC(A,1): 95% CI by the delete-one-pullback jackknife, t on "
    "pullbacks - 1 df, symmetric about the ICC and clipped to [-1, 1], so a limit of 1 is a "
    "clip (from 3 pullbacks; none where the ICC of a left-out set is undefined)"
)

METHODS: dict[str, str] = {
    "bland_altman": BA_METHOD,
    "icc": ICC_FORM,
    "correlation": CORR_METHOD,
    "mae": MAE_METHOD,
    "kappa": KAPPA_METHOD,
    "proportions": PROPORTION_METHOD,
    "segmentation_ci": CLUSTER_METHOD,
    "malapposed_ci_pullbacks": PROPORTION_CLUSTER_METHOD,
    "agreement_ci_pullbacks": PULLBACK_CI_METHOD,
    "proportional_bias": PROPORTIONAL_METHOD,
}


def _f(x: Any) -> float | None:
    """Python float, or None for None/NaN/inf."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _ci(lo: Any, hi: Any) -> list[float | None]:
    return [_f(lo), _f(hi)]


@contextlib.contextmanager
def _pingouin_unrounded() -> Iterator[Any]:
    """pingouin rounds its CI95 column to 2 decimals by default; switch that off meanwhile."""
    import pingouin

    saved = dict(pingouin.options)
    try:
        for key in [k for k in pingouin.options if k.startswith("round.")]:
            del pingouin.options[key]
        pingouin.options["round"] = None
        yield pingouin
    finally:
        pingouin.options.clear()
        pingouin.options.update(saved)


def _pairs(auto: Sequence[float], manual: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(auto, dtype=float).reshape(-1)
    m = np.asarray(manual, dtype=float).reshape(-1)
    if a.shape != m.shape:
        raise ValueError(f"auto and manual have different lengths ({a.size} vs {m.size})")
    keep = np.isfinite(a) & np.isfinite(m)
    return a[keep], m[keep]


def bland_altman(auto: Sequence[float], manual: Sequence[float]) -> dict[str, Any]:
    a, m = _pairs(auto, manual)
    from scipy import stats

    d = a - m
    n = int(d.size)
    out: dict[str, Any] = {
        "n": n,
        "bias": None,
        "bias_ci": [None, None],
        "sd_diff": None,
        "loa_lower": None,
        "loa_upper": None,
        "loa_lower_ci": [None, None],
        "loa_upper_ci": [None, None],
    }
    if n == 0:
        return out
    bias = float(d.mean())
    out["bias"] = bias
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd < 1e-12 * max(1.0, float(np.abs(d).max())):
        sd = 0.0
    t = float(stats.t.ppf(0.975, n - 1))
    se_bias = sd / math.sqrt(n)
    se_loa = sd * math.sqrt(3.0 / n)
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    out.update(
        sd_diff=sd,
        bias_ci=_ci(bias - t * se_bias, bias + t * se_bias),
        loa_lower=lo,
        loa_upper=hi,
        loa_lower_ci=_ci(lo - t * se_loa, lo + t * se_loa),
        loa_upper_ci=_ci(hi - t * se_loa, hi + t * se_loa),
    )
    return out


def icc_absolute_agreement(auto: Sequence[float], manual: Sequence[float]) -> dict[str, Any]:
    """ICC(A,1) of two raters over paired targets, with its 95% CI and a note if degenerate."""
    a, m = _pairs(auto, manual)
    n = int(a.size)
    res: dict[str, Any] = {"icc": None, "icc_ci": [None, None], "icc_form": "ICC(A,1)"}
    if n < 3:
        res["icc_note"] = f"no ICC: n = {n} < 3"
        return res
    if np.array_equal(a, m):
        res.update(icc=1.0, icc_ci=[1.0, 1.0])
        res["icc_note"] = "ICC set to 1 (pingouin: NaN for 0/0)"
        return res
    scale = max(float(np.abs(a).max()), float(np.abs(m).max()), 1e-300)
    flat = [name for name, x in (("automated", a), ("manual", m)) if np.ptp(x) <= 1e-9 * scale]
    if flat:
        res["icc_note"] = f"no ICC: {' and '.join(flat)} values do not vary"
        return res
    import pandas as pd

    df = pd.DataFrame(
        {
            "target": np.r_[np.arange(n), np.arange(n)],
            "rater": ["auto"] * n + ["manual"] * n,
            "rating": np.r_[a, m],
        }
    )
    with _pingouin_unrounded() as pg, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(df, targets="target", raters="rater", ratings="rating")
    row = table[table["Type"].isin(["ICC(A,1)", "ICC2"])].iloc[0]
    icc = _f(row["ICC"])
    ci = row["CI95"]
    res["icc"] = icc
    res["icc_ci"] = _ci(ci[0], ci[1]) if icc is not None else [None, None]
    if icc is None:
        res["icc_note"] = "no ICC: no variance between targets"
    return res


def correlation(auto: Sequence[float], manual: Sequence[float]) -> dict[str, Any]:
    a, m = _pairs(auto, manual)
    n = int(a.size)
    res: dict[str, Any] = {
        "pearson_r": None,
        "pearson_ci": [None, None],
        "spearman_r": None,
        "spearman_ci": [None, None],
    }
    if n < 3:
        res["correlation_note"] = f"no r: n = {n} < 3"
        return res
    if np.ptp(a) == 0 or np.ptp(m) == 0:
        res["correlation_note"] = "no r: a rater does not vary"
        return res
    with _pingouin_unrounded() as pg, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("pearson", "spearman"):
            t = pg.corr(a, m, method=method)
            r = _f(t["r"].iloc[0])
            ci = t["CI95"].iloc[0]
            if r is not None and abs(r) >= 1.0 - 1e-12:
                ci = [r, r]  # Fisher z is infinite at |r| = 1
            res[f"{method}_r"] = r
            res[f"{method}_ci"] = _ci(ci[0], ci[1]) if r is not None else [None, None]
    return res


def mean_absolute_error(
    auto: Sequence[float], manual: Sequence[float], n_resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    a, m = _pairs(auto, manual)
    err = np.abs(a - m)
    n = int(err.size)
    if n == 0:
        return {"mae": None, "mae_ci": [None, None]}
    mae = float(err.mean())
    if n < 2 or np.ptp(err) == 0:
        return {"mae": mae, "mae_ci": [mae, mae] if n >= 2 else [None, None]}
    from scipy import stats

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = stats.bootstrap(
            (err,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=0.95,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    ci = boot.confidence_interval
    return {"mae": mae, "mae_ci": _ci(ci.low, ci.high)}


def _cluster_index(clusters: Sequence[Any]) -> np.ndarray:
    """Each observation's cluster as 0..K-1; clusters are named by their string (so ``1`` and
    ``"1"`` are one cluster), in sorted order."""
    _, inv = np.unique(np.asarray([str(c) for c in clusters], dtype=str), return_inverse=True)
    return inv.reshape(-1)


def _cluster_sums(cols: np.ndarray, clusters: Sequence[Any]) -> np.ndarray:
    """Per-cluster sums ``(K, C)`` of the observations' columns ``cols`` ``(N, C)``."""
    inv = _cluster_index(clusters)
    return np.stack([np.bincount(inv, weights=c) for c in cols.T], 1)


def cluster_ratio_ci(
    num: Sequence[float],
    den: Sequence[float],
    clusters: Sequence[Any],
    min_clusters: int = 2,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> list[float | None]:
    """95% CI of ``sum(num) / sum(den)``, cluster-robust over ``clusters``, Student's t on
    K - 1 degrees of freedom (K = clusters with a denominator).

    Each element is one observation (a frame) of the cluster (its pullback) named beside it. The
    ratio is the weighted least-squares mean of ``num / den`` with weights ``den``; its variance
    is the CR1 sandwich over clusters (statsmodels ``WLS`` with ``cov_type="cluster"``: the sum
    over clusters of (``num_k - ratio * den_k``)², times K / (K - 1), over ``sum(den)``²), so
    near-duplicate neighbours inside a cluster do not narrow the interval. A mean over frames is
    ``num`` = the values, ``den`` = 1; a pooled Dice is ``num`` = 2 x intersection, ``den`` = the
    two masks' pixels. The limits are clipped to ``bounds`` (a proportion's, by default).
    Observations with a non-finite value or ``den <= 0`` are left out (and a cluster of only
    those does not count). ``[None, None]`` with fewer than ``min_clusters`` (at least 2)
    clusters left; ``[r, r]`` where every cluster has the same ratio ``r``.

    Why not a percentile bootstrap over clusters: with few clusters it covers far less than 95%
    (0.49 at 2 pullbacks, 0.81 at 5, 0.89 at 8, for a pooled Dice; this interval 0.93, 0.92,
    0.93: ``benchmarks/ci_coverage.py``)."""
    nu, de = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if not (nu.shape == de.shape == (len(clusters),)):
        raise ValueError("num, den and clusters must have one entry per observation")
    keep = (de > 0) & np.isfinite(de) & np.isfinite(nu)
    groups = _cluster_index([c for c, k in zip(clusters, keep, strict=True) if k])
    nu, de = nu[keep], de[keep]
    if groups.size == 0 or groups.max() + 1 < max(2, min_clusters):
        return [None, None]
    per = np.bincount(groups, weights=nu) / np.bincount(groups, weights=de)
    if np.ptp(per) <= 1e-12 * max(1.0, float(np.abs(per).max())):  # every cluster alike
        lo = hi = float(nu.sum() / de.sum())
    else:
        lo, hi = _cr1_fit(nu / de, np.ones_like(de), groups, de).conf_int(alpha=0.05)[0]
    if bounds is not None:
        lo, hi = np.clip([lo, hi], *bounds)
    return _ci(lo, hi)


def _cr1_fit(y: np.ndarray, x: np.ndarray, groups: np.ndarray, w: Any = 1.0) -> Any:
    """statsmodels' weighted least-squares fit of ``y`` on the design ``x`` (a column of ones:
    the ``w``-weighted mean) with the CR1 sandwich over ``groups`` (its cluster correction is
    K / (K - 1) x (N - 1) / (N - p) for p regressors, and ``conf_int`` uses K - 1 degrees of
    freedom with ``use_t``)."""
    from statsmodels.regression.linear_model import WLS

    return WLS(y, x, weights=w).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)


def cluster_proportion_ci(hits: Sequence[float], clusters: Sequence[Any]) -> list[float | None]:
    """95% CI of a share of 0/1 outcomes (``hits``) grouped in ``clusters``: Wilson's interval
    at the effective sample size ``n_eff = p (1 - p) / V`` (``V``: the CR1 variance of the share
    over clusters, as in :func:`cluster_ratio_ci`), with Student's t on K - 1 degrees of freedom
    in place of z; statsmodels ``proportion_confint``. This is the survey "modified Wilson"
    interval (Wilson at the degrees-of-freedom-adjusted effective sample size; Korn-Graubard is
    its Clopper-Pearson counterpart). ``n_eff`` is capped at n: nearly equal shares in every
    cluster give a tiny ``V``, which would otherwise claim thousands of struts' certainty.
    Unlike the symmetric t interval it stays inside [0, 1] and is longer on the side away from
    0 or 1: at a share of 0.95 the symmetric t interval held the truth in 0.85-0.90 of simulated
    cohorts of 8-24 pullbacks, this one in 0.93-0.97 (``benchmarks/ci_coverage.py``).

    Where every cluster has the same share (all hits, none, or e.g. 2 of 4 in each) ``V`` is 0:
    the clusters show no spread, so ``n_eff`` takes its cap, n, which nearly equal shares
    approach anyway (19/20, 20/21, 21/22 above), and the t on K - 1 degrees of freedom still
    widens it for few clusters: 12 of 12 struts in 3 stents reads 0.39-1.00 (11 of 12, one stent
    missing one: 0.31-1.00), so the interval does not jump down at that boundary. It is not
    monotone in general: one more hit that spreads the clusters' shares can widen it.
    ``[None, None]`` with fewer than 2 clusters."""
    x = np.asarray(hits, dtype=float).reshape(-1)
    if x.shape != (len(clusters),):
        raise ValueError("hits and clusters must have one entry per observation")
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("hits must be 0 or 1")
    groups = _cluster_index(clusters)
    if x.size == 0 or groups.max() + 1 < 2:
        return [None, None]
    from scipy import stats as sst
    from statsmodels.stats.proportion import proportion_confint

    p, k = float(x.mean()), int(groups.max()) + 1
    share = np.bincount(groups, weights=x) / np.bincount(groups)
    if np.ptp(share) == 0:  # no spread between the clusters: the cap
        n_eff = float(x.size)
    else:
        var = float(_cr1_fit(x, np.ones_like(x), groups).bse[0]) ** 2
        n_eff = min(float(x.size), p * (1 - p) / var)
    alpha = 2 * float(sst.norm.sf(sst.t.ppf(0.975, k - 1)))  # z of that alpha = t(0.975, K - 1)
    return _ci(*proportion_confint(p * n_eff, n_eff, alpha=alpha, method="wilson"))


def _icc_a1(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ICC(A,1) of two raters from pair counts ``n`` and sums ``s`` = (a, m, a², m², a·m) along
    the last axis (the two-way ANOVA mean squares of McGraw & Wong); NaN where undefined (a
    rater whose values do not vary, as :func:`icc_absolute_agreement` leaves it)."""
    sa, sm, saa, smm, sam = np.moveaxis(s, -1, 0)
    with np.errstate(all="ignore"):
        scale = np.maximum(np.maximum(saa, smm) / n, 1e-300)
        flat = np.minimum(saa / n - (sa / n) ** 2, smm / n - (sm / n) ** 2) <= 1e-12 * scale
        g = (sa + sm) / (2 * n)
        ssr = (saa + smm + 2 * sam) / 2 - 2 * n * g**2  # 2 x sum of (pair mean - g)²
        ssc = ((sa - sm) ** 2) / (2 * n)  # n x sum over the two raters of (rater mean - g)²
        sse = saa + smm - 2 * n * g**2 - ssr - ssc
        msr, msc, mse = ssr / (n - 1), ssc, sse / (n - 1)
        return np.where(flat, np.nan, (msr - mse) / (msr + mse + 2 * (msc - mse) / n))


MIN_PULLBACKS_ICC = 3  # the ICC's jackknife over pullbacks: each left-out fit keeps two


def _finite_pairs(
    auto: Sequence[float], manual: Sequence[float], clusters: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """The pairs (and their clusters) with both values finite."""
    a = np.asarray(auto, dtype=float).reshape(-1)
    m = np.asarray(manual, dtype=float).reshape(-1)
    if not (a.shape == m.shape == (len(clusters),)):
        raise ValueError("auto, manual and clusters must have one entry per pair")
    keep = np.isfinite(a) & np.isfinite(m)
    return a[keep], m[keep], [c for c, k in zip(clusters, keep, strict=True) if k]


def _leave_one_out_iccs(
    a: np.ndarray, m: np.ndarray, clusters: Sequence[Any]
) -> tuple[float, np.ndarray, list[str]] | None:
    """ICC(A,1) of the (finite) pairs, the ICC with each cluster left out (per-cluster sums,
    :func:`_icc_a1`) and the clusters' names in that order; None with fewer than 3 pairs or
    :data:`MIN_PULLBACKS_ICC` clusters, or where the ICC or any left-out ICC is undefined (a
    rater whose values vary in one cluster only)."""
    names = sorted({str(c) for c in clusters})  # the order of _cluster_index
    if a.size < 3 or len(names) < MIN_PULLBACKS_ICC:
        return None
    shift = (a.mean() + m.mean()) / 2  # centred sums: a common offset costs no precision
    ac, mc = a - shift, m - shift
    per = _cluster_sums(
        np.stack([np.ones_like(ac), ac, mc, ac * ac, mc * mc, ac * mc], 1), clusters
    )
    tot = per.sum(axis=0)
    icc, loo = _icc_a1(tot[0], tot[1:]), _icc_a1(tot[0] - per[:, 0], tot[1:] - per[:, 1:])
    if not (np.all(np.isfinite(loo)) and np.isfinite(icc)):
        return None
    return float(icc), loo, names


def _jackknife_ci(loo: tuple[float, np.ndarray, list[str]] | None) -> list[float | None]:
    """The jackknife CI of :func:`jackknife_icc_ci` from :func:`_leave_one_out_iccs`."""
    if loo is None:
        return [None, None]
    from scipy import stats as sst

    icc, each, _ = loo
    k = each.size
    se = math.sqrt((k - 1) / k * float(((each - each.mean()) ** 2).sum()))
    half = float(sst.t.ppf(0.975, k - 1)) * se
    return _ci(*np.clip([icc - half, icc + half], -1.0, 1.0))


def _most_influential(
    loo: tuple[float, np.ndarray, list[str]] | None, clusters: Sequence[Any]
) -> dict[str, Any] | None:
    """:func:`most_influential_cluster` from :func:`_leave_one_out_iccs`."""
    if loo is None:
        return None
    icc, each, names = loo
    i = int(np.argmax(each))
    if not each[i] > icc + 1e-9:
        return None
    n_pairs = sum(str(c) == names[i] for c in clusters)
    return {"pullback": names[i], "icc_without": _f(each[i]), "n_pairs": n_pairs}


def jackknife_icc_ci(
    auto: Sequence[float], manual: Sequence[float], clusters: Sequence[Any]
) -> list[float | None]:
    """95% CI of ICC(A,1) by the delete-one-cluster jackknife: its standard error from the K
    leave-one-cluster-out ICCs (per-cluster sums, :func:`_icc_a1`), Student's t on K - 1
    degrees of freedom about the full ICC, clipped to [-1, 1]. ``None`` with fewer than
    :data:`MIN_PULLBACKS_ICC` clusters or where the ICC of any left-out set is undefined (a rater
    whose values vary in one cluster only). With few pullbacks it covers about 95% where a
    percentile bootstrap over pullbacks did not (0.71 at 5 pullbacks, 0.87 at 16:
    ``benchmarks/ci_coverage.py``). Non-finite pairs are dropped."""
    a, m, clusters = _finite_pairs(auto, manual, clusters)
    return _jackknife_ci(_leave_one_out_iccs(a, m, clusters))


def most_influential_cluster(
    auto: Sequence[float], manual: Sequence[float], clusters: Sequence[Any]
) -> dict[str, Any] | None:
    """The cluster (pullback) that lowers ICC(A,1) most, i.e. whose leaving out raises it most,
    and the ICC without it: ``{"pullback", "icc_without", "n_pairs"}``; one hard lesion can
    carry a cohort's ICC, and this names it. ``None`` where leaving out no cluster raises the
    ICC (by more than 1e-9: identical readings, say), with fewer than
    :data:`MIN_PULLBACKS_ICC` clusters, or where the ICC or any left-out ICC is undefined.
    Non-finite pairs are dropped."""
    a, m, clusters = _finite_pairs(auto, manual, clusters)
    return _most_influential(_leave_one_out_iccs(a, m, clusters), clusters)


def cluster_agreement_ci(
    auto: Sequence[float], manual: Sequence[float], clusters: Sequence[Any]
) -> dict[str, Any]:
    """95% CIs over ``clusters`` (each pair's pullback) of the bias and the MAE (cluster-robust,
    t on K - 1 degrees of freedom: :func:`cluster_ratio_ci` of the differences and of their
    absolute values; from 2 clusters) and of ICC(A,1) (:func:`jackknife_icc_ci`; from 3).

    Pairs weigh equally, as in the point estimates; near-duplicate frames of one pullback do not
    narrow the intervals. These replaced a percentile bootstrap over pullbacks (until the
    forty-ninth session), which covers far less than 95% with few pullbacks: 0.81 at 5 and 0.87
    at 8 for a mean, 0.71 and 0.81 for an ICC of 0.85 (these intervals 0.93-0.95,
    ``benchmarks/ci_coverage.py``). Non-finite pairs are dropped; ``None`` CIs with too few
    clusters or fewer than three pairs."""
    a, m, kept = _finite_pairs(auto, manual, clusters)
    out: dict[str, Any] = {"n_pullbacks": len({str(c) for c in kept})}
    names = ("bias_ci_pullbacks", "icc_ci_pullbacks", "mae_ci_pullbacks")
    out.update({name: [None, None] for name in names})
    out["icc_most_influential"] = None
    if a.size < 3:
        return out
    ones = np.ones_like(a)
    out["bias_ci_pullbacks"] = cluster_ratio_ci(a - m, ones, kept, bounds=None)
    out["mae_ci_pullbacks"] = cluster_ratio_ci(np.abs(a - m), ones, kept, bounds=(0, math.inf))
    loo = _leave_one_out_iccs(a, m, kept)  # once for the jackknife and the influence
    out["icc_ci_pullbacks"] = _jackknife_ci(loo)
    out["icc_most_influential"] = _most_influential(loo, kept)
    if np.array_equal(a, m) and out["n_pullbacks"] >= MIN_PULLBACKS_ICC:
        out["icc_ci_pullbacks"] = [1.0, 1.0]
    return out


MIN_PULLBACKS_SLOPE = 5  # the slope's CR1 interval: with 3-4 pullbacks it can come out narrower
# than the interval over pairs (two parameters fitted from so few clusters)


def proportional_bias(
    auto: Sequence[float], manual: Sequence[float], clusters: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The least-squares line of ``auto - manual`` on ``manual``: ``proportional_slope`` (a
    difference per unit of the measurement, so dimensionless) and ``proportional_intercept``,
    the slope's 95% CI over pairs (``proportional_slope_ci``, t on n - 2 df) and, with
    ``clusters`` (each pair's pullback), over pullbacks (``proportional_slope_ci_pullbacks``,
    CR1 with t on K - 1 df, from :data:`MIN_PULLBACKS_SLOPE` pullbacks).

    The manual value is the x axis because it is the reference here (Krouwer 2008: against the
    pair mean, as in Bland & Altman 1999's plot, the slope is 2 (var_a - var_m) / var(a + m),
    near 0 whenever both sides vary alike, whatever the agreement). A slope below 0 is a
    compression: small values read high, large ones low. If the manual readings carry their own
    error (e), the slope is pulled below 0 by about var(e) / var(manual) (regression dilution):
    with a reference that is exact (hybrid truth) it is not. Non-finite pairs are dropped;
    everything None with fewer than 3 pairs or manual values that do not vary."""
    from statsmodels.regression.linear_model import OLS

    names = ("proportional_slope_ci", "proportional_slope_ci_pullbacks")
    out: dict[str, Any] = {"proportional_slope": None, "proportional_intercept": None}
    out.update({name: [None, None] for name in names})
    if clusters is None:
        (a, m), kept = _pairs(auto, manual), None
    else:
        a, m, kept = _finite_pairs(auto, manual, clusters)
    if a.size < 3 or np.ptp(m) <= 1e-12 * max(1.0, float(np.abs(m).max())):
        return out
    x = np.column_stack([np.ones_like(m), m])
    fit = OLS(a - m, x).fit()
    out["proportional_intercept"], out["proportional_slope"] = (_f(v) for v in fit.params)
    out["proportional_slope_ci"] = _ci(*fit.conf_int(alpha=0.05)[1])
    groups = _cluster_index(kept) if kept is not None else None
    if groups is not None and groups.max() + 1 >= MIN_PULLBACKS_SLOPE:
        robust = _cr1_fit(a - m, x, groups)
        out["proportional_slope_ci_pullbacks"] = _ci(*robust.conf_int(alpha=0.05)[1])
    return out


def continuous_agreement(
    auto: Sequence[float],
    manual: Sequence[float],
    n_resamples: int = 2000,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """All continuous-agreement statistics for paired values (non-finite pairs dropped); with
    ``clusters`` (each pair's pullback) also the CIs over pullbacks (:func:`cluster_agreement_ci`)."""
    if clusters is None:
        (a, m), kept = _pairs(auto, manual), None
    else:
        a, m, kept = _finite_pairs(auto, manual, clusters)
    out: dict[str, Any] = {
        "n": int(a.size),
        "mean_auto": _f(a.mean()) if a.size else None,
        "mean_manual": _f(m.mean()) if m.size else None,
    }
    out.update(bland_altman(a, m))
    out.update(icc_absolute_agreement(a, m))
    out.update(correlation(a, m))
    out.update(mean_absolute_error(a, m, n_resamples=n_resamples, seed=seed))
    out.update(proportional_bias(a, m, kept))
    notes = [out.pop(k) for k in ("icc_note", "correlation_note") if k in out]
    if out["n"] and out["bias"] == 0.0 and out.get("sd_diff") == 0.0:
        notes.insert(0, "identical inputs")
    out["notes"] = notes
    if kept is not None:
        out.update(cluster_agreement_ci(a, m, kept))
        if out["icc"] is None:  # as undefined over the left-out sets as over all the pairs
            out["icc_ci_pullbacks"] = [None, None]
    return out


def proportion(k: int, n: int) -> dict[str, Any]:
    """k/n with a Wilson 95% CI; None when n == 0."""
    if n <= 0:
        return {"value": None, "ci": [None, None], "k": int(k), "n": int(n)}
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return {"value": k / n, "ci": _ci(lo, hi), "k": int(k), "n": int(n)}


def detection(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 of a detector (matched pairs = true positives)."""
    prec = proportion(tp, tp + fp)
    rec = proportion(tp, tp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": prec, "recall": rec, "f1": f1}


def kappa(
    auto: Sequence[Any],
    manual: Sequence[Any],
    labels: Sequence[Any] | None = None,
    weights: str | None = None,
) -> dict[str, Any]:
    """Cohen's kappa (sklearn) with an asymptotic 95% CI (statsmodels) and % agreement.

    ``labels`` fixes the category order (needed for weighted kappa: weights are distances in
    this order, e.g. calcium score points 0..4).
    """
    a = list(auto)
    m = list(manual)
    n = len(a)
    out: dict[str, Any] = {
        "n": n,
        "weights": weights or "none",
        "agreement": None,
        "kappa": None,
        "kappa_ci": [None, None],
    }
    if n == 0:
        return out
    cats = list(labels) if labels is not None else sorted(set(a) | set(m), key=str)
    out["agreement"] = float(np.mean([x == y for x, y in zip(a, m)]))
    table = _confusion(a, m, cats)
    out["confusion"] = {
        "labels": [c if isinstance(c, (int, str)) else str(c) for c in cats],
        "rows_auto_cols_manual": table.tolist(),
    }
    used = set(a) | set(m)
    if len(used) < 2:
        out["note"] = f"κ undefined: one category only ({next(iter(used))!r}) on both sides"
        return out
    from sklearn.metrics import cohen_kappa_score

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = _f(cohen_kappa_score(a, m, labels=cats, weights=weights))
    out["kappa"] = k
    if k is None:
        out["note"] = "kappa undefined (expected agreement 1)"
        return out
    out["kappa_ci"] = _kappa_ci(table, weights, k, out["kappa_ci"])
    return out


def _confusion(a: list[Any], m: list[Any], cats: list[Any]) -> np.ndarray:
    """Counts of (auto, manual) category pairs: rows automated, columns manual."""
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)), dtype=np.int64)
    for x, y in zip(a, m):
        table[index[x], index[y]] += 1
    return table


def _kappa_ci(
    table: np.ndarray, weights: str | None, k: float, default: list[float | None]
) -> list[float | None]:
    """Asymptotic 95% CI of kappa ``k`` (statsmodels, on the confusion ``table``) where its
    kappa is the same; [1, 1] at perfect agreement; ``default`` where statsmodels fails (the
    CI is a courtesy; the value stands without it)."""
    ci = default
    try:
        from statsmodels.stats.inter_rater import cohens_kappa

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cohens_kappa(table, wt=weights if weights else None)
        if abs(float(res.kappa) - k) < 1e-9:  # same kappa, so its CI applies
            lo, hi = _f(res.kappa_low), _f(res.kappa_upp)
            if lo is not None and hi is not None and hi - lo < 1e-12 and k < 1.0 - 1e-12:
                lo = hi = None  # zero standard error at kappa < 1: too few items for a CI
            ci = [None if lo is None else max(-1.0, lo), None if hi is None else min(1.0, hi)]
        if k >= 1.0 - 1e-12:
            ci = [1.0, 1.0]
    except Exception:
        pass
    return ci


def binary_classification(auto: Sequence[bool], manual: Sequence[bool]) -> dict[str, Any]:
    """Sensitivity / specificity of ``auto`` against ``manual`` (the reference) and kappa."""
    a = np.asarray(auto, dtype=bool)
    m = np.asarray(manual, dtype=bool)
    tp = int(np.sum(a & m))
    tn = int(np.sum(~a & ~m))
    fp = int(np.sum(a & ~m))
    fn = int(np.sum(~a & m))
    k = kappa(a.tolist(), m.tolist(), labels=[False, True])
    return {
        "n": int(a.size),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "sensitivity": proportion(tp, tp + fn),
        "specificity": proportion(tn, tn + fp),
        "agreement": k["agreement"],
        "kappa": k["kappa"],
        "kappa_ci": k["kappa_ci"],
        **({"note": k["note"]} if "note" in k else {}),
    }
