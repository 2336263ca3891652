"""Longitudinal outcome model: :class:`TrajectoryModel` (linear mixed model) and the data's visit process.

Model (one patient ``i``, visit time ``t`` in the visit unit, baseline covariates ``x_i``)::

    y_i(t) = (b0 + x_i'bx + u0_i) + (bt + x_i'btx + u1_i) t + c t^2 + e_it,
    (u0_i, u1_i) ~ N(0, G) (unstructured 2 x 2),   e_it ~ N(0, sigma^2)

fitted by REML: the criterion of statsmodels ``MixedLM`` with the fixed effects and ``sigma^2`` profiled out,
evaluated with per-patient 2 x 2 sums (:class:`_ProfiledREML`: about 1 s for 3,000 patients x 13 visits, where
``MixedLM.fit`` takes 5-9 s on two cores) and started from moment estimates (OLS fixed effects, the spread of
per-patient OLS lines); the tests check it against ``MixedLM`` on the same design. ``x`` is the
:class:`~cohorts.generators.regression.BaselineDesign` (numeric standardized, median-imputed; categoricals
one-hot against their most frequent level), so ``bt`` is the slope at mean numeric covariates and reference levels.
Time is divided by its largest absolute value inside the fit for conditioning and converted back. ``t^2`` is
dropped when there are fewer than 3 distinct visit times. If a fit fails or does not converge, simpler models
are tried in this order, each step recorded in ``fit_notes_``: (1) as above; (2) the same model with
statsmodels ``MixedLM.fit``; (3) ``G`` diagonal; (4) also no covariate-by-time terms; (5) random
intercept only; (6) the moment estimates themselves.

A synthetic patient's latent: ``start = b0 + x'bx + u0``, ``decline(t) = (bt + x'btx + u1) t + c t^2``;
``sigma`` the residual SD; bounds from the schema, else the observed range; ``integer`` when every observed value
is a whole number. Random effects and visit noise keep the fitted model's moments but not necessarily its
normality (real outcomes are often skewed, with a spike at a bound and less spread near it):

* ``random_effects="empirical"`` (default): a smoothed bootstrap of the patients' empirical-Bayes (BLUP) random
  effects ``u_i = (s2 I + G S_i)^-1 G Z_i'r_i`` (``Z_i = [1, t]``, ``S_i = Z_i'Z_i``, ``r_i`` the fixed-effect
  residuals; :func:`empirical_bayes`). BLUPs are shrunk, so they are centered and recoloured to covariance ``G``
  (``w_i = L_C^-1 (u_i - mean)``, ``C`` their covariance with divisor ``n``, lower Cholesky factors, intercept
  first: the rescaled residual bootstrap of Carpenter, Goldstein & Rasbash, JRSS C 2003); a draw is
  ``L_G (sqrt(1 - h^2) w_j + h z)``, ``z ~ N(0, I)``, bandwidth ``h`` (default ``n^(-1/6)``, Silverman's rule in
  2 dimensions; the covariance stays ``G``). The donor ``j`` is drawn uniformly among the
  ``random_effects_neighbours`` fraction of patients (default 0.1, at least 20) nearest in fixed-part start
  ``b0 + x'bx``, so the shape and spread of the random effects may depend on the level (a floor compresses the
  spread of low patients); 1 draws from all. Fewer than 20 patients, or BLUPs without spread where ``G`` has
  it: Gaussian, noted. ``"gaussian"``: ``(u0, u1) ~ N(0, G)``.
* ``residuals="empirical"`` (default): visit noise ``sigma s(start) e*``, ``e*`` resampled from the standardized
  conditional residuals ``e_it / sqrt(s2 (1 - h_it))`` (``e_i = r_i - Z_i u_i``, ``h_it = z_it'A_i z_it``;
  :func:`empirical_bayes`), centered and scaled to SD 1 (they keep the noise's shape, diluted: each
  is the noise minus a weighted average of the patient's noise). ``s^2`` is the noise variance relative to
  ``s2`` by the patient's start (recoloured BLUP start for the data): in ``residual_bins`` quantile bins
  (default ``n_obs // 150``, 1 to 10; 1 = constant) the moment estimate ``1 + sum(e_std^2 - 1) / sum(c)``
  (``c`` from :func:`empirical_bayes`), its square root linear between bin medians and constant beyond; the
  residuals are divided by their expected SD under it before pooling. ``"gaussian"``: ``N(0, sigma^2)``.
* ``value_grid="auto"``: when the observed values repeat (at most half as many distinct values as observations,
  not all whole numbers: e.g. square roots of counts), realized values are moved to the nearest observed value,
  as ``integer`` rounds; ``"none"``: never.

The counterfactual is unchanged: ``s(start)`` is fixed per patient, so a treated patient is
``start + (1 - r) decline(t)`` plus the same noise draws as under control (then rounded, clipped, gridded),
and the expected difference in slope is ``r`` times the mean decline wherever no bound or grid intervenes.

Observation process (for ``sample`` only; :class:`~cohorts.generators.dropout.VisitProcess`): the data's visit
schedule, intermittent missed visits, and a discrete-time dropout hazard after each attended visit: a logistic
regression on the observed value at the visit and the patient's empirical-Bayes slope so far (prior mean the
average fixed-effect slope, shrinkage ``sigma^2 / G_11`` from this fit), so that in synthetic data the latent
trajectory decides who leaves early. :meth:`TrajectoryModel.observe` realizes a latent at the schedule and
returns the attended visits.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from cohorts.errors import InvalidDataError
from cohorts.generators.dropout import VisitProcess
from cohorts.generators.latent import TrajectoryLatent
from cohorts.generators.regression import BaselineDesign, design_matvec, is_integer_valued

__all__ = ["TrajectoryModel", "TrajectoryDecline", "make_trajectory_latent", "empirical_bayes"]


class TrajectoryDecline:
    """``decline(t) = slope_i t + curvature t^2``, shape ``(n, V)``: a picklable callable."""

    def __init__(self, slope: np.ndarray, curvature: float):
        self.slope, self.curvature = np.asarray(slope, dtype=float), float(curvature)

    def __call__(self, visit_times) -> np.ndarray:
        """Times ``(V,)`` shared by every patient, or ``(n, V)`` per patient (visit windows)."""
        t = np.asarray(visit_times, dtype=float)
        if t.ndim != 2:
            t = t.reshape(1, -1)
        return self.slope[:, None] * t + self.curvature * (t * t)


def make_trajectory_latent(start, slope, curvature, sigma, lower, upper, integer, time_unit, *,
                           noise_pool: np.ndarray | None = None, noise_scale: np.ndarray | None = None,
                           grid: np.ndarray | None = None) -> TrajectoryLatent:
    """A :class:`TrajectoryLatent` for per-patient ``start`` and ``slope`` with a common ``curvature``
    (``noise_pool``: standardized residuals to resample as visit noise; ``None``: Gaussian noise)."""
    start, slope = np.asarray(start, dtype=float), np.asarray(slope, dtype=float)
    take = functools.partial(_take, start, slope, curvature, sigma, lower, upper, integer, time_unit,
                             noise_pool=noise_pool, noise_scale=noise_scale, grid=grid)
    return TrajectoryLatent(start=start, decline=TrajectoryDecline(slope, curvature), sigma=float(sigma),
                            lower=lower, upper=upper, integer=integer, time_unit=time_unit,
                            params={"start": start, "slope": slope, "curvature": np.full(len(start), curvature)},
                            take_fn=take, noise_pool=noise_pool, noise_scale=noise_scale, grid=grid)


def _take(start, slope, curvature, sigma, lower, upper, integer, time_unit, idx, *, noise_pool=None,
          noise_scale=None, grid=None):
    return make_trajectory_latent(start[idx], slope[idx], curvature, sigma, lower, upper, integer, time_unit,
                                  noise_pool=noise_pool, noise_scale=None if noise_scale is None else noise_scale[idx],
                                  grid=grid)


def _chol2(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a 2 x 2 positive semi-definite matrix (a zero column where it is singular)."""
    l00 = np.sqrt(max(A[0, 0], 0.0))
    l10 = A[1, 0] / l00 if l00 > 0 else 0.0
    return np.array([[l00, 0.0], [l10, np.sqrt(max(A[1, 1] - l10 * l10, 0.0))]])


def empirical_bayes(r, t, g, G, s2):
    """``(u, e_std, c)`` for residuals ``r`` from the fixed effects, visit times ``t`` and patient codes ``g``.

    ``u_i = A_i Z_i'r_i``, ``A_i = (s2 I + G S_i)^-1 G`` (``Z_i = [1, t]``, ``S_i = Z_i'Z_i``; ``G`` may be
    singular): the BLUPs. ``e_std``: the conditional residuals ``e_i = r_i - Z_i u_i = s2 V_i^-1 r_i`` divided by
    their model SD ``sqrt(s2 (1 - h_it))``, ``h_it = z_it'A_i z_it`` (NaN where that variance vanishes).
    ``c = s2 [V_i^-2]_tt / [V_i^-1]_tt = (1 - 2 h_it + z_it'A_i S_i A_i z_it) / (1 - h_it)``: if the patient's
    noise variance is ``rho s2`` instead of ``s2``, ``E[e_std^2] = 1 + (rho - 1) c``.
    """
    n = int(g.max()) + 1
    Z = np.column_stack([np.ones_like(t), t])
    S = np.zeros((n, 2, 2))
    np.add.at(S, g, Z[:, :, None] * Z[:, None, :])
    zr = np.zeros((n, 2))
    np.add.at(zr, g, Z * r[:, None])
    M = s2 * np.eye(2) + G[None] @ S
    MinvG = np.linalg.solve(M, np.broadcast_to(G, M.shape))
    u = np.einsum("nij,nj->ni", MinvG, zr)
    e = r - np.einsum("ij,ij->i", Z, u[g])
    h = np.einsum("ij,ijk,ik->i", Z, MinvG[g], Z)
    ASA = (MinvG @ S @ MinvG)[g]
    ok = 1.0 - h > 1e-10
    e_std, c = np.full_like(e, np.nan), np.full_like(e, np.nan)
    e_std[ok] = e[ok] / np.sqrt(s2 * (1.0 - h[ok]))
    c[ok] = (1.0 - 2.0 * h[ok] + np.einsum("ij,ijk,ik->i", Z[ok], ASA[ok], Z[ok])) / (1.0 - h[ok])
    return u, e_std, c


class _ProfiledREML:
    """REML for ``y = X b + Z u + e``, ``u ~ N(0, s2 L L')``, ``e ~ N(0, s2 I)``, rows grouped contiguously.

    The criterion is statsmodels MixedLM's REML likelihood with ``b`` and ``s2`` profiled out (lme4's
    formulation): ``-2 l = sum_i log|I + L'Z_i'Z_i L| + log|X'W^-1 X| + (N - p) log RSS``, ``W = I + Z L L'Z'``,
    evaluated through per-patient ``q x q`` sums (Woodbury), so one evaluation costs ``O(n p^2)``; it is
    minimised over the Cholesky factor ``L`` (diagonal >= 0) by L-BFGS-B.
    """

    def __init__(self, y, X, Z, starts):
        self.N, self.p = X.shape
        self.q = Z.shape[1]
        self.S = np.add.reduceat(Z[:, :, None] * Z[:, None, :], starts, axis=0)
        self.ZX = np.add.reduceat(Z[:, :, None] * X[:, None, :], starts, axis=0)
        self.Zy = np.add.reduceat(Z * y[:, None], starts, axis=0)
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)

    def _L(self, theta) -> np.ndarray:
        L = np.zeros((self.q, self.q))
        L[np.tril_indices(self.q)] = theta
        return L

    def evaluate(self, theta):
        """(REML deviance up to a constant, fixed effects, residual variance) at ``theta`` (L's lower triangle)."""
        L = self._L(theta)
        A = np.eye(self.q) + np.einsum("ji,njk,kl->nil", L, self.S, L)
        Ainv = np.linalg.inv(A)
        P = np.einsum("ji,njp->nip", L, self.ZX)
        Py = np.einsum("ji,nj->ni", L, self.Zy)
        AP = np.einsum("nij,njp->nip", Ainv, P)
        XWX = self.XtX - np.einsum("nip,niq->pq", P, AP)
        XWy = self.Xty - np.einsum("nip,ni->p", AP, Py)
        yWy = self.yty - np.einsum("ni,nij,nj->", Py, Ainv, Py)
        beta = np.linalg.solve(XWX, XWy)
        rss = float(yWy - beta @ XWy)
        if not rss > 0:
            raise FloatingPointError("non-positive residual sum of squares")
        dev = np.linalg.slogdet(A)[1].sum() + np.linalg.slogdet(XWX)[1] + (self.N - self.p) * np.log(rss)
        return float(dev), beta, rss / (self.N - self.p)

    def fit(self, psi0: np.ndarray, *, diagonal: bool = False):
        """``(converged, fixed effects, G, residual variance)`` from a start ``psi0 = G / s2``."""
        rows, cols = np.tril_indices(self.q)
        free = (rows == cols) | (not diagonal)
        theta = np.linalg.cholesky(psi0 + 1e-6 * np.eye(self.q))[rows, cols] * free

        def deviance(x):
            th = theta.copy()
            th[free] = x
            return self.evaluate(th)[0]

        bounds = [(0.0, None) if r == c else (None, None) for r, c in zip(rows[free], cols[free])]
        # ftol is relative: 1e-10 of a deviance near 3e5 is 3e-5, far below what moves the estimates; a tighter
        # value ends in ABNORMAL line searches on numerical noise and a needless slow fallback.
        res = minimize(deviance, theta[free], method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-10, "gtol": 1e-7, "eps": 1e-7, "maxiter": 500})
        ok = bool(res.success)
        if not ok:  # noisy line search near the optimum: polish derivative-free from there
            res = minimize(deviance, res.x, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9})
            ok = bool(res.success)
        theta[free] = res.x
        _, beta, s2 = self.evaluate(theta)
        L = self._L(theta)
        return ok, beta, s2 * (L @ L.T), s2


def _statsmodels_reml(y, exog, exog_re, g, fe0, psi0):
    """statsmodels MixedLM REML (its default optimizers) from the moment start: the fallback optimizer."""
    from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams

    start = MixedLMParams.from_components(fe_params=fe0, cov_re=psi0 + 1e-6 * np.eye(len(psi0)))
    res = MixedLM(y, exog, g, exog_re=exog_re).fit(reml=True, start_params=start)
    return bool(res.converged), np.asarray(res.fe_params, float), np.asarray(res.cov_re, float), float(res.scale)


def _psd(G: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((G + G.T) / 2)
    return (V * np.maximum(w, 0.0)) @ V.T


class TrajectoryModel:
    """Random intercept and slope model with quadratic mean decline, plus the visit and dropout process."""

    def __init__(self, *, min_visit_fraction: float = 0.05, covariate_by_time: bool = True,
                 informative_dropout: bool = True, random_effects: str = "empirical", residuals: str = "empirical",
                 random_effects_bandwidth: float | None = None, random_effects_neighbours: float = 0.1,
                 residual_bins: int | None = None, value_grid: str = "auto"):
        for name, value, allowed in (("random_effects", random_effects, ("empirical", "gaussian")),
                                     ("residuals", residuals, ("empirical", "gaussian")),
                                     ("value_grid", value_grid, ("auto", "none"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if random_effects_bandwidth is not None and not 0.0 <= random_effects_bandwidth <= 1.0:
            raise ValueError(f"random_effects_bandwidth must be in [0, 1], got {random_effects_bandwidth!r}")
        if not 0.0 < random_effects_neighbours <= 1.0:
            raise ValueError(f"random_effects_neighbours must be in (0, 1], got {random_effects_neighbours!r}")
        if residual_bins is not None and int(residual_bins) < 1:
            raise ValueError(f"residual_bins must be >= 1, got {residual_bins!r}")
        self.min_visit_fraction = min_visit_fraction
        self.covariate_by_time = covariate_by_time
        self.informative_dropout = informative_dropout
        self.random_effects = random_effects
        self.residuals = residuals
        self.random_effects_bandwidth = random_effects_bandwidth
        self.random_effects_neighbours = random_effects_neighbours
        self.residual_bins = residual_bins
        self.value_grid = value_grid

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame, schema) -> "TrajectoryModel":
        o = schema.outcome
        df = data[[schema.id, o.visit, o.value, *schema.baseline]].copy()
        df["_t"] = pd.to_numeric(df[o.visit], errors="coerce")
        df["_y"] = pd.to_numeric(df[o.value], errors="coerce")
        df = df[np.isfinite(df["_t"]) & np.isfinite(df["_y"])].sort_values([schema.id, "_t"], kind="stable")
        if df.empty:
            raise InvalidDataError(f"no rows with both {o.visit!r} and {o.value!r} present")
        codes, _ = pd.factorize(df[schema.id])
        first = ~pd.Series(codes).duplicated().to_numpy()
        baseline = df.loc[first, list(schema.baseline)].reset_index(drop=True)
        t, y = df["_t"].to_numpy(float), df["_y"].to_numpy(float)
        self.design_ = BaselineDesign().fit(baseline, schema.numeric, schema.categorical)
        Xb = self.design_.transform(baseline)
        self.fit_notes_: list[str] = []
        self._fit_mixed(y, t, codes, Xb)
        self.lower_ = o.lower if o.lower is not None else float(y.min())
        self.upper_ = o.upper if o.upper is not None else float(y.max())
        self.integer_ = is_integer_valued(y)
        values = np.unique(y)
        repeats = self.value_grid == "auto" and not self.integer_ and 1 < len(values) <= len(y) / 2
        self.grid_ = values if repeats else None
        self.time_unit_ = o.unit
        self._fit_pools(y, t, codes, Xb)
        G11 = float(self.G_[1, 1])
        kappa = self.sigma_ ** 2 / G11 if G11 > 1e-12 * self.sigma_ ** 2 else 1e12
        mean_slope = self.slope_ + float(Xb.mean(axis=0) @ self.coef_slope_) if Xb.shape[1] else self.slope_
        self.visits_ = VisitProcess(min_visit_fraction=self.min_visit_fraction,
                                    informative=self.informative_dropout).fit(
            t, y, codes, slope_mean=mean_slope, slope_kappa=kappa)
        self.visit_times_ = self.visits_.visit_times_
        self.fit_notes_ += self.visits_.fit_notes_
        self.n_patients_, self.n_obs_ = len(baseline), len(y)
        return self

    def _fit_mixed(self, y, t, g, Xb) -> None:
        s = float(np.max(np.abs(t))) or 1.0
        ts = t / s
        quad = len(np.unique(t)) >= 3
        if not quad:
            self.fit_notes_.append("fewer than 3 distinct visit times: no t^2 term")
        p = Xb.shape[1]
        inter = self.covariate_by_time and p > 0
        attempts = [("profiled REML", "unstructured", inter, 2), ("statsmodels MixedLM REML", "unstructured", inter, 2),
                    ("profiled REML", "diagonal", inter, 2), ("profiled REML", "diagonal", False, 2),
                    ("profiled REML", "diagonal", False, 1)]
        starts = np.flatnonzero(np.r_[True, np.diff(g) != 0])
        for engine, cov, inter, n_re in dict.fromkeys(attempts):
            exog = self._exog(Xb[g], ts, quad, inter)
            exog_re = np.column_stack([np.ones_like(ts), ts])[:, :n_re]
            fe0, G0, s20 = self._moments(y, exog, exog_re, g)
            label = f"{engine}, G {cov}, {'with' if inter else 'no'} covariate x time, {n_re} random effect(s)"
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if engine == "profiled REML":
                        reml = _ProfiledREML(y, exog, exog_re, starts)
                        ok, fe, G, s2 = reml.fit(G0 / s20, diagonal=cov == "diagonal")
                    else:
                        ok, fe, G, s2 = _statsmodels_reml(y, exog, exog_re, g, fe0, G0 / s20)
                ok = ok and np.all(np.isfinite(fe)) and np.all(np.isfinite(G)) and s2 > 0
                msgs = sorted({str(w.message).splitlines()[0] for w in caught})
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                ok, msgs = False, [f"{type(exc).__name__}: {exc}"]
            if ok:
                self.fit_notes_ += [f"{label}: {m}" for m in msgs]
                self.method_ = label
                break
            self.fit_notes_.append(f"{label} failed ({'; '.join(msgs) or 'not converged'}); trying a simpler model")
        else:
            fe, G, s2 = fe0, G0, s20
            self.method_ = "moment estimates (OLS fixed effects, per-patient OLS spread)"
            self.fit_notes_.append(f"every mixed-model fit failed: using {self.method_}")
        G = _psd(G)
        if G.shape == (1, 1):
            G = np.array([[G[0, 0], 0.0], [0.0, 0.0]])
        scale_vec = np.r_[1.0, 1.0 / s]
        self.G_ = G * np.outer(scale_vec, scale_vec)
        self.sigma_ = float(np.sqrt(s2))
        self.interactions_ = inter
        self._unpack(fe, p, s, quad)

    def _fit_pools(self, y, t, g, Xb) -> None:
        """The empirical random-effect pool (whitened BLUPs), the residual pool and the noise scale by level."""
        X = Xb[g]
        mean = (self.intercept_ + X @ self.coef_start_ + (self.slope_ + X @ self.coef_slope_) * t
                + self.curvature_ * t * t)
        u, e_std, c = empirical_bayes(y - mean, t, g, self.G_, self.sigma_ ** 2)
        n = len(u)
        self.re_pool_, self.noise_pool_, self.noise_knots_ = None, None, None
        self.re_chol_ = _chol2(self.G_)
        uc = u - u.mean(axis=0)
        Lc = _chol2(uc.T @ uc / n)
        spread = np.diag(Lc) > 1e-8 * (np.sqrt(np.diag(self.G_)) + 1e-300)
        need = np.diag(self.re_chol_) > 1e-8 * np.sqrt(self.G_[0, 0] + 1e-300)
        if n >= 20 and spread[0] and not np.any(need & ~spread):
            w = np.zeros_like(uc)
            w[:, 0] = uc[:, 0] / Lc[0, 0]
            if spread[1]:
                w[:, 1] = (uc[:, 1] - Lc[1, 0] * w[:, 0]) / Lc[1, 1]
        else:
            w = None
        if self.random_effects == "empirical" and w is None:
            self.fit_notes_.append(f"empirical random effects need >= 20 patients with BLUPs spread like G "
                                   f"({n} patients): Gaussian random effects")
        elif self.random_effects == "empirical":
            fixed = self.intercept_ + Xb @ self.coef_start_
            order = np.argsort(fixed, kind="stable")
            self.re_pool_, self.re_keys_ = w[order], fixed[order]
            self.re_neighbours_ = int(min(n, max(20, round(self.random_effects_neighbours * n))))
        h = self.random_effects_bandwidth
        self.re_bandwidth_ = float(n ** (-1 / 6)) if h is None else float(h)
        if self.residuals == "gaussian":
            return
        ok = np.isfinite(e_std)
        if ok.sum() < 20 or np.std(e_std[ok]) == 0:
            self.fit_notes_.append(f"empirical residuals need >= 20 usable residuals ({int(ok.sum())}): "
                                   "Gaussian noise")
            return
        e, c = e_std[ok], c[ok]
        # noise variance ratio rho by the patient's start (unshrunk: recoloured BLUP intercept), per quantile bin
        # 1 + sum(e_std^2 - 1) / sum(c) (moment estimator, see empirical_bayes), SD linear between bin medians
        u0 = (w @ self.re_chol_.T)[:, 0] if w is not None else uc[:, 0]
        key = (self.intercept_ + Xb @ self.coef_start_ + u0)[g][ok]
        bins = int(np.clip(len(e) // 150, 1, 10)) if self.residual_bins is None else int(self.residual_bins)
        if bins > 1:
            edges = np.quantile(key, np.linspace(0, 1, bins + 1))
            b = np.clip(np.searchsorted(edges, key, side="right") - 1, 0, bins - 1)
            rho = 1.0 + np.bincount(b, e * e - 1.0, bins) / np.maximum(np.bincount(b, c, bins), 1e-12)
            mid = np.array([np.median(key[b == k]) if np.any(b == k) else np.nan for k in range(bins)])
            keep = np.isfinite(mid)
            self.noise_knots_ = (mid[keep], np.sqrt(np.clip(rho[keep], 0.01, None)))
            ratio = self.noise_scale(key) ** 2
            e = e / np.sqrt(1.0 + (ratio - 1.0) * c)
        self.noise_pool_ = (e - e.mean()) / np.std(e)

    def noise_scale(self, start: np.ndarray) -> np.ndarray | None:
        """Per-patient multiplier of ``sigma`` for a patient's ``start`` (``None`` when the scale is constant)."""
        if getattr(self, "noise_knots_", None) is None:
            return None
        knots, scale = self.noise_knots_
        return np.interp(np.asarray(start, dtype=float), knots, scale)

    @staticmethod
    def _exog(X, ts, quad, inter):
        cols = [np.ones_like(ts), *X.T, ts] + ([*(X * ts[:, None]).T] if inter else []) + ([ts * ts] if quad else [])
        return np.column_stack(cols)

    def _unpack(self, fe, p, s, quad) -> None:
        xn = self.design_.names_
        self.intercept_ = float(fe[0])
        self.coef_start_ = fe[1:1 + p].copy()
        self.slope_ = float(fe[1 + p]) / s
        j = 2 + p
        self.coef_slope_ = fe[j:j + p] / s if self.interactions_ else np.zeros(p)
        j += p if self.interactions_ else 0
        self.curvature_ = float(fe[j]) / s ** 2 if quad else 0.0
        names = ["intercept", *xn, "time"] + ([f"time:{n}" for n in xn] if self.interactions_ else [])
        values = [self.intercept_, *self.coef_start_, self.slope_]
        values += list(self.coef_slope_) if self.interactions_ else []
        if quad:
            names.append("time^2")
            values.append(self.curvature_)
        self.fe_params_ = pd.Series(values, index=names, dtype=float)

    @staticmethod
    def _moments(y, exog, exog_re, g):
        """OLS fixed effects, per-patient OLS random-effect spread (minus its sampling noise), residual variance."""
        fe, *_ = np.linalg.lstsq(exog, y, rcond=None)
        r = y - exog @ fe
        q, n = exog_re.shape[1], g.max() + 1
        S = np.zeros((n, q, q))
        np.add.at(S, g, exog_re[:, :, None] * exog_re[:, None, :])
        zr = np.zeros((n, q))
        np.add.at(zr, g, exog_re * r[:, None])
        full = np.linalg.matrix_rank(S) == q
        b = np.zeros((n, q))
        b[full] = np.linalg.solve(S[full], zr[full][..., None])[..., 0]
        rows = full[g]
        resid = (r - np.einsum("ij,ij->i", exog_re, b[g]))[rows]
        dof = int(rows.sum()) - q * int(full.sum())
        s2 = float(resid @ resid / dof) if dof > 0 else float(np.var(r)) / 2
        s2 = max(s2, 1e-8 * float(np.var(y)) + 1e-12)
        if full.sum() > q:
            G = np.atleast_2d(np.cov(b[full].T)) - s2 * np.linalg.inv(S[full]).mean(axis=0)
        else:
            G = np.atleast_2d(np.var(r)) * np.eye(q)
        G = _psd(G) + 1e-6 * s2 * np.eye(q)
        return fe, G, s2

    # ------------------------------------------------------------------ synthetic patients
    def latent(self, baseline: pd.DataFrame, *, rng: np.random.Generator) -> TrajectoryLatent:
        """Synthetic patients' latent trajectories for ``baseline`` (random effects as :attr:`random_effects`)."""
        X = self.design_.transform(baseline)
        pool = getattr(self, "re_pool_", None)
        if pool is None:
            w, V = np.linalg.eigh(self.G_)
            u = rng.standard_normal((len(X), 2)) @ (V * np.sqrt(np.maximum(w, 0.0))).T
        else:
            h, n, k = self.re_bandwidth_, len(pool), self.re_neighbours_
            if k < n:  # a donor among the k patients nearest in fixed-part start (ties in random order)
                f = self.intercept_ + design_matvec(X, self.coef_start_)
                lo = np.searchsorted(self.re_keys_, f, side="left")
                hi = np.searchsorted(self.re_keys_, f, side="right")
                pos = lo + np.floor(rng.random(len(X)) * (hi - lo + 1)).astype(int)
                first = np.clip(pos - k // 2, 0, n - k)
                j = first + rng.integers(0, k, size=len(X))
            else:
                j = rng.integers(0, n, size=len(X))
            w = pool[j]
            if h > 0:
                w = np.sqrt(1.0 - h * h) * w + h * rng.standard_normal(w.shape)
            u = w @ self.re_chol_.T
        start = self.intercept_ + design_matvec(X, self.coef_start_) + u[:, 0]
        slope = self.slope_ + design_matvec(X, self.coef_slope_) + u[:, 1]
        return make_trajectory_latent(start, slope, self.curvature_, self.sigma_, self.lower_, self.upper_,
                                      self.integer_, self.time_unit_, noise_pool=getattr(self, "noise_pool_", None),
                                      noise_scale=self.noise_scale(start), grid=getattr(self, "grid_", None))

    def observe(self, latent: TrajectoryLatent, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(attended, y)``: a latent's realized values at the schedule ``(n, V)`` and the visits attended
        (missed visits and trajectory-linked dropout from :attr:`visits_`)."""
        y = latent.values(self.visit_times_, rng=rng)
        return self.visits_.attended(y, rng=rng), y
