"""Stratified log-rank test of two survival curves, with the stratified Peto (score) hazard-ratio estimate.

Method: within each stratum ``s`` and at every distinct event time ``t`` of that stratum, with ``n = n0 + n1``
patients of the stratum at risk (time >= t) and ``d = d0 + d1`` events, ``E1 = d n1 / n`` and the
hypergeometric variance ``V_t = d (n1/n)(n0/n)(n - d)/(n - 1)`` (0 when ``n = 1``), exactly as the unstratified
test (:mod:`.logrank`). The stratified statistic sums over strata before squaring:
``O1 - E1 = sum_s sum_t (d1 - E1)``, ``V = sum_s sum_t V_t``, ``(O1 - E1)^2 / V`` ~ chi-square(1), two-sided
p-value. Estimate: the stratified Peto hazard ratio treated vs control ``exp((O1 - E1)/V)`` with CI
``exp((O1 - E1)/V -/+ z_{1-alpha/2}/sqrt(V))``. Checked against ``statsmodels.duration.survdiff(..., strata=)``
(live) and R ``survival::survdiff(Surv(t, e) ~ arm + strata(s))`` (stored under tests/analysis/results/).
Undefined (NaN): an arm with fewer than two analysable patients or ``V = 0``. Non-finite times are not
analysable.

Implementation: one sort per replicate by ``(stratum, time)``. The sort key replaces each time by its dense rank
within the replicate (an exact integer, so equal times stay equal and distinct times stay distinct whatever their
magnitude) and offsets it by ``stratum * (N + 1)``; :func:`._common.risk_sets` on that key then sees every stratum
as a block of later "times", so its at-risk counts include the patients of later strata, which are subtracted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError

from ._common import as_replicates, numeric_column, require_columns, risk_sets, to_test_result, z_crit
from .logrank import logrank_from_counts, survival_arrays
from .result import BatchResult, TestResult

__all__ = ["logrank_stratified_batched", "logrank_stratified_test", "stratified_time_key", "complete_rows",
           "stratum_codes"]

METHOD = ("stratified log-rank test (chi-square, 1 df; O-E and variance summed over strata); "
          "stratified Peto score hazard ratio exp((O1-E1)/V)")


def stratified_time_key(time: np.ndarray, strata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Sort key ordering each replicate by ``(stratum, time)``: ``(key, codes, n_strata)``.

    ``time`` and ``strata`` (integer codes, any values; ``None`` = one stratum) are ``(R, N)``. ``key`` is
    ``code * (N + 1) + dense_rank(time)`` (``inf`` for a non-finite time), exact in float64, with equal keys
    exactly when stratum and time are equal; ``codes`` are the strata as ``0 .. n_strata - 1``.
    """
    time = as_replicates(time, ndim=2, name="time")
    R, N = time.shape
    if strata is None:
        codes = np.zeros((R, N), dtype=np.int64)
    else:
        strata = as_replicates(strata, ndim=2, name="strata", dtype=np.int64)
        if strata.shape != time.shape:
            raise ValueError(f"strata must have the shape of time {time.shape}, got {strata.shape}")
        _, codes = np.unique(strata, return_inverse=True)
        codes = codes.reshape(R, N)
    n_strata = int(codes.max()) + 1 if codes.size else 1
    valid = np.isfinite(time)
    t_key = np.where(valid, time, np.inf)
    order = np.argsort(t_key, axis=1)
    t_sorted = np.take_along_axis(t_key, order, axis=1)
    new = np.ones((R, N), dtype=bool)
    new[:, 1:] = t_sorted[:, 1:] != t_sorted[:, :-1]
    rank = np.empty((R, N), dtype=np.float64)
    np.put_along_axis(rank, order, np.cumsum(new, axis=1).astype(np.float64), axis=1)
    key = np.where(valid, codes * float(N + 1) + rank, np.inf)
    return key, codes, n_strata


def _later_strata_counts(codes, mask, n_strata):
    """``(R, S)``: for each stratum ``s``, how many rows of ``mask`` lie in strata ``> s``."""
    R = codes.shape[0]
    flat = (codes + (np.arange(R) * n_strata)[:, None]).ravel()
    per = np.bincount(flat, weights=mask.ravel().astype(float), minlength=R * n_strata).reshape(R, n_strata)
    return per[:, ::-1].cumsum(axis=1)[:, ::-1] - per


def logrank_stratified_batched(time: np.ndarray, event: np.ndarray, treated: np.ndarray, strata: np.ndarray,
                               alpha: float = 0.05) -> BatchResult:
    """Stratified log-rank test on every replicate: ``time``, ``event`` (bool), ``treated``, ``strata``
    (integer codes) are ``(R, N)``.

    ``statistic`` is the chi-square. ``details``: ``observed_minus_expected`` (O1 - E1, treated, summed over
    strata), ``variance`` (V), ``log_hr`` ((O1 - E1)/V), ``se`` (1/sqrt(V)), ``events`` ((R, 2): control,
    treated), ``n_strata`` ((R,): strata with at least one analysable patient), ``hr_method``.
    """
    zc = z_crit(alpha)
    time = as_replicates(time, ndim=2, name="time")
    event = as_replicates(event, ndim=2, name="event", dtype=bool)
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    R, N = time.shape
    key, codes, n_strata = stratified_time_key(time, strata)
    rs = risk_sets(key, event, treated, per_event=False)
    valid = np.isfinite(time)
    # stratum of each sorted position (sorted keys are unique up to tie order); invalid rows sort last
    key_sorted = np.sort(key, axis=1)
    code_sorted = ((np.where(np.isfinite(key_sorted), key_sorted, 1.0) - 1.0) // (N + 1)).astype(np.int64)
    rows = np.arange(R)[:, None]
    later1 = _later_strata_counts(codes, valid & treated, n_strata)[rows, code_sorted]
    later0 = _later_strata_counts(codes, valid & ~treated, n_strata)[rows, code_sorted]
    n0 = rs["n0"] - later0
    n1 = rs["n1"] - later1
    d0, d1 = rs["d0"].astype(float), rs["d1"].astype(float)
    group = rs["is_last"] & ((d0 + d1) > 0)                  # one term per distinct (stratum, event time)
    present = np.zeros((R, n_strata), dtype=bool)
    present[np.broadcast_to(rows, (R, N))[valid], codes[valid]] = True
    return logrank_from_counts(n0, n1, d0, d1, group, rs, zc, method=METHOD, n_strata=present.sum(axis=1),
                               hr_method="stratified Peto (score) estimate exp((O1-E1)/V)")


def complete_rows(data: pd.DataFrame, *, time: str, event: str, arm: str, extra=()) -> pd.DataFrame:
    """The rows of ``data`` with a finite ``time`` and a non-missing ``event``, ``arm`` and ``extra`` columns."""
    extra = list(extra)
    require_columns(data, [time, event, arm, *extra])
    keep = np.isfinite(numeric_column(data, time)) & data[[event, arm, *extra]].notna().all(axis=1).to_numpy()
    return data.loc[keep]


def stratum_codes(data: pd.DataFrame, column: str) -> tuple[np.ndarray, list]:
    """Integer codes ``0 .. S-1`` of ``column`` (levels sorted) and the levels; missing values raise."""
    col = data[column]
    if col.isna().any():
        raise InvalidDataError(f"column {column!r}: missing stratum values; drop those rows first")
    levels = sorted(pd.unique(col).tolist(), key=lambda v: (str(type(v)), v))
    lookup = {v: i for i, v in enumerate(levels)}
    return col.map(lookup).to_numpy(dtype=np.int64), levels


def logrank_stratified_test(data: pd.DataFrame, *, time: str, event: str, arm: str, treated_value, strata: str,
                            alpha: float = 0.05) -> TestResult:
    """Stratified log-rank test of ``time``/``event`` between ``arm == treated_value`` and the other arm,
    stratified by the levels of column ``strata``. Rows with a missing time, event, arm or stratum are dropped.
    """
    sub = complete_rows(data, time=time, event=event, arm=arm, extra=[strata])
    if sub.empty:
        raise InvalidDataError(f"no row has a time ({time!r}), event ({event!r}), arm ({arm!r}) and stratum "
                               f"({strata!r}) all present")
    t, e, x = survival_arrays(sub, time=time, event=event, arm=arm, treated_value=treated_value)
    codes, levels = stratum_codes(sub, strata)
    res = logrank_stratified_batched(t[None], e[None], x[None], codes[None], alpha)
    out = to_test_result(res)
    out.details.update({"strata": strata, "strata_levels": levels, "rows_dropped": int(len(data) - len(sub))})
    return out
