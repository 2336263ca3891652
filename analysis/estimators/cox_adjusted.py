"""Cox proportional-hazards model for treatment adjusted for covariates, optionally stratified; Wald test and CI.

Method: maximum partial likelihood for ``beta = (b_treated, b_1 .. b_p)`` with linear predictor
``eta = x' beta``, ``w = exp(eta)``. In each stratum, at each distinct event time with risk set ``R`` (patients of
the stratum with time >= t), tied events ``D`` (``d = |D|``), ``S0 = sum_R w``, ``S1 = sum_R w x``,
``S2 = sum_R w x x'`` and ``D0, D1, D2`` the same sums over ``D``, the ``l``-th tied event (``l = 0 .. d-1``)
contributes, with ``f = l/d`` (Efron) or ``f = 0`` (Breslow, ``ties="breslow"``), ``den = S0 - f D0``,
``num = S1 - f D1``:

* log partial likelihood ``eta_i - log(den)``, score ``x_i - num/den``,
* information ``(S2 - f D2)/den - num num'/den^2``.

Strata only restrict the risk sets (baseline hazard per stratum, common ``beta``). Newton-Raphson from 0,
vectorised over replicates (batched ``(p+1) x (p+1)`` solves), halving the step while the log-likelihood
decreases, until the largest Newton step is below 1e-9 (at most 50 iterations). Columns are centred and scaled
per replicate for the iterations (the fit is then mapped back; the partial likelihood is unchanged). Wald:
``se = sqrt(diag(I^-1))`` at the MLE, ``z = b_treated / se`` (the reported statistic), two-sided normal p, HR CI
``exp(b -/+ z_{1-alpha/2} se)``. The ``S2`` part of the information is accumulated as ``sum_k c_k w_k x_k x_k'``
(``c_k`` = sum of ``1/den`` over the event times whose risk set holds ``k``, minus the Efron share of ``k``'s own
tie group), so no ``(N, p, p)`` array is formed. Each replicate is sorted once by (stratum, time) (the key of
:func:`.logrank_stratified.stratified_time_key`); risk-set sums are suffix sums within the stratum; the
likelihood is evaluated in blocks of about 65,000 patient rows (a loop over blocks of replicates, to stay in
cache). 2,000 replicates x 600 patients x 2 covariates take about 1 s on one core.

Checked against ``statsmodels`` ``PHReg(ties=..., strata=...)`` params and bse (live) and R ``coxph`` (stored under
tests/analysis/results/). Undefined (NaN): an arm with fewer than two analysable patients, no events in an arm
(infinite log HR), a covariate constant within the replicate, a singular information matrix, or no convergence
in 50 iterations (e.g. an infinite MLE for a covariate, which R and statsmodels report as a huge coefficient).
Rows with a non-finite time or covariate are not analysable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError, UnknownNameError

from ._common import as_replicates, dummy_columns, numeric_column, to_test_result, z_crit
from .logrank import survival_arrays
from .logrank_stratified import complete_rows, stratified_time_key, stratum_codes
from .result import BatchResult, TestResult

__all__ = ["cox_adjusted_batched", "cox_adjusted_test", "design_matrix", "TIES"]

TIES = ("efron", "breslow")
_TOL, _MAX_ITER, _MAX_HALVING, _MAX_COND = 1e-9, 50, 30, 1e12


def _prepare(time, event, treated, covariates, strata, ties):
    """Sort each replicate by (stratum, time) and precompute everything that does not depend on ``beta``.

    Arrays are laid out ``(R, q, N)`` (replicate, column, sorted position) so that every cumulative sum and
    reduction runs over contiguous memory."""
    time = as_replicates(time, ndim=2, name="time")
    R, N = time.shape
    event = as_replicates(event, ndim=2, name="event", dtype=bool)
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    if covariates is None:
        covariates = np.zeros((R, N, 0))
    covariates = as_replicates(covariates, ndim=3, name="covariates")
    if covariates.shape[:2] != (R, N) or event.shape != (R, N) or treated.shape != (R, N):
        raise ValueError(f"time {time.shape}, event {event.shape}, treated {treated.shape} and covariates "
                         f"{covariates.shape} must share the (R, N) axes")
    q = covariates.shape[2] + 1
    x = np.empty((R, q, N))
    x[:, 0] = treated
    x[:, 1:] = covariates.transpose(0, 2, 1)
    valid = np.isfinite(time) & np.isfinite(x).all(axis=1)
    n_valid = valid.sum(axis=1)
    with np.errstate(all="ignore"):
        if valid.all():
            mean = x.mean(axis=2)
            dev = x - mean[..., None]
        else:
            mean = np.where(valid[:, None], x, 0.0).sum(axis=2) / n_valid[:, None]
            dev = np.where(valid[:, None], x - mean[..., None], 0.0)
        sd = np.sqrt((dev * dev).sum(axis=2) / n_valid[:, None])
    scalable = (sd > 1e-12 * np.maximum(1.0, np.abs(mean))).all(axis=1)
    sd_safe = np.where(sd > 0, sd, 1.0)

    if strata is None:
        key = np.where(valid, time, np.inf)
    else:
        key = stratified_time_key(np.where(valid, time, np.nan), strata)[0]
    order = np.argsort(key, axis=1)
    flat = order + (np.arange(R) * N)[:, None]
    ks = np.take(key, flat)
    e = np.take(event & valid, flat)
    ok = np.isfinite(ks)
    z = np.take(dev, order[:, None, :] + (np.arange(R * q) * N).reshape(R, q, 1))
    z /= sd_safe[..., None]

    idx = np.broadcast_to(np.arange(N), (R, N))
    def starts(change):            # index of the first position of each run (change[:, 0] is True)
        return np.maximum.accumulate(np.where(change, idx, 0), axis=1)
    def ends(change):              # index of the last position of each run
        last = np.ones((R, N), dtype=bool)
        last[:, :-1] = change[:, 1:]
        return np.minimum.accumulate(np.where(last, idx, N - 1)[:, ::-1], axis=1)[:, ::-1]
    new_t = np.ones((R, N), dtype=bool)
    new_t[:, 1:] = ks[:, 1:] != ks[:, :-1]
    gs, ge = starts(new_t), ends(new_t)
    if strata is None:             # one stratum (and the non-analysable rows after it, whose weight is 0)
        ss = np.zeros((R, N), dtype=np.int64)
        se = np.full((R, N), N - 1)
    else:
        stratum = np.where(ok, (np.where(ok, ks, 1.0) - 1.0) // (N + 1), -1.0)
        new_s = np.ones((R, N), dtype=bool)
        new_s[:, 1:] = stratum[:, 1:] != stratum[:, :-1]
        ss, se = starts(new_s), ends(new_s)

    ef = e.astype(float)
    frac = np.zeros((R, N))
    if ties == "efron":
        ce = _pad_cumsum(ef)
        base = (np.arange(R) * (N + 1))[:, None]
        before = np.take(ce, gs + base)
        with np.errstate(all="ignore"):
            frac = np.where(e, (ce[:, :-1] - before) / (np.take(ce, ge + base + 1) - before), 0.0)
    treated_sorted = np.take(treated, flat)
    events = np.stack([(e & ~treated_sorted).sum(axis=1), (e & treated_sorted).sum(axis=1)], axis=1)
    n_arm = np.stack([(valid & ~treated).sum(axis=1), (valid & treated).sum(axis=1)], axis=1)
    P = {"z": z, "e": e, "ef": ef, "okf": ok.astype(float), "frac": frac, "gs": gs, "ge1": ge + 1, "ss": ss,
         "se1": se + 1, "x_event_sum": np.matmul(z, ef[..., None])[..., 0], "n_events": ef.sum(axis=1),
         "tied": (gs != idx).any(axis=1), "strata": ((ss > 0) & ok).any(axis=1),
         "efron": (frac > 0).any(axis=1)}
    return P, mean, sd_safe, scalable, events, n_arm


def _pad_cumsum(a, reverse=False):
    """Cumulative sums along the last axis with one extra position: ``out[..., j]`` = sum of ``a[..., :j]``
    (or, reversed, of ``a[..., j:]``)."""
    out = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,))
    if reverse:
        np.cumsum(a[..., ::-1], axis=-1, out=out[..., ::-1][..., 1:])
    else:
        np.cumsum(a, axis=-1, out=out[..., 1:])
    return out


def _evaluate(P, beta):
    """Log partial likelihood, score and information at ``beta`` ``(R', q)`` for the prepared rows ``P``
    (in blocks of replicates small enough to stay in cache)."""
    R = len(beta)
    block = max(1, (1 << 16) // P["z"].shape[2])
    if R <= block:
        return _evaluate_block(P, beta)
    parts = [_evaluate_block({k: v[i:i + block] for k, v in P.items()}, beta[i:i + block])
             for i in range(0, R, block)]
    return tuple(np.concatenate(x) for x in zip(*parts))


def _evaluate_block(P, beta):
    z, e, frac = P["z"], P["e"], P["frac"]
    R, q, N = z.shape
    base = (np.arange(R) * (N + 1))[:, None]
    base3 = (np.arange(R * q) * (N + 1)).reshape(R, q, 1)
    gs, ge = P["gs"], P["ge1"]
    tied, many_strata, ties = P["tied"].any(), P["strata"].any(), P["efron"].any()
    eta = np.matmul(beta[:, None, :], z)[:, 0]
    m = eta.max(axis=1, keepdims=True)     # = max over analysable rows (z is centred on them, 0 elsewhere)
    w = np.exp(eta - m) * P["okf"]
    wz = z * w[:, None]
    # risk-set sums: suffix sums from the tie group's start to the end of its stratum
    rc0, rc1 = _pad_cumsum(w, reverse=True), _pad_cumsum(wz, reverse=True)
    if tied:
        s0, s1 = np.take(rc0, gs + base), np.take(rc1, gs[:, None] + base3)
    else:
        s0, s1 = rc0[:, :-1], rc1[..., :-1]
    if many_strata:
        tail = P["se1"]
        s0 = s0 - np.take(rc0, tail + base)
        s1 = s1 - np.take(rc1, tail[:, None] + base3)
    if ties:                                            # Efron: minus a share of the tie group's event sums
        ew = w * P["ef"]
        cw0, cw1 = _pad_cumsum(ew), _pad_cumsum(z * ew[:, None])
        s0 = s0 - frac * (np.take(cw0, ge + base) - np.take(cw0, gs + base))
        s1 = s1 - frac[:, None] * (np.take(cw1, ge[:, None] + base3) - np.take(cw1, gs[:, None] + base3))
    inv = np.divide(P["ef"], s0, out=np.zeros_like(s0), where=e)        # 1/den at events, 0 elsewhere
    ll = ((beta * P["x_event_sum"]).sum(axis=1) - P["n_events"] * m[:, 0]
          + np.log(inv, out=np.zeros_like(inv), where=e).sum(axis=1))
    a = s1 * inv[:, None]                               # num/den at events, 0 elsewhere
    score = P["x_event_sum"] - a.sum(axis=2)
    # S2 part: c_k = sum of 1/den over event positions up to k's tie-group end in k's stratum, minus (events
    # only) the sum of f/den over k's own tie group
    ca = _pad_cumsum(inv)
    c = np.take(ca, ge + base) if tied else ca[:, 1:]
    if many_strata:
        c = c - np.take(ca, P["ss"] + base)
    if ties:
        cf = _pad_cumsum(frac * inv)
        c -= np.where(e, np.take(cf, ge + base) - np.take(cf, gs + base), 0.0)
    info = np.matmul(z * (c * w)[:, None], np.swapaxes(z, 1, 2)) - np.matmul(a, np.swapaxes(a, 1, 2))
    return ll, score, info


def _usable(info):
    """Replicates whose information matrix is finite and well conditioned."""
    good = np.isfinite(info).all(axis=(1, 2))
    cond = np.full(len(info), np.inf)
    if good.any():
        cond[good] = np.linalg.cond(info[good])
    return good & (cond < _MAX_COND)


def _sub(P, rows, all_rows):
    return P if all_rows else {k: v[rows] for k, v in P.items()}


def _newton(P, rows):
    """Newton-Raphson with step halving on the replicates ``rows``; returns beta, info, loglik, iterations,
    converged (full-length arrays; NaN outside ``rows``)."""
    R, q = P["x_event_sum"].shape
    beta = np.full((R, q), np.nan)
    info = np.full((R, q, q), np.nan)
    ll = np.full(R, np.nan)
    iters = np.zeros(R, dtype=int)
    conv = np.zeros(R, dtype=bool)
    beta[rows] = 0.0
    Pa = _sub(P, rows, len(rows) == R)
    ll[rows], score, info[rows] = _evaluate(Pa, beta[rows])
    step = np.full((R, q), np.nan)
    active = rows.copy()

    def solve(inf, sc):
        good = _usable(inf)
        out = np.full(sc.shape, np.nan)
        if good.any():
            out[good] = np.linalg.solve(inf[good], sc[good][..., None])[..., 0]
        return out, good

    step[rows], good = solve(info[rows], score)
    active = active[good]
    for it in range(1, _MAX_ITER + 1):
        if not len(active):
            break
        Pa = _sub(P, active, len(active) == R)
        st = step[active]
        old_ll = ll[active]
        new = beta[active] + st
        ll_new, sc_new, in_new = _evaluate(Pa, new)
        worse = ~(ll_new >= old_ll - 1e-12 * np.abs(old_ll))
        halved = worse.copy()
        for _ in range(_MAX_HALVING):
            if not worse.any():
                break
            w = np.flatnonzero(worse)
            st[w] /= 2.0
            new[w] = beta[active][w] + st[w]
            ll_new[w], sc_new[w], in_new[w] = _evaluate(_sub(Pa, w, False), new[w])
            worse[w] = ~(ll_new[w] >= old_ll[w] - 1e-12 * np.abs(old_ll[w]))
        beta[active], ll[active], info[active] = new, ll_new, in_new
        iters[active] = it
        nxt, good = solve(in_new, sc_new)
        step[active] = nxt
        # converged: the next Newton step is negligible, or this full (not halved) step was
        done = good & ((np.abs(nxt).max(axis=1) < _TOL) | (~halved & (np.abs(st).max(axis=1) < _TOL)))
        conv[active[done]] = True
        active = active[~done & good]
    return beta, info, ll, iters, conv


def cox_adjusted_batched(time: np.ndarray, event: np.ndarray, treated: np.ndarray,
                         covariates: np.ndarray | None = None, strata: np.ndarray | None = None,
                         alpha: float = 0.05, *, ties: str = "efron", names=None) -> BatchResult:
    """Cox PH fit on every replicate: ``time``, ``event`` (bool), ``treated`` are ``(R, N)``, ``covariates``
    ``(R, N, p)`` (numeric; dummy-code categories first), ``strata`` ``(R, N)`` integer codes or None.

    ``estimate`` is the hazard ratio treated vs control adjusted for the covariates; ``statistic`` its Wald z.
    ``details``: ``log_hr``, ``se`` (of log HR), ``coef`` / ``se_coef`` ((R, p+1): treated first, then the
    covariates), ``coef_names`` (``names`` or x1..xp), ``loglik`` (log partial likelihood at the MLE),
    ``iterations``, ``converged``, ``events`` ((R, 2): control, treated), ``ties``, ``stratified``.
    """
    if ties not in TIES:
        raise UnknownNameError("ties method", ties, TIES)
    zc = z_crit(alpha)
    P, mean, sd, scalable, events, n_arm = _prepare(time, event, treated, covariates, strata, ties)
    R, q = P["x_event_sum"].shape
    names = ["treated"] + (list(names) if names is not None else [f"x{j + 1}" for j in range(q - 1)])
    if len(names) != q:
        raise ValueError(f"names must name the {q - 1} covariates, got {len(names) - 1}")
    ok = scalable & (n_arm.min(axis=1) >= 2) & (events.min(axis=1) >= 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        beta_z, info, ll, iters, conv = _newton(P, np.flatnonzero(ok))
    good = ok & conv
    cov_z = np.full((R, q, q), np.nan)
    if good.any():
        cov_z[good] = np.linalg.inv(info[good])
    with np.errstate(all="ignore"):
        coef = np.where(good[:, None], beta_z / sd, np.nan)
        var = np.diagonal(cov_z, axis1=1, axis2=2) / sd ** 2
        good &= (var > 0).all(axis=1)
        coef = np.where(good[:, None], coef, np.nan)
        se_coef = np.where(good[:, None], np.sqrt(var), np.nan)
        b, se = coef[:, 0], se_coef[:, 0]
        zstat = b / se
        p = 2.0 * stats.norm.sf(np.abs(zstat))
    stratified = strata is not None
    adjusted = f", treatment adjusted for {q - 1} covariate{'' if q == 2 else 's'}" if q > 1 else ""
    method = f"Cox PH ({ties.capitalize()} ties){adjusted}{', stratified' if stratified else ''}, Wald test"
    return BatchResult(method, np.exp(b), np.exp(b - zc * se), np.exp(b + zc * se), p, zstat, n_arm,
                       {"log_hr": b, "se": se, "coef": coef, "se_coef": se_coef, "coef_names": names,
                        "loglik": np.where(good, ll, np.nan), "iterations": iters, "converged": conv,
                        "events": events, "ties": ties, "stratified": stratified})


def design_matrix(data: pd.DataFrame, covariates) -> tuple[np.ndarray, list[str], dict]:
    """Numeric columns as they are; other columns (text, category, bool) dummy coded with the first sorted level
    as the reference. Returns ``(X (N, p), names, reference_levels)``; missing values stay NaN."""
    cols, names, refs = [], [], {}
    for c in covariates:
        col = data[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            cols.append(numeric_column(data, c))
            names.append(c)
            continue
        dummies, levels = dummy_columns(col)
        if len(levels) < 2:
            raise InvalidDataError(f"column {c!r}: a categorical covariate needs two levels, found {levels}; "
                                   f"drop it from covariates")
        refs[c] = levels[0]
        cols += list(dummies.T)
        names += [f"{c}[{lev}]" for lev in levels[1:]]
    x = np.column_stack(cols) if cols else np.zeros((len(data), 0))
    return x, names, refs


def cox_adjusted_test(data: pd.DataFrame, *, time: str, event: str, arm: str, treated_value, covariates=(),
                      strata: str | None = None, ties: str = "efron", alpha: float = 0.05) -> TestResult:
    """Cox PH of ``time``/``event`` on ``arm == treated_value`` adjusted for ``covariates`` (column names),
    optionally stratified by the levels of column ``strata``.

    Numeric covariates enter linearly; other columns are dummy coded with the first sorted level as the
    reference (``details["reference_levels"]``). Rows with a missing time, event, arm, covariate or stratum are
    dropped (complete cases; ``details["rows_dropped"]``).
    """
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    extra = covariates + ([strata] if strata is not None else [])
    sub = complete_rows(data, time=time, event=event, arm=arm, extra=extra)
    if sub.empty:
        raise InvalidDataError(f"no complete row in columns {[time, event, arm, *extra]}")
    t, e, x = survival_arrays(sub, time=time, event=event, arm=arm, treated_value=treated_value)
    z, names, refs = design_matrix(sub, covariates)
    constant = [n for n, col in zip(names, z.T) if np.ptp(col) == 0]
    if constant:
        raise InvalidDataError(f"covariates {constant} are constant in the analysed rows; drop them")
    codes = stratum_codes(sub, strata)[0][None] if strata is not None else None
    res = cox_adjusted_batched(t[None], e[None], x[None], z[None], codes, alpha, ties=ties, names=names)
    out = to_test_result(res)
    out.details.update({"reference_levels": refs, "coding": "dummy (treatment) coding of categorical "
                        "covariates; reference = first sorted level", "strata": strata,
                        "rows_dropped": int(len(data) - len(sub))})
    return out
