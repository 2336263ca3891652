"""Logistic regression of a binary outcome on treatment and covariates, Wald test and CI for the odds ratio.

Method: maximum likelihood for ``logit P(y = 1) = b0 + b1 treated + covariates @ g``; log-likelihood
``l(b) = sum_i [y_i eta_i - log(1 + e^eta_i)]``, score ``X'(y - mu)``, information ``X' diag(mu (1 - mu)) X``
(``mu = expit(eta)``). Newton-Raphson (= IRLS) from ``b0 = logit(ybar)``, other coefficients 0, vectorised
over replicates (one batched ``(p+2) x (p+2)`` solve per iteration with ``numpy.linalg``), halving the step
while the log-likelihood decreases, until the largest component of the Newton step is below ``1e-10``
(at most 50 iterations). Numeric covariates are centred and scaled within each replicate before fitting
(exactly undone for the reported coefficients; ``b1`` and its standard error are unchanged by this
reparametrisation). Estimate: odds ratio ``exp(b1)`` treated vs control; Wald ``se = sqrt([I^-1]_11)`` at
the MLE, ``z = b1 / se`` (the reported statistic), two-sided normal p, CI ``exp(b1 -/+ z_{1-alpha/2} se)``.
Matches ``statsmodels`` ``Logit(y, X).fit(disp=0)`` params, bse, pvalues and llf.

Speed: each evaluation is a handful of whole-array passes: ``a = s eta`` with ``s = 2y - 1`` from one
batched matrix product on a design signed by ``s``, one ``exp``, one ``log``, and one batched product giving
the score and every information entry from the weighted sums of ``[1, treated, z_j, z_i z_j]``; replicates
are processed in blocks of 128 so that the working arrays stay in cache.

Undefined (NaN in every output; ``converged`` False): an arm with fewer than two analysable patients; an arm
without events or without non-events (``b1`` is then infinite: quasi-complete separation on treatment,
detected exactly before iterating); a rank-deficient design (constant or collinear covariates); a singular
information matrix during the iterations; and any other (quasi-)separation, whose MLE is infinite, which
shows as a Newton iteration that does not converge within 50 iterations (its steps stay of order one, as
the fitted probabilities of the separated patients tend to 0 or 1; a finite MLE is reached in well under 20).
Rows with a missing outcome or any missing covariate are not analysable.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError

from ._common import as_replicates, dummy_columns, numeric_column, require_columns, to_test_result, z_crit
from .binary import binary_arrays
from .result import BatchResult, TestResult

__all__ = ["logistic_batched", "logistic_test"]

METHOD = "logistic regression, odds ratio, Wald test"
CODING = "treatment (dummy) coding; reference level = first sorted level"
_TOL, _MAX_ITER, _MAX_HALVING, _BLOCK = 1e-10, 50, 40, 128


def _products(p: int):
    """Where each information-matrix entry sits in the weighted sums ``S`` of :meth:`_Block.evaluate`.

    The design table has columns ``[1, treated, z_1..z_p, z_i z_j (i <= j)]``; ``S[:, :, 0]`` holds their
    ``W``-weighted sums, ``S[:, :, 1]`` their ``W treated``-weighted sums and ``S[:, :, 2]`` the score sums,
    so ``info[i, j] = S[:, CS[i, j], RS[i, j]]`` (``treated^2 = treated``) without forming ``X' W X``.
    Returns the upper-triangle indices of the products and ``RS``, ``CS``.
    """
    k = p + 2
    iu = np.triu_indices(p)
    pair = {(int(i), int(j)): k + n for n, (i, j) in enumerate(zip(*iu))}
    rs, cs = np.zeros((k, k), dtype=int), np.zeros((k, k), dtype=int)
    for i in range(k):
        for j in range(k):
            lo, hi = min(i, j), max(i, j)
            rs[i, j], cs[i, j] = (lo, hi) if lo < 2 else (0, pair[(lo - 2, hi - 2)])
    return iu, rs, cs


class _Block:
    """The design of a block of replicates, signed by ``s = 2y - 1`` (0 on unusable rows, which then
    contribute nothing), laid out column-major per replicate: ``MT`` ``(B, m, N)`` holds ``s``, ``s treated``,
    ``s z_j`` (the first ``k`` planes: ``X``) and the signed products ``s z_i z_j``; ``c = sum_n X`` so that
    ``sum_n s eta = c . beta``."""

    def __init__(self, z, treated, s, iu):
        B, p, N = z.shape
        k = p + 2
        self.MT = np.empty((B, k + len(iu[0]), N))
        self.MT[:, 0] = s
        np.multiply(s, treated, out=self.MT[:, 1])
        np.multiply(z, s[:, None, :], out=self.MT[:, 2:k])
        np.multiply(self.MT[:, 2 + iu[0]], z[:, iu[1]], out=self.MT[:, k:])
        self.t = treated.astype(float)
        self.c = self.MT[:, :k].sum(axis=2)
        self.n_off = (s == 0).sum(axis=1) * np.log(2.0)
        self.k = k
        self._buffers()

    def _buffers(self):
        """Work arrays reused by every evaluation (fresh large arrays cost a page fault per 4 KiB)."""
        B, _, N = self.MT.shape
        self.a, self.V, self.tmp = np.empty((B, 1, N)), np.empty((B, 3, N)), np.empty((B, N))

    def take(self, rows) -> _Block:
        new = object.__new__(_Block)
        new.MT, new.t, new.c, new.n_off = (v[rows] for v in (self.MT, self.t, self.c, self.n_off))
        new.k = self.k
        new._buffers()
        return new

    def evaluate(self, beta):
        """Log-likelihood ``(B,)`` and weighted sums ``S`` ``(B, m, 3)`` at ``beta``.

        With ``a = s eta`` (the logit of the observed outcome), ``e = exp(a)``, ``q = 1/(1 + e) = 1 - P(y)``:
        ``log P(y) = a - log(1 + e)``, ``W = mu (1 - mu) = e q^2``, ``y - mu = s q``. An overflowing ``e``
        (``a > 709``) gives ``-inf``, i.e. a step to be halved.
        """
        a, V = self.a[:, 0, :], self.V
        np.matmul(beta[:, None, :], self.MT[:, :self.k], out=self.a)
        e = np.exp(a, out=a)
        np.add(e, 1.0, out=V[:, 2])
        ll = (np.einsum("bk,bk->b", self.c, beta) - np.log(V[:, 2], out=self.tmp).sum(axis=1)
              + self.n_off)
        np.reciprocal(V[:, 2], out=V[:, 2])
        np.multiply(e, V[:, 2], out=V[:, 0])
        V[:, 0] *= V[:, 2]
        V[:, 0] *= self.MT[:, 0]                     # W s: pairs with the signed table to W X_j
        np.multiply(V[:, 0], self.t, out=V[:, 1])
        return ll, np.matmul(self.MT, V.transpose(0, 2, 1))


def _solve(h: np.ndarray, b: np.ndarray):
    """``(h^-1 b, ok)`` batched; a singular matrix fails its own row only (LAPACK fails the whole batch)."""
    ok = np.ones(len(h), dtype=bool)
    try:
        out = np.linalg.solve(h, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        ok = _nonsingular(h, 1e-14)
        h = np.where(ok[:, None, None], h, np.eye(h.shape[1]))
        out = np.linalg.solve(h, b[..., None])[..., 0]
    return out, ok & np.isfinite(out).all(axis=1)


def _nonsingular(h: np.ndarray, tol: float) -> np.ndarray:
    """Rows of a batch of symmetric matrices that are numerically positive definite."""
    ev = np.linalg.eigvalsh(np.where(np.isfinite(h), h, 0.0))
    return (ev[:, 0] > tol * np.abs(ev[:, -1])) & np.isfinite(h).all(axis=(1, 2))


def _fit_block(blk: _Block, beta, rs, cs):
    """Newton-Raphson with step halving on one block; returns beta (B, k), info (B, k, k), loglik,
    iterations, converged. Finished rows leave the working set once they are half of it, so a
    non-converging (separated) replicate does not drag its whole block through every iteration."""
    B, k = beta.shape
    out_b, out_i = np.full((B, k), np.nan), np.full((B, k, k), np.nan)
    out_ll, iters, conv = np.full(B, np.nan), np.zeros(B, dtype=int), np.zeros(B, dtype=bool)
    idx = np.arange(B)
    ll, S = blk.evaluate(beta)
    info = S[:, cs, rs]
    active = _nonsingular(info, 1e-11)            # at the start W is constant: a rank check of the design
    for it in range(_MAX_ITER + 1):
        step, ok = _solve(info, S[:, :k, 2])
        done = active & ok & (np.abs(step).max(axis=1) < _TOL)
        d = idx[done]
        out_b[d], out_i[d], out_ll[d], iters[d], conv[d] = beta[done], info[done], ll[done], it, True
        active &= ok & ~done
        if it == _MAX_ITER or not active.any():
            break
        if active.sum() <= len(idx) // 2:
            blk = blk.take(active)
            idx, beta, ll, step, active = (v[active] for v in (idx, beta, ll, step, active))
        step[~active] = 0.0
        new = beta + step
        ll_new, S = blk.evaluate(new)
        worse = active & ~(ll_new >= ll - 1e-12 * np.abs(ll))
        for _ in range(_MAX_HALVING):
            if not worse.any():
                break
            w = np.flatnonzero(worse)
            step[w] /= 2.0
            new[w] = beta[w] + step[w]
            ll_new[w], S[w] = blk.take(w).evaluate(new[w])
            worse[w] = ~(ll_new[w] >= ll[w] - 1e-12 * np.abs(ll[w]))
        active &= ~worse                           # no ascent found: give up (not converged)
        beta, ll, info = new, ll_new, S[:, cs, rs]
        iters[idx[active]] = it + 1
    return out_b, out_i, out_ll, iters, conv


def _fit(cov, treated, y, used, ok):
    """Fit the replicates where ``ok`` in blocks of ``_BLOCK`` replicates (vectorised within a block; the
    blocks keep the working arrays cache-sized). Covariates are centred and scaled per replicate; returns
    the coefficients and information on that scale plus ``mean``, ``sd`` (R, p); NaN where not ``ok``."""
    R, N, p = cov.shape
    k = p + 2
    iu, rs, cs = _products(p)
    beta_all, info_all = np.full((R, k), np.nan), np.full((R, k, k), np.nan)
    ll_all, it_all, conv_all = np.full(R, np.nan), np.zeros(R, dtype=int), np.zeros(R, dtype=bool)
    mean_all, sd_all = np.zeros((R, p)), np.ones((R, p))
    for start in range(0, R, _BLOCK):
        sl = slice(start, start + _BLOCK)
        okb = ok[sl]
        if not okb.any():
            continue
        rows = np.arange(R)[sl][okb]
        pick = (lambda a: a[sl]) if okb.all() else (lambda a: a[rows])
        u = pick(used)
        complete = bool(u.all())
        n = u.sum(axis=1)
        z = np.ascontiguousarray(pick(cov).transpose(0, 2, 1))                  # (B, p, N)
        if not complete:
            z = np.where(u[:, None, :], z, 0.0)
        mean = z.sum(axis=2) / n[:, None]
        z -= mean[:, :, None]
        if not complete:
            z *= u[:, None, :]
        sd = np.sqrt(np.einsum("bpn,bpn->bp", z, z) / n[:, None])
        sd = np.where(sd > 0, sd, 1.0)
        z /= sd[:, :, None]
        s = (pick(y) > 0.5) * 2.0 - 1.0
        if not complete:
            s *= u
        beta = np.zeros((len(rows), k))
        ybar = (s > 0).sum(axis=1) / n
        beta[:, 0] = np.log(ybar / (1.0 - ybar))
        blk = _Block(z, pick(treated), s, iu)
        beta_all[rows], info_all[rows], ll_all[rows], it_all[rows], conv_all[rows] = _fit_block(blk, beta,
                                                                                                 rs, cs)
        mean_all[rows], sd_all[rows] = mean, sd
    return beta_all, info_all, ll_all, it_all, conv_all, mean_all, sd_all


def logistic_batched(y: np.ndarray, treated: np.ndarray, covariates: np.ndarray | None = None,
                     alpha: float = 0.05) -> BatchResult:
    """Logistic regression on every replicate: ``y`` (0/1, NaN = missing) and ``treated`` ``(R, N)``,
    ``covariates`` ``(R, N, p)`` or None (a NaN or infinite covariate makes its row not analysable).

    ``estimate``: odds ratio; ``statistic``: Wald z. ``n_per_arm`` counts analysable rows. ``details``:
    ``log_or``, ``se`` (of log OR), ``iterations``, ``converged``, ``loglik`` (at the MLE), ``coefficients``
    and ``coefficient_se`` ((R, p + 2): intercept, treated, covariates in order), ``events`` ((R, 2):
    control, treated).
    """
    y = as_replicates(y, ndim=2, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    zc = z_crit(alpha)
    R, N = y.shape
    if treated.shape != (R, N):
        raise ValueError(f"y {y.shape} and treated {treated.shape} must have the same shape")
    cov = np.zeros((R, N, 0)) if covariates is None else as_replicates(covariates, ndim=3, name="covariates")
    if cov.shape[:2] != (R, N):
        raise ValueError(f"covariates {cov.shape} must be (R, N, p) with (R, N) = {(R, N)}")
    p = cov.shape[2]
    used = ~np.isnan(y)
    if not np.isfinite(cov).all():
        used &= ~np.isnan(np.einsum("rnp->rn", cov * 0.0))                  # 0 * (inf or nan) is nan
    event = used & (y > 0.5)
    n = np.stack([(used & ~treated).sum(axis=1), (used & treated).sum(axis=1)], axis=1)
    events = np.stack([(event & ~treated).sum(axis=1), (event & treated).sum(axis=1)], axis=1)
    ok = (n.min(axis=1) >= 2) & (events.min(axis=1) >= 1) & ((n - events).min(axis=1) >= 1)
    with np.errstate(all="ignore"):
        beta, info, ll, iters, conv, mean, sd = _fit(cov, treated, y, used, ok)
        good = ok & conv
        cov_b = np.full_like(info, np.nan)
        if good.any():
            cov_b[good] = np.linalg.inv(info[good])
        # back to the original covariate scale: b_orig = T b, cov_orig = T cov T'
        T = np.broadcast_to(np.eye(p + 2), (R, p + 2, p + 2)).copy()
        T[:, 2:, 2:] = np.eye(p)[None] / sd[:, :, None]
        T[:, 0, 2:] = -mean / sd
        coef = np.matmul(T, beta[..., None])[..., 0]
        coef_se = np.sqrt(np.einsum("rij,rjk,rik->ri", T, cov_b, T))
        good &= np.isfinite(coef_se).all(axis=1) & (coef_se[:, 1] > 0) & np.isfinite(coef).all(axis=1)
        nan = np.where(good, 0.0, np.nan)
        b1, se = coef[:, 1] + nan, coef_se[:, 1] + nan
        z = b1 / se
        pval = 2.0 * stats.norm.sf(np.abs(z))
    return BatchResult(METHOD, np.exp(b1), np.exp(b1 - zc * se), np.exp(b1 + zc * se), pval, z, n,
                       {"log_or": b1, "se": se, "iterations": iters, "converged": good,
                        "loglik": ll + nan, "coefficients": coef + nan[:, None],
                        "coefficient_se": coef_se + nan[:, None], "events": events})


def _covariate_matrix(data: pd.DataFrame, covariates: list[str], categorical: set[str]):
    """``(columns, names, reference_levels, missing)``: one float column per numeric covariate and one 0/1
    column per non-reference level of each categorical one (NaN on rows missing anything)."""
    cols, names, refs = [], [], {}
    missing = np.zeros(len(data), dtype=bool)
    for c in covariates:
        col = data[c]
        numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        if numeric and c not in categorical:
            v = numeric_column(data, c)
            if np.isinf(v).any():
                rows = np.flatnonzero(np.isinf(v))[:5].tolist()
                raise InvalidDataError(f"column {c!r}: infinite values at rows {rows}; replace them by finite "
                                       f"values or leave them missing")
            cols.append(v)
            names.append(c)
            missing |= np.isnan(v)
            continue
        missing |= col.isna().to_numpy()
        dummies, levels = dummy_columns(col)
        if not levels:
            raise InvalidDataError(f"column {c!r}: every value is missing; drop this covariate")
        refs[c] = levels[0]
        cols += list(np.nan_to_num(dummies).T)                       # missing rows are dropped by `missing`
        names += [f"{c}[T.{lev}]" for lev in levels[1:]]
    return cols, names, refs, missing


def logistic_test(data: pd.DataFrame, *, outcome: str, arm: str, treated_value,
                  covariates: Iterable[str] = (), alpha: float = 0.05,
                  categorical: Iterable[str] = ()) -> TestResult:
    """Logistic regression of the 0/1 column ``outcome`` on ``arm == treated_value`` and ``covariates``.

    Numeric covariates enter linearly; non-numeric ones (strings, categories), and any named in
    ``categorical``, are dummy coded with the first sorted level as reference. Rows with a missing outcome,
    arm or covariate are dropped (``details["n_dropped"]``). ``details`` adds ``coefficient_names``,
    ``reference_levels`` ({column: level}) and ``coding``.
    """
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    categorical = {categorical} if isinstance(categorical, str) else set(categorical)
    require_columns(data, [outcome, arm, *covariates])
    problems = []
    if len(set(covariates)) != len(covariates):
        problems.append(f"covariates {covariates} name a column more than once; list each once")
    for c in covariates:
        if c in (outcome, arm):
            problems.append(f"column {c!r} is the outcome or the arm and cannot also be a covariate")
    for c in sorted(categorical - set(covariates)):
        problems.append(f"categorical column {c!r} is not among the covariates {covariates}; add it there")
    if problems:
        raise InvalidDataError(problems)
    y, treated = binary_arrays(data, outcome=outcome, arm=arm, treated_value=treated_value)
    cols, names, refs, missing = _covariate_matrix(data, covariates, categorical)
    keep = ~np.isnan(y) & ~missing
    cov = np.stack(cols, axis=1)[keep][None] if cols else None
    res = logistic_batched(y[keep][None], treated[keep][None], cov, alpha)
    out = to_test_result(res)
    out.details.update({"n_dropped": int(len(data) - keep.sum()),
                        "coefficient_names": ["intercept", f"{arm}[T.{treated_value}]", *names],
                        "reference_levels": refs, "coding": CODING})
    return out
