"""Flexible proportional-hazards model: piecewise-exponential baseline hazard (:class:`PiecewiseExponentialPH`).

Model. ``h(t | x) = lambda_j exp(x'b)`` for ``t`` in piece ``j = (c_{j-1}, c_j]`` (``c_0 = 0``, ``c_J = inf``), so
the baseline cumulative hazard ``H0(t) = sum_j lambda_j E_j(t)`` is piecewise linear, ``E_j(t)`` the time spent
in piece ``j`` before ``t``. With right censoring (``d = 1`` event, ``0`` censored) the log-likelihood is

    l(lambda, b) = sum_j D_j log lambda_j + sum_i d_i x_i'b - sum_i exp(x_i'b) H0(t_i),

``D_j`` the events in piece ``j`` (an event exactly at a cut point belongs to the piece it closes). It equals
the Poisson log-likelihood of the data split at the cut points (count ``d_ij``, offset ``log E_ij``) up to a
constant, which the tests use as the reference (statsmodels GLM). Ties need no special handling (a parametric
likelihood); times of 0 are set to half the smallest positive time, as in the Weibull fit, so that AICs are
comparable.

Fit. For fixed ``b`` the MLE of the rates is closed-form, ``lambda_j = D_j / sum_i E_ij exp(x_i'b)``; the
profile log-likelihood in ``b`` is concave (the Cox partial likelihood with the risk sets replaced by
exposure-weighted sums) and maximised by Newton's method with step halving (``converged_`` is false when a
log hazard ratio runs past 25: separation, no finite MLE). Standard errors of
``(log lambda, b)`` come from the inverse observed information of the full likelihood at the optimum.

Cut points. ``J`` pieces have cuts at the ``j / J`` quantiles of the event times; pieces with fewer than
``min_events_per_piece`` events are merged into a neighbour (so heavy ties or few events give fewer pieces and
every rate is positive). ``J`` is chosen by AIC (``2 (J + p) - 2 l``; the cut points, fixed by the data's
quantiles, are not counted) among ``1 .. max_pieces``; ``J = 1`` is the exponential PH model.

Sampling. ``H0^{-1}`` is exact and vectorised (:class:`PiecewiseInverseCumhaz`, a picklable callable): for a
cumulative hazard ``h`` in piece ``j``, ``t = c_{j-1} + (h - H0(c_{j-1})) / lambda_j``.
"""

from __future__ import annotations

import numpy as np

from cohorts.errors import InvalidDataError

__all__ = ["PiecewiseExponentialPH", "PiecewiseInverseCumhaz", "quantile_cuts", "exposure_matrix"]


class PiecewiseInverseCumhaz:
    """``H0^{-1}`` of a piecewise-constant hazard with ``rates`` on pieces split at ``cuts`` (picklable)."""

    def __init__(self, cuts, rates):
        self.cuts = np.asarray(cuts, dtype=float).reshape(-1)
        self.rates = np.asarray(rates, dtype=float).reshape(-1)
        if len(self.rates) != len(self.cuts) + 1 or np.any(self.rates <= 0):
            raise ValueError("need len(cuts) + 1 positive rates")
        starts = np.r_[0.0, self.cuts]
        #: baseline cumulative hazard at the start of each piece
        self.cumhaz_at_start = np.r_[0.0, np.cumsum(self.rates[:-1] * np.diff(starts))]
        self.starts = starts

    def __call__(self, h) -> np.ndarray:
        h = np.asarray(h, dtype=float)
        c = self.cumhaz_at_start
        if len(c) <= 16 and h.ndim == 1 and c[0] == 0.0 and np.all(np.diff(c) > 0):
            # the piece index, clip(searchsorted(c, h, "right") - 1, 0, J - 1), counted by comparisons (faster
            # than a binary search per value for a few pieces); equal for every h: h < 0 gives 0 both ways, and
            # a NaN h gives a NaN time whatever the piece
            j = np.zeros(len(h), dtype=np.intp)
            for cut in c[1:]:
                j += h >= cut
        else:
            j = np.searchsorted(c, h, side="right") - 1
            j = np.clip(j, 0, len(self.rates) - 1)
        return self.starts[j] + (h - c[j]) / self.rates[j]

    def __repr__(self) -> str:
        return f"PiecewiseInverseCumhaz(cuts={np.round(self.cuts, 6).tolist()}, rates={self.rates.tolist()})"


def exposure_matrix(t: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E, piece)``: time each patient spends in each piece ``(n, J)``, and the piece holding ``t`` (``(n,)``)."""
    t = np.asarray(t, dtype=float)
    lo = np.r_[0.0, cuts]
    hi = np.r_[cuts, np.inf]
    E = np.clip(np.minimum(t[:, None], hi[None, :]) - lo[None, :], 0.0, None)
    piece = np.searchsorted(np.asarray(cuts, dtype=float), t, side="left")  # t == c_j belongs to piece j
    return E, piece


def quantile_cuts(event_times: np.ndarray, n_pieces: int, min_events: int) -> np.ndarray:
    """Cuts at the ``j / n_pieces`` quantiles of ``event_times``, merged until each piece has ``min_events``."""
    te = np.sort(np.asarray(event_times, dtype=float))
    if n_pieces <= 1 or te.size == 0:
        return np.zeros(0)
    cuts = np.unique(np.quantile(te, np.arange(1, n_pieces) / n_pieces, method="inverted_cdf"))
    cuts = cuts[(cuts > 0) & (cuts < te[-1])]
    while cuts.size:
        counts = np.bincount(np.searchsorted(cuts, te, side="left"), minlength=cuts.size + 1)
        j = int(np.argmin(counts))
        if counts[j] >= min_events:
            break
        # merge the sparsest piece with its smaller neighbour (remove the cut between them)
        if j == 0:
            drop = 0
        elif j == cuts.size:
            drop = cuts.size - 1
        else:
            drop = j - 1 if counts[j - 1] <= counts[j + 1] else j
        cuts = np.delete(cuts, drop)
    return cuts


class PiecewiseExponentialPH:
    """Piecewise-exponential PH regression by maximum likelihood (see the module docstring).

    ``n_pieces`` fixes the number of pieces (quantile cuts); ``None`` chooses it by AIC among
    ``1 .. max_pieces``. ``fit(..., cuts=...)`` uses given cut points instead.
    """

    def __init__(self, *, n_pieces: int | None = None, max_pieces: int = 8, min_events_per_piece: int = 5):
        self.n_pieces = n_pieces
        self.max_pieces = max_pieces
        self.min_events_per_piece = min_events_per_piece

    # ------------------------------------------------------------------ fit
    def fit(self, time, event, X=None, *, cuts=None) -> "PiecewiseExponentialPH":
        t = np.asarray(time, dtype=float).reshape(-1)
        d = np.asarray(event, dtype=float).reshape(-1)
        X = np.zeros((len(t), 0)) if X is None else np.asarray(X, dtype=float).reshape(len(t), -1)
        if len(t) == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
            raise InvalidDataError("survival times must be finite and non-negative")
        if len(d) != len(t) or not np.all(np.isin(d, (0.0, 1.0))):
            raise InvalidDataError("the event indicator must be 0 (censored) or 1 (event), one per time")
        if d.sum() == 0:
            raise InvalidDataError("no events: a piecewise-exponential model cannot be fitted to fully censored "
                                   "times")
        positive = t[t > 0]
        t = np.where(t > 0, t, positive.min() / 2 if positive.size else 1.0)
        if cuts is not None:
            candidates = [np.unique(np.asarray(cuts, dtype=float))]
        else:
            counts = [self.n_pieces] if self.n_pieces is not None else range(1, int(self.max_pieces) + 1)
            te = t[d == 1]
            candidates, seen = [], set()
            for J in counts:
                c = quantile_cuts(te, int(J), int(self.min_events_per_piece))
                if c.tobytes() not in seen:
                    seen.add(c.tobytes())
                    candidates.append(c)
        fits = [self._fit_cuts(t, d, X, c) for c in candidates]
        self.aic_by_pieces_ = {len(f["cuts"]) + 1: f["aic"] for f in fits}
        best = min(fits, key=lambda f: f["aic"])
        for k, v in best.items():
            setattr(self, f"{k}_", v)
        self.n_pieces_ = len(self.cuts_) + 1
        self.n_, self.n_events_ = len(t), int(d.sum())
        return self

    def _fit_cuts(self, t, d, X, cuts) -> dict:
        E, piece = exposure_matrix(t, cuts)
        J, p = E.shape[1], X.shape[1]
        D = np.bincount(piece[d == 1], minlength=J).astype(float)
        if np.any(D == 0):
            raise InvalidDataError(f"a piece between cut points {cuts.tolist()} holds no event; "
                                   "choose cuts with events in every piece")
        dx = X.T @ d
        b = np.zeros(p)
        prof = self._profile(b, E, X, D, dx)
        converged = p == 0
        for _ in range(100):
            if p == 0:
                break
            ll, g, H = prof
            try:
                step = np.linalg.solve(-H, g)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(-H, g, rcond=None)[0]
            s, cand = 1.0, None
            for _ in range(40):  # step halving keeps the (concave) profile likelihood increasing
                trial = self._profile(b + s * step, E, X, D, dx)
                if np.isfinite(trial[0]) and trial[0] >= ll - 1e-12 * abs(ll):
                    cand = trial
                    break
                s /= 2
            if cand is None:  # no ascent step: stop where we are (reported as not converged)
                break
            b, prof = b + s * step, cand
            if np.max(np.abs(s * step)) < 1e-10 or abs(g @ step) < 1e-14:
                converged = True
                break
        ll, _, _ = prof
        rates = D / ((E * np.exp(X @ b)[:, None]).sum(axis=0))
        info = self._information(np.log(rates), b, E, X)
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov = np.full_like(info, np.nan)
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        # a log hazard ratio beyond 25 means separation (no events in a group): the MLE does not exist
        converged = bool(converged and np.all(np.isfinite(b)) and np.abs(b).max(initial=0.0) < 25
                         and np.all(np.isfinite(rates)) and np.all(rates > 0))
        return {"cuts": np.asarray(cuts, dtype=float), "rates": rates, "coef": b, "loglik": float(ll),
                "aic": float(2 * (J + p) - 2 * ll), "cov": cov, "se_log_rates": se[:J], "se_coef": se[J:],
                "converged": converged, "events_per_piece": D.astype(int)}

    @staticmethod
    def _profile(b, E, X, D, dx):
        """Profile log-likelihood (rates at their closed-form MLE), its gradient and Hessian in ``b``."""
        eta = X @ b
        if np.max(eta, initial=-np.inf) > 700:
            return -np.inf, None, None
        w = np.exp(eta)
        Ew = E * w[:, None]                     # (n, J)
        S = Ew.sum(axis=0)                      # (J,)
        ll = float(np.sum(D * (np.log(D) - np.log(S))) + dx @ b - D.sum())
        M = (Ew.T @ X) / S[:, None]             # (J, p) exposure-weighted covariate means
        g = dx - D @ M
        H = np.zeros((X.shape[1], X.shape[1]))
        for j in range(len(D)):
            if D[j] > 0:
                H -= D[j] * ((X.T * (Ew[:, j] / S[j])) @ X - np.outer(M[j], M[j]))
        return ll, g, H

    @staticmethod
    def _information(alpha, b, E, X) -> np.ndarray:
        """Observed information of the full likelihood in ``(log lambda, b)``."""
        w = np.exp(X @ b)
        lam = np.exp(alpha)
        Ew = E * w[:, None]
        J, p = E.shape[1], X.shape[1]
        info = np.zeros((J + p, J + p))
        info[:J, :J] = np.diag(lam * Ew.sum(axis=0))
        cross = (Ew * lam[None, :]).T @ X       # (J, p)
        info[:J, J:] = cross
        info[J:, :J] = cross.T
        Hi = Ew @ lam                           # exp(x'b) H0(t_i)
        info[J:, J:] = (X.T * Hi) @ X
        return info

    # ------------------------------------------------------------------ use
    @property
    def inverse_cumhaz(self) -> PiecewiseInverseCumhaz:
        return PiecewiseInverseCumhaz(self.cuts_, self.rates_)

    def baseline_cumhaz(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        E, _ = exposure_matrix(t.reshape(-1), self.cuts_)
        return (E @ self.rates_).reshape(t.shape)

    def cumhaz(self, t, X=None) -> np.ndarray:
        eta = 0.0 if X is None else np.asarray(X, dtype=float) @ self.coef_
        return self.baseline_cumhaz(t) * np.exp(eta)

    def hazard(self, t) -> np.ndarray:
        """Baseline hazard at ``t`` (the rate of the piece holding ``t``)."""
        _, piece = exposure_matrix(np.asarray(t, dtype=float).reshape(-1), self.cuts_)
        return self.rates_[piece]

    def sample_times(self, X, *, rng: np.random.Generator) -> np.ndarray:
        """Event times ``H0^{-1}(E exp(-x'b))``, ``E ~ Exp(1)``."""
        X = np.asarray(X, dtype=float)
        return self.inverse_cumhaz(rng.exponential(size=len(X)) * np.exp(-(X @ self.coef_)))
