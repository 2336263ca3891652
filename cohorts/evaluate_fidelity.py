"""Fidelity of synthetic patients: how closely they resemble the real ones (used by :mod:`cohorts.evaluate`).

Everything here compares one-row-per-patient *patient-level features* (:func:`patient_features`):

* the baseline covariates (numeric as float, categorical as text with a ``"(missing)"`` level);
* outcome summaries: tte ``time`` and ``event`` (numeric); continuous ``value`` (numeric); binary ``value``
  (categorical); longitudinal ``first_<value>``, ``last_<value>`` (first / last observed value),
  ``slope_<value>`` (individual OLS slope of value on visit time, NaN with fewer than two distinct visit times)
  and ``n_visits`` (number of observed values).

Metrics (each defined precisely in its function's docstring):

* per baseline column: two-sample Kolmogorov-Smirnov statistic (numeric, observed values) or total-variation
  distance (categorical, missing as a level) -- :func:`marginal_distances`;
* association matrices (Spearman / Cramér's V / correlation ratio) and their mean absolute difference --
  :func:`association_matrix`, :func:`association_difference`;
* detection ROC AUC of a classifier separating real from synthetic patients -- :func:`detection_auc`;
* Kaplan-Meier sup and integrated distance (:func:`km_comparison`), per-visit mean/SD and slope distribution
  (:func:`trajectory_comparison`), continuous/binary outcome distance (:func:`outcome_comparison`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight

from cohorts.schema import CohortSchema

__all__ = ["MISSING", "patient_features", "ols_slopes", "ks_statistic", "tv_distance", "marginal_distances",
           "cramers_v", "correlation_ratio", "association_matrix", "association_difference", "detection_auc",
           "KMComparison", "km_comparison", "TrajectoryComparison", "trajectory_comparison",
           "OutcomeComparison", "outcome_comparison", "positive_level", "DETECTION_MODEL"]

MISSING = "(missing)"
#: two-sample KS critical value constant at the 5 % level, c = sqrt(-ln(0.025) / 2)
_KS_C05 = math.sqrt(-math.log(0.025) / 2)
DETECTION_MODEL = ("sklearn HistGradientBoostingClassifier (native categorical splits, max_iter=100, "
                   "learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=10), stratified 5-fold CV")


# ------------------------------------------------------------------------------------------ features
def _as_levels(s: pd.Series) -> pd.Series:
    """Categorical values as text; numbers written without a trailing ``.0``; missing -> ``"(missing)"``."""
    s = s.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = pd.to_numeric(s, errors="coerce").astype(float)
        return pd.Series([MISSING if np.isnan(x) else np.format_float_positional(x, trim="-") for x in v],
                         dtype="string")
    return s.astype("string").fillna(MISSING)


def ols_slopes(data: pd.DataFrame, id: str, visit: str, value: str) -> pd.Series:
    """Per patient: OLS slope of ``value`` on ``visit``, sum((t - t_bar)(y - y_bar)) / sum((t - t_bar)^2).

    Rows with a missing visit or value are dropped; NaN for patients with fewer than two distinct visit times.
    Indexed by patient id (order of first appearance).
    """
    d = pd.DataFrame({"id": data[id].to_numpy(), "t": pd.to_numeric(data[visit], errors="coerce").to_numpy(float),
                      "y": pd.to_numeric(data[value], errors="coerce").to_numpy(float)}).dropna()
    g = d.groupby("id", sort=False)
    tc = d["t"] - g["t"].transform("mean")
    yc = d["y"] - g["y"].transform("mean")
    sxx = (tc * tc).groupby(d["id"], sort=False).sum()
    sxy = (tc * yc).groupby(d["id"], sort=False).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sxy / sxx
    return slope.where(sxx > 1e-12 * (1 + sxx.abs().max())).astype(float)


def patient_features(data: pd.DataFrame, schema: CohortSchema) -> pd.DataFrame:
    """One row per patient (index: patient id): baseline covariates and outcome summaries.

    Numeric features are float64 (NaN when missing); categorical features are pandas ``string`` with missing
    values as the level ``"(missing)"``. See the module docstring for the outcome summaries.
    """
    o, pid = schema.outcome, schema.id
    first = data.drop_duplicates(subset=pid, keep="first").reset_index(drop=True)
    out = pd.DataFrame(index=pd.Index(first[pid].to_numpy(), name=pid))
    for c in schema.numeric:
        out[c] = pd.to_numeric(first[c], errors="coerce").to_numpy(float)
    for c in schema.categorical:
        out[c] = pd.array(_as_levels(first[c]).to_numpy(), dtype="string")
    if o.type == "tte":
        out[o.time] = pd.to_numeric(first[o.time], errors="coerce").to_numpy(float)
        out[o.event] = pd.to_numeric(first[o.event], errors="coerce").to_numpy(float)
    elif o.type == "continuous":
        out[o.value] = pd.to_numeric(first[o.value], errors="coerce").to_numpy(float)
    elif o.type == "binary":
        out[o.value] = pd.array(_as_levels(first[o.value]).to_numpy(), dtype="string")
    else:
        d = pd.DataFrame({"id": data[pid].to_numpy(),
                          "t": pd.to_numeric(data[o.visit], errors="coerce").to_numpy(float),
                          "y": pd.to_numeric(data[o.value], errors="coerce").to_numpy(float)}).dropna()
        d = d.sort_values(["id", "t"], kind="stable")
        g = d.groupby("id", sort=False)["y"]
        out[f"first_{o.value}"] = g.first().reindex(out.index).to_numpy(float)
        out[f"last_{o.value}"] = g.last().reindex(out.index).to_numpy(float)
        out[f"slope_{o.value}"] = ols_slopes(d, "id", "t", "y").reindex(out.index).to_numpy(float)
        out["n_visits"] = g.size().reindex(out.index).fillna(0).to_numpy(float)
    return out


def _kinds(f: pd.DataFrame) -> tuple[list[str], list[str]]:
    num = [c for c in f.columns if pd.api.types.is_float_dtype(f[c])]
    return num, [c for c in f.columns if c not in num]


# ------------------------------------------------------------------------------------------ marginals
def ks_statistic(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_x |F_a(x) - F_b(x)| of the empirical CDFs (NaN dropped;
    NaN when either sample is empty)."""
    a = np.sort(np.asarray(a, dtype=float)[~np.isnan(np.asarray(a, dtype=float))])
    b = np.sort(np.asarray(b, dtype=float)[~np.isnan(np.asarray(b, dtype=float))])
    if a.size == 0 or b.size == 0:
        return float("nan")
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def tv_distance(a, b) -> float:
    """Total-variation distance 0.5 * sum_k |p_a(k) - p_b(k)| over the union of levels (missing is a level)."""
    pa = _as_levels(pd.Series(a)).value_counts(normalize=True)
    pb = _as_levels(pd.Series(b)).value_counts(normalize=True)
    levels = pa.index.union(pb.index)
    return float(0.5 * np.abs(pa.reindex(levels, fill_value=0.0) - pb.reindex(levels, fill_value=0.0)).sum())


def marginal_distances(real: pd.DataFrame, synthetic: pd.DataFrame, schema: CohortSchema) -> pd.DataFrame:
    """One row per baseline column of the two patient-level frames.

    Columns: ``column``, ``kind`` (numeric/categorical), ``metric`` (``KS`` on observed values for numeric,
    ``TV`` with missing as a level for categorical), ``statistic``, ``noise_5pct`` (numeric only: the
    asymptotic two-sample KS 5 % critical value 1.358 * sqrt((n + m) / (n m)) for the observed counts, the
    size of difference that sampling noise alone exceeds 5 % of the time), ``missing_real``,
    ``missing_synthetic`` (share missing), ``n_real``, ``n_synthetic``.
    """
    rows = []
    for c in schema.baseline:
        r, s = real[c], synthetic[c]
        if c in schema.numeric:
            rv, sv = r.to_numpy(float), s.to_numpy(float)
            n, m = int(np.sum(~np.isnan(rv))), int(np.sum(~np.isnan(sv)))
            stat = ks_statistic(rv, sv)
            noise = _KS_C05 * math.sqrt((n + m) / (n * m)) if n and m else float("nan")
            miss_r, miss_s = float(np.mean(np.isnan(rv))), float(np.mean(np.isnan(sv)))
            rows.append((c, "numeric", "KS", stat, noise, miss_r, miss_s, len(r), len(s)))
        else:
            rows.append((c, "categorical", "TV", tv_distance(r, s), float("nan"), float(np.mean(r == MISSING)),
                         float(np.mean(s == MISSING)), len(r), len(s)))
    return pd.DataFrame(rows, columns=["column", "kind", "metric", "statistic", "noise_5pct", "missing_real",
                                       "missing_synthetic", "n_real", "n_synthetic"])


# ---------------------------------------------------------------------------------------- associations
def cramers_v(a, b) -> float:
    """Cramér's V = sqrt(chi2 / (n (min(r, c) - 1))) of the r x c contingency table (Pearson chi2 without
    continuity correction; missing is a level); 0 when a variable has a single level."""
    table = pd.crosstab(_as_levels(pd.Series(a)), _as_levels(pd.Series(b))).to_numpy(float)
    k = min(table.shape)
    if k < 2:
        return 0.0
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return float(math.sqrt(chi2 / (n * (k - 1))))


def correlation_ratio(x, groups) -> float:
    """Correlation ratio eta = sqrt(sum_g n_g (mean_g - mean)^2 / sum_i (x_i - mean)^2) of numeric ``x`` over
    the categories ``groups`` (rows with missing ``x`` dropped; missing category is a level; 0 when ``x`` is
    constant). eta^2 is the R^2 of the one-way ANOVA of x on the groups."""
    x = np.asarray(x, dtype=float)
    g = _as_levels(pd.Series(groups)).to_numpy()
    keep = ~np.isnan(x)
    x, g = x[keep], g[keep]
    if x.size == 0:
        return 0.0
    sst = float(np.sum((x - x.mean()) ** 2))
    if sst <= 0:
        return 0.0
    d = pd.DataFrame({"x": x, "g": g}).groupby("g")["x"].agg(["mean", "size"])
    ssb = float(np.sum(d["size"] * (d["mean"] - x.mean()) ** 2))
    return float(math.sqrt(min(ssb / sst, 1.0)))


def association_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Pairwise association of every pair of feature columns (diagonal 1).

    Numeric-numeric: Spearman rank correlation on pairwise-complete rows (signed, -1..1); categorical-
    categorical: Cramér's V (0..1); numeric-categorical: correlation ratio eta (0..1). Undefined values (a
    constant column) are 0.
    """
    num, cat = _kinds(features)
    cols = list(features.columns)
    m = pd.DataFrame(np.eye(len(cols)), index=cols, columns=cols)
    if len(num) > 1:
        m.loc[num, num] = features[num].corr(method="spearman").to_numpy()
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            if a in num and b in num:
                continue
            if a in cat and b in cat:
                v = cramers_v(features[a], features[b])
            else:
                x, g = (a, b) if a in num else (b, a)
                v = correlation_ratio(features[x], features[g])
            m.loc[a, b] = m.loc[b, a] = v
    values = np.nan_to_num(m.to_numpy(float), nan=0.0)
    np.fill_diagonal(values, 1.0)
    return pd.DataFrame(values, index=cols, columns=cols)


def association_difference(real: pd.DataFrame, synthetic: pd.DataFrame):
    """``(A_real, A_synthetic, A_synthetic - A_real, mean |difference| over the pairs i < j)``; the mean is
    NaN with fewer than two features."""
    a_r, a_s = association_matrix(real), association_matrix(synthetic[real.columns])
    diff = a_s - a_r
    iu = np.triu_indices(len(diff), k=1)
    mean = float(np.mean(np.abs(diff.to_numpy()[iu]))) if iu[0].size else float("nan")
    return a_r, a_s, diff, mean


# ------------------------------------------------------------------------------------------ detection
def _encode_for_trees(frames: list[pd.DataFrame]) -> tuple[list[np.ndarray], np.ndarray]:
    """Shared integer codes for categorical columns (<= 250 levels: native categorical splits)."""
    num, cat = _kinds(frames[0])
    mats = [np.empty((len(f), len(num) + len(cat))) for f in frames]
    is_cat = np.zeros(len(num) + len(cat), dtype=bool)
    for j, c in enumerate(num):
        for m, f in zip(mats, frames):
            m[:, j] = f[c].to_numpy(float)
    for j, c in enumerate(cat, start=len(num)):
        levels = pd.Index(sorted(set().union(*(set(f[c].astype(str)) for f in frames))))
        is_cat[j] = len(levels) <= 250
        for m, f in zip(mats, frames):
            m[:, j] = levels.get_indexer(f[c].astype(str))
    return mats, is_cat


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, *, rng: np.random.Generator,
                  n_splits: int = 5) -> tuple[float, np.ndarray]:
    """Cross-validated ROC AUC of a classifier told to separate real (label 0) from synthetic (label 1) rows.

    Model: :data:`DETECTION_MODEL`; stratified ``n_splits``-fold CV (fewer folds when a class has fewer rows);
    returns the mean of the per-fold test AUCs and the per-fold values. 0.5 = indistinguishable, 1 = perfectly
    separable. NaN when a class has fewer than 2 rows.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    (xr, xs), is_cat = _encode_for_trees([real, synthetic[real.columns]])
    x = np.vstack([xr, xs])
    y = np.r_[np.zeros(len(xr)), np.ones(len(xs))]
    k = min(n_splits, len(xr), len(xs))
    if k < 2:
        return float("nan"), np.array([])
    seed = int(rng.integers(2**31))
    aucs = []
    with threadpool_limits(limits=1, user_api="openmp"):  # trial-sized data: threads only add overhead
        for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
            clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                                 min_samples_leaf=10, early_stopping=False, random_state=seed,
                                                 categorical_features=is_cat if is_cat.any() else None)
            clf.fit(x[tr], y[tr])
            aucs.append(roc_auc_score(y[te], clf.predict_proba(x[te])[:, 1]))
    aucs = np.asarray(aucs, dtype=float)
    return float(aucs.mean()), aucs


# ---------------------------------------------------------------------------------------- Kaplan-Meier
@dataclass(frozen=True)
class KMComparison:
    """Kaplan-Meier curves (steps from (0, 1), extended to the last follow-up) and their distances over the
    common follow-up [0, tau], tau = min(largest real time, largest synthetic time):

    * ``sup_distance`` = max_{0 <= t <= tau} |S_real(t) - S_synthetic(t)|;
    * ``integrated_abs_difference`` = integral_0^tau |S_real(t) - S_synthetic(t)| dt (time units);
    * ``mean_abs_difference`` = integrated_abs_difference / tau.
    """

    time_real: np.ndarray
    surv_real: np.ndarray
    time_synthetic: np.ndarray
    surv_synthetic: np.ndarray
    followup: float
    sup_distance: float
    integrated_abs_difference: float
    mean_abs_difference: float


def _km_steps(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jump times and survival after each jump (statsmodels SurvfuncRight); empty without events."""
    if time.size == 0 or event.sum() == 0:
        return np.array([]), np.array([])
    sf = SurvfuncRight(time, event)
    return np.asarray(sf.surv_times, float), np.asarray(sf.surv_prob, float)


def _step_value(grid: np.ndarray, times: np.ndarray, probs: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(times, grid, side="right") - 1
    return np.where(idx >= 0, probs[np.clip(idx, 0, None)] if probs.size else 1.0, 1.0)


def km_comparison(time_real, event_real, time_synthetic, event_synthetic) -> KMComparison:
    """Kaplan-Meier real vs synthetic (see :class:`KMComparison`); rows with a missing time/event dropped."""
    curves, tmax = [], []
    for t, e in ((time_real, event_real), (time_synthetic, event_synthetic)):
        t, e = np.asarray(t, float), np.asarray(e, float)
        ok = ~(np.isnan(t) | np.isnan(e))
        t, e = t[ok], e[ok].astype(int)
        curves.append(_km_steps(t, e))
        tmax.append(float(t.max()) if t.size else 0.0)
    tau = min(tmax)
    grid = np.unique(np.concatenate([[0.0], curves[0][0], curves[1][0], [tau]]))
    grid = grid[grid <= tau]
    diff = np.abs(_step_value(grid, *curves[0]) - _step_value(grid, *curves[1]))
    integral = float(np.sum(diff[:-1] * np.diff(grid)))
    plot = []
    for (jt, sp), end in zip(curves, tmax):
        t = np.concatenate([[0.0], jt])
        s = np.concatenate([[1.0], sp])
        if end > t[-1]:
            t, s = np.append(t, end), np.append(s, s[-1])
        plot += [t, s]
    return KMComparison(*plot, followup=tau, sup_distance=float(diff.max()), integrated_abs_difference=integral,
                        mean_abs_difference=integral / tau if tau > 0 else float("nan"))


# ------------------------------------------------------------------------------------------ longitudinal
@dataclass(frozen=True)
class TrajectoryComparison:
    """Longitudinal outcome, real vs synthetic.

    ``per_visit``: one row per visit time (rounded to a grid of at most 25 steps when the schedule is
    irregular) with ``n``, ``mean``, ``sd`` (sample SD, ddof 1) of the observed values for each source; visits
    with fewer than 5 values in either source are left out of the two summaries:
    ``mean_abs_smd`` = mean over visits of |mean_syn - mean_real| / sd_real, ``mean_abs_log_sd_ratio`` = mean
    over visits of |log(sd_syn / sd_real)|. Slopes: individual OLS slopes (:func:`ols_slopes`) of every patient
    with two or more distinct visit times, their two-sample KS statistic and means.
    """

    per_visit: pd.DataFrame
    mean_abs_smd: float
    mean_abs_log_sd_ratio: float
    slopes_real: np.ndarray
    slopes_synthetic: np.ndarray
    slope_ks: float
    slope_mean_real: float
    slope_mean_synthetic: float


def _visit_grid(v: np.ndarray, max_visits: int = 25) -> np.ndarray:
    """Visit times as they are when few; rounded to a 1/2/5 x 10^k grid when the schedule is irregular."""
    u = np.unique(v[~np.isnan(v)])
    if u.size <= max_visits:
        return v
    span = float(u[-1] - u[0]) or 1.0
    step = 10 ** math.floor(math.log10(span / max_visits))
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= max_visits:
            step *= mult
            break
    return np.round(v / step) * step


def trajectory_comparison(real: pd.DataFrame, synthetic: pd.DataFrame, schema: CohortSchema,
                          *, min_patients: int = 5) -> TrajectoryComparison:
    """Per-visit mean/SD and slope distribution of a longitudinal outcome (see :class:`TrajectoryComparison`)."""
    o = schema.outcome
    frames = []
    for df in (real, synthetic):
        frames.append(pd.DataFrame({"t": pd.to_numeric(df[o.visit], errors="coerce").to_numpy(float),
                                    "y": pd.to_numeric(df[o.value], errors="coerce").to_numpy(float)}).dropna())
    n_r = len(frames[0])
    grid = _visit_grid(np.concatenate([frames[0]["t"].to_numpy(), frames[1]["t"].to_numpy()]))
    frames[0]["t"], frames[1]["t"] = grid[:n_r], grid[n_r:]
    stats_ = [f.groupby("t")["y"].agg(["size", "mean", "std"]) for f in frames]
    table = stats_[0].join(stats_[1], how="outer", suffixes=("_real", "_synthetic")).sort_index()
    table = table.rename(columns={"size_real": "n_real", "size_synthetic": "n_synthetic",
                                  "std_real": "sd_real", "std_synthetic": "sd_synthetic"})
    table[["n_real", "n_synthetic"]] = table[["n_real", "n_synthetic"]].fillna(0).astype(int)
    table = table.reset_index().rename(columns={"t": "visit"})
    table = table[["visit", "n_real", "mean_real", "sd_real", "n_synthetic", "mean_synthetic", "sd_synthetic"]]
    ok = (table["n_real"] >= min_patients) & (table["n_synthetic"] >= min_patients) & (table["sd_real"] > 0)
    t = table[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = float(np.mean(np.abs(t["mean_synthetic"] - t["mean_real"]) / t["sd_real"])) if len(t) else np.nan
        lsd = float(np.mean(np.abs(np.log(t["sd_synthetic"] / t["sd_real"])))) if len(t) else np.nan
    sr = ols_slopes(real, schema.id, o.visit, o.value).dropna().to_numpy(float)
    ss = ols_slopes(synthetic, schema.id, o.visit, o.value).dropna().to_numpy(float)
    return TrajectoryComparison(table.reset_index(drop=True), smd, lsd, sr, ss, ks_statistic(sr, ss),
                                float(sr.mean()) if sr.size else np.nan, float(ss.mean()) if ss.size else np.nan)


# ------------------------------------------------------------------------------------ continuous / binary
@dataclass(frozen=True)
class OutcomeComparison:
    """A continuous outcome: ``metric`` ``"KS"``, ``statistic`` = two-sample KS statistic, ``mean_*`` = means.
    A binary outcome: ``metric`` ``"proportion difference"``, ``statistic`` = P_syn(y = positive) -
    P_real(y = positive) (signed; :func:`positive_level`), ``mean_*`` = the two proportions."""

    metric: str
    statistic: float
    mean_real: float
    mean_synthetic: float
    positive: str | None = None


def positive_level(values) -> str:
    """The level counted as the event of a binary outcome: the last in sorted order (``"1"`` for 0/1 data)."""
    levels = sorted(set(_as_levels(pd.Series(values))) - {MISSING})
    return levels[-1] if levels else MISSING


def outcome_comparison(real: pd.DataFrame, synthetic: pd.DataFrame, schema: CohortSchema) -> OutcomeComparison:
    """Continuous or binary outcome of the patient-level frames (see :class:`OutcomeComparison`)."""
    v = schema.outcome.value
    if schema.outcome.type == "continuous":
        r, s = real[v].to_numpy(float), synthetic[v].to_numpy(float)
        return OutcomeComparison("KS", ks_statistic(r, s), float(np.nanmean(r)), float(np.nanmean(s)))
    pos = positive_level(real[v])
    pr = float(np.mean(real[v][real[v] != MISSING] == pos))
    ps = float(np.mean(synthetic[v][synthetic[v] != MISSING] == pos))
    return OutcomeComparison("proportion difference", ps - pr, pr, ps, positive=pos)
