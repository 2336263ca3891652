"""Shared plumbing of the estimators (private): input checks, the Welch core, risk sets, result packing.

Conventions used by every batched estimator:

* arrays carry a leading replicate axis ``R``; ``treated`` is ``(R, N)`` bool (False = control);
* a replicate where the method is undefined (an arm with fewer than two analysable patients, no events, a
  singular fit, an infinite estimate) yields NaN in every output array, never an exception or a warning.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError

from .result import BatchResult, TestResult

__all__ = ["as_replicates", "arm_indicator", "require_columns", "to_test_result", "welch_batched",
           "risk_sets", "nan_result", "z_crit", "numeric_column",
           "long_to_grid", "dummy_columns", "zero_one_column"]


def as_replicates(a, *, ndim: int, name: str, dtype=float) -> np.ndarray:
    """``a`` as an array with a replicate axis: a ``(N,)`` (or ``(N, V)``) array becomes ``(1, N)``."""
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == ndim - 1:
        arr = arr[None]
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions (replicates first), got shape {arr.shape}")
    return arr


def z_crit(alpha: float) -> float:
    """Two-sided standard normal critical value for a ``1 - alpha`` interval."""
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def require_columns(data: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`InvalidDataError` naming every requested column that ``data`` lacks."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InvalidDataError([f"column {c!r} not found; available columns: {', '.join(map(str, data.columns))}"
                                for c in missing])


def numeric_column(data: pd.DataFrame, column: str) -> np.ndarray:
    """Column ``column`` as floats (missing -> NaN); non-numeric entries raise :class:`InvalidDataError`."""
    col = data[column]
    out = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(out) & col.notna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InvalidDataError(f"column {column!r}: non-numeric values at rows {rows.tolist()} "
                               f"(e.g. {col.iloc[rows[0]]!r}); clean or drop them first")
    return out


def zero_one_column(data: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """Column ``column`` as floats 0/1 (boolean accepted, missing -> NaN); any other value raises
    :class:`InvalidDataError` saying that ``what`` (e.g. "the event indicator") must be 0/1."""
    v = numeric_column(data, column)
    bad = ~np.isnan(v) & (v != 0) & (v != 1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InvalidDataError(f"column {column!r}: {what} must be 0/1 (or boolean), found "
                               f"{sorted(set(v[bad].tolist()))[:5]} at rows {rows.tolist()}; recode it "
                               f"(e.g. 1 = event) first")
    return v


def arm_indicator(data: pd.DataFrame, arm: str, treated_value) -> tuple[np.ndarray, np.ndarray]:
    """``(treated, known)``: rows whose ``arm`` equals ``treated_value``, and rows with a non-missing arm.

    Every other non-missing value is the control arm; more than two arms, or a ``treated_value`` that does not
    occur, raise :class:`InvalidDataError`.
    """
    col = data[arm]
    known = col.notna().to_numpy()
    values = pd.unique(col[known])
    if treated_value not in set(values.tolist()):
        raise InvalidDataError(f"column {arm!r}: treated_value {treated_value!r} does not occur; values are "
                               f"{sorted(map(str, values))}")
    if len(values) > 2:
        raise InvalidDataError(f"column {arm!r}: two arms are supported, found {len(values)}: "
                               f"{sorted(map(str, values))}; filter the data to two arms first")
    treated = (col == treated_value).to_numpy(dtype=bool) & known
    return treated, known


def to_test_result(res: BatchResult) -> TestResult:
    """The single replicate of a batch of one, as a :class:`TestResult`."""
    def one(v):
        if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == 1:
            return v[0].item() if v.ndim == 1 else v[0].tolist()
        return v
    details = {k: one(v) for k, v in res.details.items()}
    n = np.asarray(res.n_per_arm)[0]
    return TestResult(res.method, float(res.estimate[0]), float(res.ci_low[0]), float(res.ci_high[0]),
                      float(res.p_value[0]), float(res.statistic[0]), (int(n[0]), int(n[1])), details)


def nan_result(method: str, n_per_arm: np.ndarray, **details) -> BatchResult:
    """A batch where every replicate is undefined."""
    nan = np.full(n_per_arm.shape[0], np.nan)
    return BatchResult(method, nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), n_per_arm, details)


def welch_batched(values: np.ndarray, treated: np.ndarray, alpha: float, method: str) -> BatchResult:
    """Welch two-sample t-test of ``values`` ``(R, N)`` (NaN = not analysable), treated minus control.

    ``t = (m1 - m0) / se`` with ``se = sqrt(s1^2/n1 + s0^2/n0)`` (sample variances, ddof 1), Welch-Satterthwaite
    ``df = se^4 / ((s1^2/n1)^2/(n1-1) + (s0^2/n0)^2/(n0-1))``, two-sided p from Student t(df), CI
    ``m1 - m0 -/+ t_{1-alpha/2, df} * se``. Undefined (NaN) when an arm has < 2 values or ``se == 0``.
    """
    z_crit(alpha)
    ok = ~np.isnan(values)
    arms = (ok & ~treated, ok & treated)
    n = np.stack([a.sum(axis=1) for a in arms], axis=1)
    means, var_n = [], []
    with np.errstate(all="ignore"):
        for k, a in enumerate(arms):
            nk = n[:, k]
            m = np.where(a, values, 0.0).sum(axis=1) / nk
            ss = np.where(a, (values - m[:, None]) ** 2, 0.0).sum(axis=1)
            means.append(m)
            var_n.append(ss / (nk - 1) / nk)
        v0, v1 = var_n
        se = np.sqrt(v0 + v1)
        df = (v0 + v1) ** 2 / (v0 ** 2 / (n[:, 0] - 1) + v1 ** 2 / (n[:, 1] - 1))
        diff = means[1] - means[0]
        defined = (n.min(axis=1) >= 2) & (se > 0) & np.isfinite(se)
        se = np.where(defined, se, np.nan)
        df = np.where(defined, df, np.nan)
        diff = np.where(defined, diff, np.nan)
        t = diff / se
        p = 2.0 * stats.t.sf(np.abs(t), df)
        q = stats.t.ppf(1.0 - alpha / 2.0, df)
    return BatchResult(method, diff, diff - q * se, diff + q * se, p, t, n,
                       {"df": df, "se": se, "mean_control": np.where(defined, means[0], np.nan),
                        "mean_treated": np.where(defined, means[1], np.nan)})


def risk_sets(time: np.ndarray, event: np.ndarray, treated: np.ndarray, *, per_event: bool = True):
    """Risk-set counts at every event time, by sorting each replicate (no loop over replicates).

    Rows with a non-finite ``time`` are not analysable (sorted last, never at risk). Each replicate is sorted by
    time; positions with exactly equal times form one tie group (a subject censored at ``t`` is at risk at
    ``t``). For each sorted position ``j`` returns, as ``(R, N)`` arrays: ``n0, n1`` (at risk in control /
    treated at that time: time >= t), ``d0, d1`` (events in control / treated at exactly that time) and ``l``
    (at an event: the number of earlier events in its tie group, 0 .. d-1, for Efron's correction), plus
    ``is_event``, ``treated_event``, ``is_last`` (last position of its tie group) and ``n_per_arm`` ``(R, 2)``.
    With ``per_event=False`` (cheaper), ``d0, d1`` are only valid at ``is_last`` positions.
    """
    time = as_replicates(time, ndim=2, name="time")
    event = as_replicates(event, ndim=2, name="event", dtype=bool)
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    R, N = time.shape
    valid = np.isfinite(time)
    t_key = np.where(valid, time, np.inf)
    flat = np.argsort(t_key, axis=1) + (np.arange(R) * N)[:, None]   # flat gathers beat take_along_axis
    t = t_key.ravel()[flat]
    e = (event & valid).ravel()[flat]
    x = treated.ravel()[flat]
    ex = e & x

    idx = np.broadcast_to(np.arange(N, dtype=np.int64), (R, N))
    rows = (np.arange(R) * N)[:, None]
    new = np.ones((R, N), dtype=bool)
    new[:, 1:] = t[:, 1:] != t[:, :-1]
    last = np.ones((R, N), dtype=bool)
    last[:, :-1] = new[:, 1:]
    start = np.maximum.accumulate(np.where(new, idx, 0), axis=1) + rows       # flat index of group start

    cx, ce, cex = (np.cumsum(f, axis=1, dtype=np.int32) for f in (x, e, ex))   # inclusive counts
    before = [(c - f).ravel()[start] for c, f in ((cx, x), (ce, e), (cex, ex))]  # counts before the group
    if per_event:
        end = np.minimum.accumulate(np.where(last, idx, N - 1)[:, ::-1], axis=1)[:, ::-1] + rows
        ce_end, cex_end = ce.ravel()[end], cex.ravel()[end]
    else:
        ce_end, cex_end = ce, cex
    n_arm = np.stack([(valid & ~treated).sum(axis=1), (valid & treated).sum(axis=1)], axis=1)
    n1 = n_arm[:, 1:] - before[0]
    n0 = n_arm[:, :1] - ((start - rows) - before[0])        # valid rows sort first: all before are valid
    d = ce_end - before[1]
    d1 = cex_end - before[2]
    return {"n0": n0, "n1": n1, "d0": d - d1, "d1": d1, "l": (ce - e) - before[1], "is_event": e,
            "treated_event": ex, "is_last": last, "n_per_arm": n_arm}


def long_to_grid(data: pd.DataFrame, *, id: str, visit: str, value: str, arm: str, treated_value):
    """Long repeated-measures data -> ``(y (N, V), visits (V,), treated (N,), ids (N,))`` on a visit grid.

    The grid is every distinct non-missing visit time (sorted); a visit a patient missed is NaN. Rows with a
    missing id, visit or arm are dropped. A duplicated (id, visit) pair or an arm that changes within a patient
    raises :class:`InvalidDataError`.
    """
    require_columns(data, [id, visit, value, arm])
    treated, known = arm_indicator(data, arm, treated_value)
    t = numeric_column(data, visit)
    y = numeric_column(data, value)
    keep = known & ~np.isnan(t) & data[id].notna().to_numpy()
    frame = pd.DataFrame({"id": data[id].to_numpy()[keep], "t": t[keep], "y": y[keep], "x": treated[keep]})
    dup = frame.duplicated(["id", "t"])
    if dup.any():
        first = frame[dup].iloc[0]
        raise InvalidDataError(f"columns {id!r}/{visit!r}: {int(dup.sum())} duplicated patient-visit rows "
                               f"(e.g. {id}={first['id']!r}, {visit}={first['t']!r}); keep one row per visit")
    arms = frame.groupby("id", sort=True)["x"].agg(["min", "max"])
    if (arms["min"] != arms["max"]).any():
        bad = arms.index[arms["min"] != arms["max"]][:5].tolist()
        raise InvalidDataError(f"column {arm!r} changes within patients {bad}; one arm per patient")
    grid = frame.pivot(index="id", columns="t", values="y").sort_index().sort_index(axis=1)
    return (grid.to_numpy(dtype=float), grid.columns.to_numpy(dtype=float),
            arms.loc[grid.index, "max"].to_numpy(dtype=bool), grid.index.to_numpy())


def dummy_columns(col: pd.Series) -> tuple[np.ndarray, list]:
    """Treatment (dummy) coding of a categorical column: ``(D (N, k - 1), levels)`` with ``levels`` the ``k``
    observed levels sorted (by their text when the values do not compare), ``levels[0]`` the reference, and one
    0/1 column per other level; rows with a missing value are NaN in every column. The covariate designs of the
    adjusted ANCOVA, Cox and logistic models share it."""
    known = col.notna().to_numpy()
    values = pd.unique(col[known]).tolist()
    try:
        levels = sorted(values)
    except TypeError:                                                 # mixed types: sort by their text
        levels = sorted(values, key=str)
    if len(levels) < 2:
        return np.zeros((len(col), 0)), levels
    d = np.stack([(col == lev).to_numpy(dtype=float) for lev in levels[1:]], axis=1)
    d[~known] = np.nan
    return d, levels
