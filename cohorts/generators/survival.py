"""Proportional-hazards outcome model: :class:`WeibullPH` and :class:`SurvivalModel` (Weibull or piecewise).

Weibull model. ``h(t | x) = h0(t) exp(x'b)`` with baseline cumulative hazard ``H0(t) = (t / scale)^shape``. With
right censoring (``d = 1`` event, ``0`` censored) the log-likelihood is
``sum d (log shape - log t + z + x'b) - sum exp(z + x'b)``, ``z = shape (log t - log scale)``, maximised over
``(log shape, log scale, b)`` by a trust-region Newton method with the analytic gradient and Hessian (times
rescaled by their median for conditioning; ties need no special handling in a parametric likelihood; times
of 0 are set to half the smallest positive time). Standard errors come from the inverse observed information.

:class:`SurvivalModel` wires a PH model to a baseline frame
(:class:`~cohorts.generators.regression.BaselineDesign`): it fits the Weibull and the piecewise-exponential PH model
(:class:`~cohorts.generators.survival_flexible.PiecewiseExponentialPH`, 1-8 pieces by AIC) with the same
covariates and keeps the one with the lower AIC (``2 k - 2 l`` on the same times; ``k = 2 + p`` and ``J + p``);
the choice and both AICs are in ``baseline_hazard_``, ``aic_`` and ``fit_notes_``. Both give an exact,
vectorised, picklable ``H0^{-1}`` for :class:`~cohorts.generators.latent.SurvivalLatent`.

Observation process used by ``sample``: censoring at the largest observed time ``t_max`` plus a covariate-free
model of the censoring times before it (indicator ``d = 0 and t < t_max``; Weibull or piecewise exponential by AIC,
so staggered administrative censoring is followed closely); a synthetic time is ``min(T, C, t_max)`` (rounded when
the data's times are whole numbers). The trial layer uses only the latent ``T`` (its design sets follow-up and
dropout).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from cohorts.errors import InvalidDataError
from cohorts.generators.latent import SurvivalLatent
from cohorts.generators.regression import BaselineDesign, design_matvec, is_integer_valued
from cohorts.generators.survival_flexible import PiecewiseExponentialPH

__all__ = ["WeibullPH", "WeibullInverseCumhaz", "SurvivalModel", "BASELINE_HAZARDS"]


class WeibullInverseCumhaz:
    """``H0^{-1}(h) = scale * h^(1 / shape)``: a picklable callable for :class:`SurvivalLatent`."""

    def __init__(self, scale: float, shape: float):
        self.scale, self.shape = float(scale), float(shape)

    def __call__(self, h) -> np.ndarray:
        return self.scale * np.power(np.asarray(h, dtype=float), 1.0 / self.shape)

    def __repr__(self) -> str:
        return f"WeibullInverseCumhaz(scale={self.scale:.6g}, shape={self.shape:.6g})"


class WeibullPH:
    """Weibull PH regression by maximum likelihood on a numeric design matrix (no intercept column)."""

    def fit(self, time, event, X=None) -> "WeibullPH":
        t = np.asarray(time, dtype=float)
        d = np.asarray(event, dtype=float)
        X = np.zeros((len(t), 0)) if X is None else np.asarray(X, dtype=float).reshape(len(t), -1)
        if len(t) == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
            raise InvalidDataError("survival times must be finite and non-negative")
        if not np.all(np.isin(d, (0.0, 1.0))):
            raise InvalidDataError("the event indicator must be 0 (censored) or 1 (event)")
        if d.sum() == 0:
            raise InvalidDataError("no events: a Weibull model cannot be fitted to fully censored times")
        positive = t[t > 0]
        t = np.where(t > 0, t, positive.min() / 2 if positive.size else 1.0)
        unit = float(np.median(t))
        logt = np.log(t / unit)
        # exponential-model start: shape 1, scale = total time / events, b = 0
        theta0 = np.r_[0.0, np.log(np.sum(t / unit) / d.sum()), np.zeros(X.shape[1])]
        nll = lambda th: -self._loglik(th, logt, d, X)[0]  # noqa: E731
        grad = lambda th: -self._loglik(th, logt, d, X)[1]  # noqa: E731
        hess = lambda th: -self._loglik(th, logt, d, X)[2]  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(nll, theta0, jac=grad, hess=hess, method="trust-exact",
                           options={"gtol": 1e-8, "maxiter": 500})
            if not res.success or not np.all(np.isfinite(res.x)):
                res = minimize(nll, theta0, jac=grad, method="L-BFGS-B",
                               bounds=[(-5, 5), (None, None)] + [(-30, 30)] * X.shape[1])
        theta = res.x
        self.converged_ = bool(res.success)
        self.shape_ = float(np.exp(theta[0]))
        self.scale_ = float(np.exp(theta[1]) * unit)
        self.coef_ = theta[2:].copy()
        ll, _, H = self._loglik(theta, logt, d, X)
        self.loglik_ = float(ll - np.sum(d * logt) - np.sum(d) * np.log(unit))  # full, original time scale
        try:
            cov = np.linalg.inv(-H)
        except np.linalg.LinAlgError:
            cov = np.full_like(H, np.nan)
        # covariance of (log shape, log scale, b): log scale shifts by log(unit), a constant
        self.cov_ = cov
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        self.se_log_shape_, self.se_log_scale_, self.se_coef_ = float(se[0]), float(se[1]), se[2:]
        self.n_, self.n_events_ = len(t), int(d.sum())
        return self

    @staticmethod
    def _loglik(theta, logt, d, X):
        """Log-likelihood (up to ``-sum d log t``), gradient and Hessian in ``(log shape, log scale, b)``."""
        a, b, beta = theta[0], theta[1], theta[2:]
        k = np.exp(a)
        z = k * (logt - b)
        eta = X @ beta
        Hi = np.exp(np.minimum(z + eta, 700.0))
        ll = np.sum(d * (a + z + eta)) - np.sum(Hi)
        g = np.empty(len(theta))
        g[0] = np.sum(d * (1 + z)) - np.sum(Hi * z)
        g[1] = k * (np.sum(Hi) - np.sum(d))
        g[2:] = X.T @ (d - Hi)
        p = len(theta)
        H = np.empty((p, p))
        H[0, 0] = np.sum(d * z) - np.sum(Hi * (z * z + z))
        H[0, 1] = H[1, 0] = -k * np.sum(d) + k * np.sum(Hi * (z + 1))
        H[1, 1] = -k * k * np.sum(Hi)
        H[0, 2:] = H[2:, 0] = -(X.T @ (Hi * z))
        H[1, 2:] = H[2:, 1] = k * (X.T @ Hi)
        H[2:, 2:] = -(X.T * Hi) @ X
        return ll, g, H

    @property
    def inverse_cumhaz(self) -> WeibullInverseCumhaz:
        return WeibullInverseCumhaz(self.scale_, self.shape_)

    def cumhaz(self, t, X=None) -> np.ndarray:
        eta = 0.0 if X is None else np.asarray(X, dtype=float) @ self.coef_
        return (np.asarray(t, dtype=float) / self.scale_) ** self.shape_ * np.exp(eta)

    def sample_times(self, X, *, rng: np.random.Generator) -> np.ndarray:
        """Event times ``H0^{-1}(E exp(-x'b))``, ``E ~ Exp(1)``."""
        X = np.asarray(X, dtype=float)
        return self.inverse_cumhaz(rng.exponential(size=len(X)) * np.exp(-(X @ self.coef_)))


class SurvivalModel:
    """PH outcome model on the baseline design, Weibull or piecewise exponential by AIC, plus censoring.

    ``baseline_hazard``: ``"auto"`` (the lower AIC of the two; Weibull on a tie or when the piecewise fit
    fails), ``"weibull"`` or ``"piecewise"``. After ``fit``: ``weibull_`` and ``piecewise_`` (both fits, the
    latter ``None`` if it could not be fitted), ``aic_`` (both AICs), ``baseline_hazard_`` (the choice) and
    ``ph_`` (the chosen fit, with ``coef_``, ``se_coef_``, ``inverse_cumhaz`` and ``cumhaz``).
    """

    def __init__(self, *, baseline_hazard: str = "auto", max_pieces: int = 8):
        self.baseline_hazard = baseline_hazard
        self.max_pieces = max_pieces

    def fit(self, baseline: pd.DataFrame, time, event, *, numeric, categorical,
            time_unit: str = "days") -> "SurvivalModel":
        if self.baseline_hazard not in BASELINE_HAZARDS:
            raise InvalidDataError(f"baseline_hazard={self.baseline_hazard!r} is not one of {BASELINE_HAZARDS}")
        t = pd.to_numeric(pd.Series(time), errors="coerce").to_numpy(dtype=float)
        d = pd.to_numeric(pd.Series(event), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(t) | ~np.isfinite(d)
        if bad.any():
            raise InvalidDataError(f"{int(bad.sum())} patient(s) have a missing time or event; drop those rows")
        self.design_ = BaselineDesign().fit(baseline, numeric, categorical)
        X = self.design_.transform(baseline)
        self.fit_notes_ = []
        self.weibull_, self.piecewise_, self.baseline_hazard_, self.ph_ = self._choose(t, d, X, "outcome")
        self.aic_ = self._aics(self.weibull_, self.piecewise_)
        # censoring before the largest time (censoring at it is the t_max clip of ``observe``)
        c = (d == 0) & (t < t.max())
        self.censoring_, self.censoring_kind_ = None, None
        if c.any():
            *_, self.censoring_kind_, self.censoring_ = self._choose(t, c.astype(float), None, "censoring",
                                                                     mode="auto")
        else:
            self.fit_notes_.append("no patient censored before the largest time: synthetic times are censored "
                                   "only at the largest time")
        self.time_range_ = (float(t.min()), float(t.max()))
        self.integer_time_ = is_integer_valued(t)
        self.time_unit_ = time_unit
        return self

    def _choose(self, t, d, X, what: str, mode: str | None = None):
        """``(weibull, piecewise, choice, chosen)`` for ``what`` (the outcome or the censoring times)."""
        mode = mode or self.baseline_hazard
        weibull = WeibullPH().fit(t, d, X) if mode != "piecewise" else None
        piecewise = None
        if mode != "weibull":
            try:
                piecewise = PiecewiseExponentialPH(max_pieces=self.max_pieces).fit(t, d, X)
            except (InvalidDataError, np.linalg.LinAlgError, FloatingPointError) as exc:
                if mode == "piecewise":
                    raise
                self.fit_notes_.append(f"{what}: piecewise-exponential PH fit failed ({exc}); using the Weibull")
        if piecewise is not None and (weibull is None or (piecewise.converged_ and (
                not weibull.converged_ or piecewise.aic_ < _aic(weibull)))):
            choice, chosen = "piecewise-exponential", piecewise
        else:
            choice, chosen = "weibull", weibull
        if not chosen.converged_:
            self.fit_notes_.append(f"{what}: {choice} PH fit: optimizer did not report convergence")
        if what == "outcome":
            aics = self._aics(weibull, piecewise)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in aics.items())
            pieces = f" with {piecewise.n_pieces_} pieces" if choice.startswith("piecewise") else ""
            self.fit_notes_.append(f"baseline hazard: {choice}{pieces} (AIC {shown})")
        return weibull, piecewise, choice, chosen

    @staticmethod
    def _aics(weibull, piecewise) -> dict[str, float]:
        out = {}
        if weibull is not None:
            out["weibull"] = _aic(weibull)
        if piecewise is not None:
            out["piecewise-exponential"] = float(piecewise.aic_)
        return out

    def latent(self, baseline: pd.DataFrame, *, rng: np.random.Generator) -> SurvivalLatent:
        X = self.design_.transform(baseline)
        return SurvivalLatent(cumhaz_draw=rng.exponential(size=len(X)), lp=design_matvec(X, self.ph_.coef_),
                              inverse_cumhaz=self.ph_.inverse_cumhaz, time_unit=self.time_unit_,
                              cumhaz=self.ph_.cumhaz)   # H0 itself: exact piecewise (delayed) effects

    def observe(self, event_time: np.ndarray, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Censor latent event times like the data: ``(time, event)`` with ``time = min(T, C, t_max)``."""
        T = np.asarray(event_time, dtype=float)
        C = np.full(len(T), self.time_range_[1])
        if self.censoring_ is not None:
            C = np.minimum(C, self.censoring_.inverse_cumhaz(rng.exponential(size=len(T))))
        event = T <= C
        time = np.where(event, T, C)
        if self.integer_time_:
            time = np.rint(time)
        time = np.clip(time, self.time_range_[0], self.time_range_[1])
        return time, event.astype(np.int64)


BASELINE_HAZARDS = ("auto", "weibull", "piecewise")


def _aic(model: WeibullPH) -> float:
    return float(2 * (2 + len(model.coef_)) - 2 * model.loglik_)
