"""MMRM: mixed model for repeated measures of the change from baseline, treatment contrast at the last visit.

Model (per replicate): the response is the change from baseline ``c_ij = y_ij - y_i0`` at every post-baseline
visit ``j = 1..K``; fixed effects are a separate intercept, treatment effect and baseline slope per visit
(``change ~ visit + visit:treated + visit:baseline``): ``E c_ij = a_j + b_j treated_i + g_j baseline_i``; the
``K x K`` covariance across post-baseline visits is unstructured (``Sigma = L L'``, ``L`` lower triangular with a
log diagonal: ``K (K + 1) / 2`` parameters) and estimated by REML. Patients without a baseline, or without any
post-baseline value, are excluded; missed visits and dropout are handled by the likelihood (valid under MAR).
The fit is :func:`~analysis.estimators.mmrm_fit.fit_reml`: per-missingness-pattern sufficient statistics,
Newton-Raphson with exact analytic derivatives, all replicates together.

Estimate: ``b_K`` (treated minus control at the last visit), ``SE = sqrt(c' M^-1 c)`` with ``M = sum X_i' Sigma_i^-1
X_i`` at the REML estimate; ``df="satterthwaite"`` (default): ``df = 2 v^2 / (grad v' A grad v)`` with
``v(theta) = c' M(theta)^-1 c``, its exact gradient in the covariance parameters and ``A`` the inverse observed
information (negative Hessian) of the REML log-likelihood, both exact (analytic), as in the R mmrm package;
``df="asymptotic"``: normal (``df = inf``). Two-sided t-test p and CI ``b_K -/+ t_{1-alpha/2, df} SE``.

Checked against R nlme ``gls`` (``corSymm`` + ``varIdent``, REML) with emmeans ``mode = "satterthwaite"``
(tests/analysis/results/mmrm_reference.R): estimates and SEs agree to 3e-6; emmeans uses the same df formula but
with finite-difference derivatives (numDeriv for ``grad v``, nlme's coarse fdHess for the information), which
moves its df by up to 5 %; with emmeans' formula fed a numDeriv Hessian the df agree to 1e-6. With complete data
the MMRM reduces to the per-visit ANCOVA (OLS, exactly ``n - 3`` Satterthwaite df), checked against statsmodels.
No Kenward-Roger correction of the SE: in small trials the test is somewhat liberal (simulated null, 5 visits
with heavy dropout: 7.4 % rejections at 5 % with 40 patients, 5.5 % with 150; 2,000 replicates each).
Undefined (NaN): an arm with fewer than two analysable patients, a visit with fewer than four values, a singular
design, or a fit that does not converge (e.g. an unbounded likelihood: too few patients at a visit for an
unstructured covariance, so that a singular covariance fits it exactly).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError

from ._common import as_replicates, long_to_grid, to_test_result, z_crit
from .mmrm_fit import fit_reml, pairwise_start, pattern_stats
from .result import BatchResult, TestResult

__all__ = ["mmrm_batched", "mmrm_test", "DF_METHODS"]

METHOD = "MMRM (change from baseline, unstructured covariance, REML), contrast at the last visit"
#: accepted ``df`` keywords
DF_METHODS = ("satterthwaite", "asymptotic")
_Q = 3   # covariates per visit: intercept, treated, baseline


def longitudinal_inputs(y, treated, visit_times, alpha: float, df: str):
    """``(y (R, N, V), treated (R, N) bool, visit_times (V,))`` checked: shapes, at least one replicate, alpha,
    the df method."""
    y = as_replicates(y, ndim=3, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    visit_times = np.asarray(visit_times, dtype=float)
    z_crit(alpha)
    check_df(df)
    R, N, V = y.shape
    if R == 0:
        raise ValueError("y has no replicate (R = 0)")
    if treated.shape != (R, N) or visit_times.shape != (V,):
        raise ValueError(f"shapes do not match: y {y.shape}, treated {treated.shape}, visit_times "
                         f"{visit_times.shape}")
    return y, treated, visit_times


def check_df(df: str) -> None:
    if df not in DF_METHODS:
        raise ValueError(f"df must be one of {DF_METHODS}, got {df!r}")


def cholesky_param(theta: np.ndarray, k: int):
    """``G = L L'`` from ``theta`` ``(R, k (k + 1) / 2)`` (row-major lower triangle of ``L``, log diagonal).

    Returns ``G`` ``(R, k, k)``, ``dG = dG / dtheta`` ``(R, d, k, k)`` and ``curv(Dg)``: for symmetric ``Dg``
    ``(R, k, k)``, the matrix ``sum_ij Dg_ij d2G_ij / dtheta_a dtheta_b`` ``(R, d, d)``. With ``dL_a = s_a E_(i_a j_a)``
    (``s_a = L_ii`` on the diagonal, 1 elsewhere), ``d2G_ab = dL_a dL_b' + dL_b dL_a' + [a = b diagonal] dG_a``.
    """
    R, d = theta.shape
    ti, tj = np.tril_indices(k)
    diag = ti == tj
    vals = np.where(diag, np.exp(np.where(diag, theta, 0.0)), theta)
    L = np.zeros((R, k, k))
    L[:, ti, tj] = vals
    s = np.where(diag, vals, 1.0)
    dL = np.zeros((R, d, k, k))
    dL[:, np.arange(d), ti, tj] = s
    dLLt = dL @ np.swapaxes(L, -1, -2)[:, None]
    dG = dLLt + np.swapaxes(dLLt, -1, -2)
    same_col = tj[:, None] == tj[None, :]

    def curv(Dg: np.ndarray) -> np.ndarray:
        out = 2.0 * s[:, :, None] * s[:, None, :] * same_col * Dg[:, ti[:, None], ti[None, :]]
        out[:, np.arange(d), np.arange(d)] += np.where(diag, np.einsum("raij,rij->ra", dG, Dg), 0.0)
        return out
    return L @ np.swapaxes(L, -1, -2), dG, curv


def cholesky_theta(sigma: np.ndarray) -> np.ndarray:
    """``theta`` of :func:`cholesky_param` for positive definite ``sigma``."""
    L = np.linalg.cholesky(sigma)
    ti, tj = np.tril_indices(sigma.shape[-1])
    vals = L[:, ti, tj]
    return np.where(ti == tj, np.log(np.abs(vals)), vals)


def _start(cov: np.ndarray) -> np.ndarray:
    """A positive definite start from the pairwise covariance: correlations shrunk toward I until eig >= 0.1."""
    var = np.einsum("rkk->rk", cov)
    s = np.sqrt(np.maximum(var, 1e-8 * np.maximum(var.max(axis=1), 1e-300)[:, None]))
    corr = np.clip(cov / s[:, :, None] / s[:, None, :], -1.0, 1.0)
    K = cov.shape[-1]
    corr[:, np.arange(K), np.arange(K)] = 1.0
    e_min = np.linalg.eigvalsh(corr)[:, 0]
    lam = np.where(e_min >= 0.1, 1.0, 0.9 / (1.0 - np.minimum(e_min, 0.1)))
    corr = lam[:, None, None] * corr + (1.0 - lam)[:, None, None] * np.eye(K)
    return cholesky_theta(s[:, :, None] * corr * s[:, None, :])


def mmrm_batched(y: np.ndarray, treated: np.ndarray, visit_times: np.ndarray, alpha: float = 0.05, *,
                 df: str = "satterthwaite") -> BatchResult:
    """MMRM on every replicate: ``y`` ``(R, N, V)`` on the visit grid ``visit_times`` ``(V,)``, ``y[..., 0]`` the
    baseline (NaN or another non-finite value = missed / after dropout); ``treated`` ``(R, N)``.

    ``n_per_arm`` counts analysable patients (baseline and at least one post-baseline value). ``details``:
    ``df``, ``se``, ``visit_times`` (post-baseline, ``(K,)``), ``visit_estimate`` / ``visit_se`` / ``visit_df``
    ``(R, K)`` (treated minus control at every post-baseline visit), ``sigma`` ``(R, K, K)`` (covariance of the
    change), ``loglik`` (REML log-likelihood; R nlme's ``logLik`` is this minus ``log|X'X| / 2``), ``iterations``
    (Newton evaluations), ``converged``.
    """
    y, treated, visit_times = longitudinal_inputs(y, treated, visit_times, alpha, df)
    R, N, V = y.shape
    if V < 2:
        raise ValueError(f"MMRM needs a baseline and at least one post-baseline visit, got {V} visits")
    K = V - 1
    base = y[..., 0]
    change = y[..., 1:] - base[..., None]
    use = np.isfinite(base) & np.isfinite(change).any(axis=-1)
    n = np.stack([(use & ~treated).sum(axis=1), (use & treated).sum(axis=1)], axis=1)
    with np.errstate(all="ignore"):
        centre = np.where(use, base, 0.0).sum(axis=1) / use.sum(axis=1)
    z = np.stack([np.ones((R, N)), treated.astype(float), np.where(use, base, 0.0) - np.nan_to_num(centre)[:, None]],
                 axis=-1)
    A = np.zeros((_Q, K, K * _Q))
    for m in range(_Q):
        A[m, np.arange(K), np.arange(K) * _Q + m] = 1.0
    pats = pattern_stats(change, z, use)
    per_visit = np.einsum("rpk,rp->rk", pats.mask, pats.count)
    _, cov0, ok = pairwise_start(pats, A)
    ok &= (n.min(axis=1) >= 2) & (per_visit.min(axis=1) >= _Q + 1)
    contrasts = np.zeros((K, K * _Q))
    contrasts[np.arange(K), np.arange(K) * _Q + 1] = 1.0
    fit = {"beta": np.full((R, K * _Q), np.nan), "contrast_var": np.full((R, K), np.nan),
           "satterthwaite_df": np.full((R, K), np.nan), "sigma": np.full((R, K, K), np.nan),
           "loglik": np.full(R, np.nan), "iterations": np.zeros(R, int), "converged": np.zeros(R, bool)}
    idx = np.flatnonzero(ok)
    if len(idx):
        got = fit_reml(pats.take(idx), A, lambda th: cholesky_param(th, K), _start(cov0[idx]), contrasts=contrasts)
        for key in fit:
            fit[key][idx] = got[key]
    good = fit["converged"]
    nan = np.where(good, 0.0, np.nan)
    with np.errstate(all="ignore"):
        est = fit["beta"][:, 1::_Q] + nan[:, None]
        se = np.sqrt(fit["contrast_var"]) + nan[:, None]
        dfs = (fit["satterthwaite_df"] if df == "satterthwaite" else np.full((R, K), np.inf)) + nan[:, None]
        t = est[:, -1] / se[:, -1]
        p = 2.0 * stats.t.sf(np.abs(t), dfs[:, -1])
        q = stats.t.ppf(1.0 - alpha / 2.0, dfs[:, -1])
    details = {"df": dfs[:, -1], "se": se[:, -1], "visit_times": visit_times[1:], "visit_estimate": est,
               "visit_se": se, "visit_df": dfs, "sigma": fit["sigma"] + nan[:, None, None],
               "loglik": fit["loglik"] + nan, "iterations": fit["iterations"], "converged": good}
    return BatchResult(METHOD, est[:, -1], est[:, -1] - q * se[:, -1], est[:, -1] + q * se[:, -1], p, t, n,
                       details)


def mmrm_test(data: pd.DataFrame, *, id: str, visit: str, value: str, arm: str, treated_value,
              alpha: float = 0.05, df: str = "satterthwaite") -> TestResult:
    """MMRM of long data (one row per patient visit); the baseline is the smallest visit time, e.g.
    ``mmrm_test(df, id="patient_id", visit="month", value="alsfrs_r", arm="arm", treated_value="treatment")``.
    """
    check_df(df)
    y, visits, treated, _ = long_to_grid(data, id=id, visit=visit, value=value, arm=arm,
                                         treated_value=treated_value)
    if len(visits) < 2:
        raise InvalidDataError(f"column {visit!r}: MMRM needs a baseline and at least one later visit, found "
                               f"{len(visits)} distinct visit time(s); include the post-baseline visits")
    return to_test_result(mmrm_batched(y[None], treated[None], visits, alpha, df=df))
