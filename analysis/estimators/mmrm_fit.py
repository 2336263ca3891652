"""Batched REML engine shared by the MMRM and the random-slope model (private).

Model, one replicate: patient ``i`` has a response vector ``y_i`` over ``K`` scheduled visits, observed on the set
``O_i`` (NaN elsewhere), ``y_iO = X_iO beta + e_i`` with ``e_i ~ N(0, Sigma_OO(theta))``, patients independent.
The design is ``X_i = sum_m z_im A_m`` from patient covariates ``z_i`` ``(q,)`` and fixed ``K x p`` matrices
``A_m`` (MMRM: ``A_m = I_K (x) e_m'``, one coefficient per visit and covariate; random slope: rows ``(1, t_k, 0)``
for ``z = 1`` and ``(0, 0, t_k)`` for ``z = treated``). Patients observed on the same set ``O`` share
``W_O = pad(Sigma_OO^-1)``, so the restricted (REML) log-likelihood

    l_R(theta) = -1/2 [sum_O n_O log|Sigma_OO| + Q + log|M| - log|X'X| + (n - p) log(2 pi)],
    M = sum_i X_i' W_i X_i = sum_O sum_mn Szz_O[m, n] A_m' W_O A_n,   u = sum_O sum_m A_m' W_O Syz_O[:, m],
    beta = M^-1 u,   Q = sum_i y_i' W_i y_i - u' beta = sum_O tr(W_O Syy_O) - u' beta

needs only per-pattern sufficient statistics (``n_O``, ``Syy = sum y y'``, ``Syz = sum y z'``, ``Szz = sum z z'``,
missing entries of ``y`` set to 0), computed once (``n`` = number of observations; the ``log|X'X|`` term makes
``l_R`` invariant to the coding of the fixed effects; R nlme's REML ``logLik`` omits it). ``W_O`` comes
from masking: with ``D = diag(observed)``, ``Sigma* = D Sigma D + (I - D)`` has ``log|Sigma*| = log|Sigma_OO|`` and
``D Sigma*^-1 D = pad(Sigma_OO^-1)``; missing data are thereby handled by likelihood (valid under MAR).

Derivatives (exact, analytic): with ``V_k = dSigma/dtheta_k`` block-diagonal, ``P = W - W X M^-1 X' W`` and
``e_i = W_i (y_i - X_i beta)``, the score is ``-1/2 tr(P V_k) + 1/2 y'P V_k P y = <dSigma/dtheta_k, D>`` with
``D = 1/2 sum_O (E_O + H_O - n_O W_O)``, ``E_O = sum_(i in O) e_i e_i'``, ``H_O = sum_(i in O) W_O X_i M^-1 X_i' W_O``;
the observed information comes from ``d2 l_R = -1/2 tr(P V_kl) + 1/2 tr(P V_k P V_l) - y'P V_k P V_l P y +
1/2 y'P V_kl P y``, every trace again a sum over patterns (``N_k = X' W V_k W X = -dM/dtheta_k``).

Optimisation: Newton-Raphson on ``theta`` with that gradient and Hessian (Fisher scoring with the expected
information ``1/2 sum_i tr(W_i V_k W_i V_l)`` where ``-H`` is not positive definite) and a backtracking line search;
all replicates are optimised together (numpy, no replicate loop), each stopping at the first point where its
Newton decrement ``g' (-H)^-1 g`` is below ``tol`` (1e-14). A variance component running to its boundary (a
log-Cholesky diagonal whose influence on ``Sigma`` falls below 1e-6 of ``max |Sigma|``, e.g. no random-slope
variance) is frozen there, so that the other parameters converge quadratically; if the likelihood still rises
along it (gradient above 0.01 per e-fold), the likelihood is unbounded (a singular covariance fits a visit
exactly, e.g. an unstructured covariance with a handful of patients at a visit) and the fit is not converged.

Satterthwaite degrees of freedom for a contrast ``c``: ``v(theta) = c' M(theta)^-1 c``,
``dv/dtheta_k = c' M^-1 N_k M^-1 c`` and ``df = 2 v^2 / (grad v' A grad v)`` with
``A = (-d2 l_R / dtheta2)^-1`` the inverse observed information at the REML estimate (the R mmrm package's
method; emmeans on nlme::gls computes the same quantities by finite differences). ``df`` does not depend on how
the covariance is parameterised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Patterns", "pattern_stats", "pairwise_start", "fit_reml"]


@dataclass(frozen=True)
class Patterns:
    """Per-replicate, per-missingness-pattern sufficient statistics (``P`` patterns, padded across replicates)."""

    count: np.ndarray   # (R, P) patients
    mask: np.ndarray    # (R, P, K) observed visits of the pattern
    syy: np.ndarray     # (R, P, K, K)
    syz: np.ndarray     # (R, P, K, q)
    szz: np.ndarray     # (R, P, q, q)

    @property
    def n_obs(self) -> np.ndarray:
        return (self.count[..., None] * self.mask).sum(axis=(1, 2))

    def take(self, idx: np.ndarray) -> Patterns:
        """The statistics of the replicates ``idx``."""
        return Patterns(self.count[idx], self.mask[idx], self.syy[idx], self.syz[idx], self.szz[idx])


def pattern_stats(resp: np.ndarray, z: np.ndarray, use: np.ndarray) -> Patterns:
    """Sufficient statistics of ``resp`` ``(R, N, K)`` (NaN = missing) and covariates ``z`` ``(R, N, q)`` over the
    patients with ``use`` ``(R, N)`` (non-finite values count as missing); patterns are numbered within each
    replicate by sorting, and the sums are one batched product of the pattern indicator ``(R, P, N)`` with the
    patients' outer products (no replicate loop)."""
    R, N, K = resp.shape
    q = z.shape[-1]
    if R == 0:
        raise ValueError("no replicate: y has R = 0")
    if K > 62:
        raise ValueError(f"at most 62 visits are supported, got {K}")
    if N == 0:                                                # no patient: one empty pattern
        resp, z, use = np.full((R, 1, K), np.nan), np.zeros((R, 1, q)), np.zeros((R, 1), dtype=bool)
        N = 1
    obs = np.isfinite(resp) & use[..., None]
    code = (obs.astype(np.int64) << np.arange(K, dtype=np.int64)).sum(axis=-1)
    order = np.argsort(code, axis=1, kind="stable")
    sc = np.take_along_axis(code, order, axis=1)
    new = np.ones((R, N), dtype=bool)
    new[:, 1:] = sc[:, 1:] != sc[:, :-1]
    sorted_gid = np.cumsum(new, axis=1) - 1
    P = int(sorted_gid[:, -1].max(initial=0)) + 1
    gid = np.empty_like(order)
    np.put_along_axis(gid, order, sorted_gid, axis=1)                          # pattern number of every patient
    r_of, pos = np.nonzero(new)
    mask = np.zeros((R, P, K), dtype=bool)
    mask[r_of, sorted_gid[r_of, pos]] = (sc[r_of, pos, None] >> np.arange(K)) & 1
    v = np.concatenate([np.where(obs, resp, 0.0), np.where(use[..., None], z, 0.0)], axis=-1)
    onehot = ((gid[:, None, :] == np.arange(P)[None, :, None]) & use[:, None, :]).astype(float)   # (R, P, N)
    svv = (onehot @ np.einsum("rni,rnj->rnij", v, v).reshape(R, N, (K + q) ** 2)).reshape(R, P, K + q, K + q)
    blocks = (svv[..., :K, :K], svv[..., :K, K:], svv[..., K:, K:])
    return Patterns(onehot.sum(-1), mask, *(np.ascontiguousarray(b) for b in blocks))


def _flat_design(A: np.ndarray) -> np.ndarray:
    """``A`` ``(q, K, p)`` -> ``(K q, p)`` with rows ordered (visit, covariate)."""
    q, K, p = A.shape
    return np.ascontiguousarray(A.transpose(1, 0, 2).reshape(K * q, p))


def pairwise_start(pats: Patterns, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting values: OLS on the available data and the pairwise-complete residual covariance.

    Returns ``(beta (R, p), cov (R, K, K), ok (R,))``; ``ok`` is False where ``X'X`` is singular (relative
    eigenvalue below 1e-10: the fixed effects are not estimable). ``cov`` is 0 for visit pairs never observed
    together.
    """
    a = _flat_design(A)
    m = pats.mask.astype(float)
    w = m[..., :, None] * m[..., None, :] * np.eye(m.shape[-1])                # identity on the observed visits
    xtx = a.T @ _kron_sum(w, pats.szz) @ a
    xty = (np.einsum("rpkl,rplm->rkm", w, pats.syz).reshape(len(m), -1)) @ a
    sc = np.sqrt(np.abs(np.einsum("rii->ri", xtx))) + 1e-300
    with np.errstate(all="ignore"):
        corr = xtx / sc[:, :, None] / sc[:, None, :]
        ok = np.isfinite(corr).all(axis=(1, 2))
        corr = np.where(ok[:, None, None], corr, np.eye(corr.shape[-1]))
        ok &= np.linalg.eigvalsh(corr)[:, 0] > 1e-10
        beta = np.linalg.solve(np.where(ok[:, None, None], xtx, np.eye(xtx.shape[-1])), xty[..., None])[..., 0]
        f = np.einsum("mka,ra->rkm", A, beta)                                       # fitted value = F z
        s = (pats.syy - f[:, None] @ np.swapaxes(pats.syz, -1, -2) - pats.syz @ np.swapaxes(f, -1, -2)[:, None]
             + f[:, None] @ pats.szz @ np.swapaxes(f, -1, -2)[:, None])
        mm = m[..., :, None] * m[..., None, :]
        pairs = (pats.count[..., None, None] * mm).sum(axis=1)
        cov = (s * mm).sum(axis=1) / pairs
    return beta, np.where(pairs > 0, cov, 0.0), ok


def _kron_sum(w: np.ndarray, szz: np.ndarray) -> np.ndarray:
    """``sum_p w_p (x) Szz_p`` for ``w`` ``(R, P, ..., K, K)``, as ``(R, ..., K q, K q)`` (rows (visit, covariate))."""
    R, P = w.shape[:2]
    mid, K, q = w.shape[2:-2], w.shape[-1], szz.shape[-1]
    wf = np.moveaxis(w.reshape(R, P, -1), 1, 2)                                   # (R, .. K K, P)
    out = (wf @ szz.reshape(R, P, q * q)).reshape(R, *mid, K, K, q, q)
    return np.swapaxes(out, -3, -2).reshape(R, *mid, K * q, K * q)


def _spd_inv_logdet(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inverse, log det, ok)`` of a stack of symmetric matrices by a Cholesky factorisation vectorised over the
    stack (a loop over the columns only; faster than per-matrix LAPACK calls for many small matrices); ``ok`` is
    False (inverse = I, log det = NaN) where a pivot is not positive."""
    K = x.shape[-1]
    L = np.zeros_like(x)
    piv = np.empty(x.shape[:-1])
    for j in range(K):
        piv[..., j] = x[..., j, j] - (L[..., j, :j] ** 2).sum(-1)
        dj = np.sqrt(np.where(piv[..., j] > 0, piv[..., j], 1.0))
        L[..., j, j] = dj
        if j + 1 < K:
            L[..., j + 1:, j] = (x[..., j + 1:, j] - (L[..., j + 1:, :j] @ L[..., j, :j, None])[..., 0]) / dj[..., None]
    ok = (piv > 1e-14 * np.abs(np.einsum("...kk->...k", x)).max(-1, keepdims=True)).all(-1)
    Li = np.zeros_like(x)                                                          # L^-1, forward substitution
    for i in range(K):
        Li[..., i, i] = 1.0 / L[..., i, i]
        if i:
            Li[..., i, :i] = -(L[..., i, None, :i] @ Li[..., :i, :i])[..., 0, :] / L[..., i, i, None]
    inv = np.swapaxes(Li, -1, -2) @ Li
    logdet = 2.0 * np.log(np.einsum("...kk->...k", L)).sum(-1)
    return np.where(ok[..., None, None], inv, np.eye(K)), np.where(ok, logdet, np.nan), ok


class _Problem:
    """The sufficient statistics of a set of replicates, and the REML log-likelihood with its derivatives."""

    def __init__(self, pats: Patterns, A: np.ndarray, cov_fn: Callable):
        self.A, self.a, self.cov_fn = A, _flat_design(A), cov_fn
        self.eye = self.a.shape[0] == self.a.shape[1] and bool((self.a == np.eye(len(self.a))).all())
        self.count, self.syy, self.syz, self.szz = pats.count, pats.syy, pats.syz, pats.szz
        self.m = pats.mask.astype(float)
        self.mm = self.m[..., :, None] * self.m[..., None, :]
        self.free = np.eye(self.m.shape[-1]) * (1.0 - self.m)[..., None, :]     # I - D
        xtx = self.a.T @ _kron_sum(self.mm * np.eye(self.m.shape[-1]), self.szz) @ self.a
        sign, logdet_xtx = np.linalg.slogdet(xtx)
        self.const = (pats.n_obs - A.shape[2]) * math.log(2.0 * math.pi) - np.where(sign > 0, logdet_xtx, np.nan)

    def subset(self, idx: np.ndarray) -> _Problem:
        out = object.__new__(_Problem)
        out.__dict__.update({k: (v[idx] if isinstance(v, np.ndarray) and k not in ("A", "a") else v)
                             for k, v in self.__dict__.items()})
        return out

    def evaluate_chunked(self, idx: np.ndarray, theta: np.ndarray, budget: float = 1e7) -> dict:
        """``subset(idx).evaluate(theta, derivatives=True)`` in chunks of replicates, so that the largest
        intermediate arrays (about ``d K^2 P``, ``K^4`` and ``d p^2`` numbers per replicate) stay below ``budget``."""
        P, K = self.m.shape[1:]
        d, p = theta.shape[1], self.a.shape[1]
        size = max(1, int(budget // (K ** 4 + d * K * K * P + d * p * p)))
        parts = [self.subset(idx[i:i + size]).evaluate(theta[i:i + size], derivatives=True)
                 for i in range(0, len(idx), size)]
        return parts[0] if len(parts) == 1 else {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}

    def evaluate(self, theta: np.ndarray, derivatives: bool = False) -> dict:
        with np.errstate(all="ignore"):                    # wild trial steps: overflow -> NaN -> rejected
            return self._evaluate(theta, derivatives)

    def _evaluate(self, theta: np.ndarray, derivatives: bool) -> dict:
        """``loglik`` ``(R,)`` (NaN where ``Sigma`` or ``M`` is not positive definite); with ``derivatives``,
        also ``beta``, ``cov_beta`` (``M^-1``), ``sigma``, ``grad`` ``(R, d)``, ``hess`` ``(R, d, d)``, ``dM``
        ``(R, d, p, p)`` (``N_k = X' W V_k W X = -dM/dtheta_k``), ``fisher`` (the expected information of the
        likelihood without the REML terms, ``1/2 sum_i tr(W_i V_k W_i V_l)``, positive definite) and ``free``
        ``(R, d)``: False for a coordinate whose ``max |dSigma/dtheta_k|`` fell below 1e-6 of ``max |Sigma|`` (then
        frozen: zero gradient, ``-1`` on the Hessian diagonal, no contribution to the Satterthwaite df) and
        ``unbounded`` ``(R,)``: a frozen coordinate whose gradient is still above 0.01."""
        sigma, S, curv = self.cov_fn(theta)
        R, K = sigma.shape[0], sigma.shape[-1]
        P, q = self.count.shape[1], self.szz.shape[-1]
        w, logdet, ok_p = _spd_inv_logdet(sigma[:, None] * self.mm + self.free)
        w = w * self.mm
        a = self.a
        cov_beta, logdet_m, ok_m = _spd_inv_logdet(a.T @ _kron_sum(w, self.szz) @ a)
        u = (w @ self.syz).sum(1).reshape(R, -1) @ a
        beta = (cov_beta @ u[..., None])[..., 0]
        quad = (w * self.syy).sum((1, 2, 3)) - (u * beta).sum(-1)
        ll = -0.5 * ((self.count * logdet).sum(-1) + quad + logdet_m + self.const)
        ll = np.where(ok_p.all(-1) & ok_m, ll, np.nan)
        out = {"loglik": ll}
        if not derivatives:
            return out
        # residual cross-products per pattern at beta: S_p = sum r r', R_p = sum r z'
        f = np.einsum("mka,ra->rkm", self.A, beta)[:, None]
        fszz = f @ self.szz
        res_z = (self.syz - fszz) * self.m[..., None]
        fzy = f @ np.swapaxes(self.syz, -1, -2)
        s_p = (self.syy - fzy - np.swapaxes(fzy, -1, -2) + fszz @ np.swapaxes(f, -1, -2)) * self.mm
        e_p = w @ s_p @ w                                                 # sum e e', e = W r
        aca = np.swapaxes((a @ cov_beta @ a.T).reshape(R, K, q, K, q), 2, 3).reshape(R, K * K, q * q)
        b_p = (self.szz.reshape(R, P, q * q) @ np.swapaxes(aca, 1, 2)).reshape(R, P, K, K)   # sum X C X'
        h_p = w @ b_p @ w
        nw = self.count[..., None, None] * w
        D = 0.5 * (e_p + h_p - nw).sum(1)                                 # dl/dSigma
        grad = np.einsum("rkij,rij->rk", S, D)
        # Hessian: tr(S_kl D) + sum_p tr(S_k W S_l Y_p) + tr(C N_k C N_l) / 2 + h_k' C h_l
        wf = np.moveaxis(w.reshape(R, P, K * K), 1, 2)
        Q, Q0 = (wf @ y.reshape(R, P, K * K) for y in (0.5 * nw - h_p - e_p, 0.5 * nw))  # [(j, a), (b, i)]
        Q, Q0 = (x.reshape(R, K, K, K, K).transpose(0, 4, 1, 2, 3).reshape(R, K * K, K * K) for x in (Q, Q0))
        d = S.shape[1]
        Sf = S.reshape(R, d, K * K)
        sw = S.reshape(R, 1, d * K, K) @ w                                # S_k W_p, rows (k, i)
        wsw = np.swapaxes(sw.reshape(R, P, d, K, K), -1, -2).reshape(R, P, d * K, K) @ w   # (W_p S_k) W_p
        N = np.swapaxes((np.swapaxes(wsw.reshape(R, P, -1), 1, 2) @ self.szz.reshape(R, P, q * q)).reshape(
            R, d, K, K, q, q), 3, 4).reshape(R, d, K * q, K * q)          # sum_p W_p S_k W_p (x) Szz_p
        h = (wsw @ res_z).sum(1).reshape(R, d, K * q)                     # sum_p W_p S_k W_p R_p
        if not self.eye:
            N, h = a.T @ N @ a, h @ a
        cn = cov_beta[:, None] @ N
        cnt = np.swapaxes(cn, -1, -2).reshape(R, d, -1)                  # tr(C N_k C N_l) = <C N_k, (C N_l)'>
        hess = (curv(D) + Sf @ Q @ np.swapaxes(Sf, -1, -2) + 0.5 * cn.reshape(R, d, -1) @ np.swapaxes(cnt, 1, 2)
                + h @ cov_beta @ np.swapaxes(h, -1, -2))
        # coordinates with no influence left on Sigma (a log-Cholesky diagonal drifting to -inf: a variance
        # component at its boundary, e.g. no slope variance) are frozen: they no longer change the fit
        free = np.abs(S).max(axis=(2, 3)) > 1e-6 * np.abs(sigma).max(axis=(1, 2))[:, None]
        hess = 0.5 * (hess + np.swapaxes(hess, 1, 2))
        both = free[:, :, None] & free[:, None, :]
        hess = np.where(both, hess, -np.eye(d))
        fisher = np.where(both, Sf @ Q0 @ np.swapaxes(Sf, -1, -2), np.eye(d))   # 1/2 sum_p n_p tr(W S_k W S_l)
        # a frozen coordinate along which l_R still rises (>= 0.01 per e-fold) has an unbounded likelihood: a
        # singular covariance fits some visit exactly (too few patients for an unstructured covariance)
        unbounded = (~free & (np.abs(grad) > 1e-2)).any(-1)
        out.update(beta=beta, cov_beta=cov_beta, sigma=sigma, grad=np.where(free, grad, 0.0), hess=hess,
                   fisher=fisher, dM=np.where(free[:, :, None, None], N, 0.0), free=free, unbounded=unbounded)
        return out


def _direction(cur: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton step ``(-H)^-1 g`` where ``-H`` is positive definite, else the scoring step ``F^-1 g`` with the
    expected information ``F``; the decrement ``g' step``; and which rows took the Newton step."""
    g = np.nan_to_num(cur["grad"])
    H = -np.nan_to_num(cur["hess"])
    e, U = np.linalg.eigh(H)
    newton = e[:, 0] > 1e-10 * np.abs(e[:, -1])
    if not newton.all():
        e2, U2 = np.linalg.eigh(np.nan_to_num(cur["fisher"]))
        e = np.where(newton[:, None], e, np.maximum(e2, 1e-12 * np.abs(e2[:, -1:]) + 1e-300))
        U = np.where(newton[:, None, None], U, U2)
    step = (U @ ((np.swapaxes(U, -1, -2) @ g[..., None])[..., 0] / e)[..., None])[..., 0]
    return step, np.einsum("ra,ra->r", g, step), newton


def _summary(cur: dict, contrasts: np.ndarray | None) -> dict:
    """The outputs kept from an evaluation at the optimum, with Satterthwaite df for the rows of ``contrasts``."""
    out = {k: cur[k] for k in ("beta", "cov_beta", "sigma", "loglik", "hess")}
    if contrasts is not None:
        cc = np.einsum("rab,cb->rca", cur["cov_beta"], contrasts)                # C c
        out["contrast_var"] = np.einsum("ca,rca->rc", contrasts, cc)
        grad_v = np.einsum("rca,rkab,rcb->rck", cc, cur["dM"], cc)             # dv/dtheta_k = c'C N_k C c
        e, U = np.linalg.eigh(-cur["hess"])
        keep = e > 1e-10 * np.abs(e).max(axis=-1, keepdims=True)                # pseudo-inverse of -H
        inv_e = np.where(keep, 1.0 / np.where(keep, e, 1.0), 0.0)
        var_v = ((grad_v @ U) ** 2 * inv_e[:, None, :]).sum(-1)
        with np.errstate(all="ignore"):
            out["satterthwaite_df"] = 2.0 * out["contrast_var"] ** 2 / var_v
    return out


def fit_reml(pats: Patterns, A: np.ndarray, cov_fn: Callable, theta0: np.ndarray, *,
             contrasts: np.ndarray | None = None, max_iter: int = 200, tol: float = 1e-14) -> dict:
    """Maximise ``l_R`` for every replicate from ``theta0`` ``(R, d)``; ``cov_fn(theta)`` returns ``Sigma``
    ``(R, K, K)``, ``dSigma/dtheta`` ``(R, d, K, K)`` and the curvature function ``curv(D)`` ``(R, d, d)``
    ``= sum_ij D_ij d2Sigma_ij / dtheta_k dtheta_l`` (see :func:`~analysis.estimators.mmrm.cholesky_param`).

    Each iteration evaluates value, gradient and Hessian once and steps by Newton (scoring where ``-H`` is not
    positive definite). Far from the optimum (decrement >= 1) the step is halved until the log-likelihood does
    not decrease (value-only evaluations); near it the full step is taken and checked at the next iteration
    (halved from the previous point if it decreased). Returns, at the optimum (NaN where not ``converged``):
    ``theta``, ``beta`` ``(R, p)``, ``cov_beta`` ``(R, p, p)`` (``M^-1``), ``sigma``, ``loglik``, ``hess``, and
    for the rows ``c`` of ``contrasts`` ``(C, p)``: ``contrast_var`` ``(R, C)`` (``c' M^-1 c``) and
    ``satterthwaite_df`` ``(R, C)``; plus ``iterations`` (gradient evaluations) and ``converged``.
    """
    prob = _Problem(pats, A, cov_fn)
    theta = np.array(theta0, dtype=float)
    R, d = theta.shape
    c = None if contrasts is None else np.atleast_2d(np.asarray(contrasts, dtype=float))
    active = np.isfinite(theta).all(axis=1) & np.isfinite(prob.const)
    converged = np.zeros(R, dtype=bool)
    iterations = np.zeros(R, dtype=int)
    start, step = theta.copy(), np.zeros_like(theta)        # last accepted point and the step taken from it
    start_ll, alpha = np.full(R, -np.inf), np.ones(R)
    out: dict = {"theta": np.full((R, d), np.nan)}
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        cur = prob.evaluate_chunked(idx, theta[idx])
        iterations[idx] += 1
        ll = cur["loglik"]
        slack = 1e-12 * (1.0 + np.abs(ll))
        worse = ~np.isfinite(ll) | (ll < start_ll[idx] - slack)
        active[idx[cur["unbounded"]]] = False               # degenerate: not converged
        worse |= cur["unbounded"]
        back = idx[worse]                                   # deferred backtracking from the last point
        alpha[back] *= 0.5
        theta[back] = start[back] + alpha[back, None] * step[back]
        active[back[~np.isfinite(start_ll[back]) | (alpha[back] < 1e-10)]] = False
        ok = np.flatnonzero(~worse)
        new_step, dec, newton = _direction({k: v[ok] for k, v in cur.items()})
        done = np.isfinite(dec) & (dec < tol) & newton
        fin = idx[ok[done]]
        if len(fin):
            kept = _summary({k: v[ok[done]] for k, v in cur.items()}, c)
            for k, v in kept.items():
                if k not in out:
                    out[k] = np.full((R, *v.shape[1:]), np.nan)
                out[k][fin] = v
            out["theta"][fin] = theta[fin]
            converged[fin] = True
            active[fin] = False
        keep = ~done & np.isfinite(dec)
        active[idx[ok[~done & ~keep]]] = False
        go, new_step, dec, newton = idx[ok[keep]], new_step[keep], dec[keep], newton[keep]
        start[go], start_ll[go], step[go], alpha[go] = theta[go], ll[ok[keep]], new_step, 1.0
        slack_go = slack[ok[keep]]
        # far from the optimum, or a scoring step: line search on the value now (halving; a scoring step that
        # succeeds at once is also doubled while the value keeps rising: drifts toward a boundary are slow)
        trial = np.flatnonzero((dec >= 1.0) | ~newton)
        best = start_ll[go].copy()
        grow = np.zeros(len(go), dtype=bool)
        for it in range(60):
            if not len(trial):
                break
            r = go[trial]
            got = prob.subset(r).evaluate(start[r] + alpha[r, None] * step[r])["loglik"]
            if it == 0:
                grow[trial] = (got >= best[trial] - slack_go[trial]) & ~newton[trial]
            up = got > best[trial]
            shrink = ~grow[trial] & ~(got >= best[trial] - slack_go[trial])
            expand = grow[trial] & up & (alpha[r] < 256.0)
            best[trial[up]] = got[up]
            alpha[r[shrink]] *= 0.5
            alpha[r[expand]] *= 2.0
            stop_grow = grow[trial] & ~expand                   # the last doubling did not help: undo it
            alpha[r[stop_grow & ~up & (alpha[r] > 1.0)]] *= 0.5
            trial = trial[shrink | expand]
        active[go[trial[~grow[trial]]]] = False             # no ascent found along the direction: give up
        theta[go] = start[go] + alpha[go, None] * step[go]
    if len(out) == 1:                                       # nothing converged: shapes from one evaluation
        kept = _summary(prob.subset(np.arange(1)).evaluate(np.nan_to_num(theta[:1]), derivatives=True), c)
        out.update({k: np.full((R, *v.shape[1:]), np.nan) for k, v in kept.items()})
    out.update(iterations=iterations, converged=converged)
    return out
