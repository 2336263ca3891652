"""The visit process of a longitudinal outcome: schedule, missed visits and trajectory-linked dropout.

Used by :class:`~cohorts.generators.trajectory.TrajectoryModel` for ``sample`` (the generator's synthetic long
data); the trial layer sets its own follow-up. Leaving for any reason (death, withdrawal, loss to follow-up)
is one event: the data's longitudinal schema has no death column.

Schedule. The distinct visit times at which at least ``min_visit_fraction`` of patients were seen (if those
times hold under 80 % of the visits, the median time of each patient's k-th visit instead); each observed
visit is mapped to the nearest schedule time (its index ``k``; of two visits at one index the later is kept)
and a patient's last index is ``L``.

Model (discrete time, monotone dropout; leaving happens only after an attended visit, so "the last visit" is well
defined). A patient is in follow-up at ``k = 0 .. L``; visit 0 is always attended, a later visit in follow-up with
probability ``q_k`` (intermittent misses, independent of the outcome); after an attended visit ``k < K - 1`` the
patient leaves with probability ``h_k``,

    logit h_k = a_{bin(k)} + b_level (y_k - ybar) + b_slope (s_k - mu),

``y_k`` the observed value at the visit and ``s_k`` the patient's empirical-Bayes slope from the visits up to and
including ``k``: with centered sums over those visits, ``s_k = (S_ty + kappa mu) / (S_tt + kappa)``, the posterior
mean of a slope with prior ``N(mu, G_11)`` under residual variance ``sigma^2``, ``kappa = sigma^2 / G_11`` (from
the mixed model; ``s_k = mu`` at the first visit). Visit indices are grouped into bins, from the first, until each
bin has ``min_events_per_bin`` departures and stays.

Fit. The likelihood factorizes, so ``q_k`` is the attended fraction among patients in follow-up at ``k``, and the
hazard is a logistic regression (maximum likelihood, :func:`logistic_mle`, equal to statsmodels GLM Binomial) on
one row per attended visit ``k < K - 1`` with response ``k == L``. Because the hazard depends only on observed
values, dropout is missing at random: the REML fit of the trajectory model stays valid, and in ``sample`` the
synthetic patient's own latent trajectory (plus visit noise, as observed) decides when they leave: sicker patients
(lower scores, faster decline) leave earlier when the data say so. If the regression fails (separation, too few
departures) the hazard is the per-bin departure rate, independent of the outcome, and ``fit_notes_`` says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["VisitProcess", "eb_slopes_to_date", "logistic_mle"]


def logistic_mle(X: np.ndarray, y: np.ndarray, *, start=None, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Unpenalized logistic regression by Newton's method with step halving: ``(coefficients, SEs)``.

    The same estimates as statsmodels ``GLM(y, X, Binomial())`` (the tests check it), without its per-iteration
    SVDs (a 30,000-row fit takes milliseconds). Raises :class:`FloatingPointError` when it does not converge
    or a coefficient runs off (separation).
    """
    b = np.zeros(X.shape[1]) if start is None else np.asarray(start, dtype=float).copy()

    def loglik(beta):
        eta = X @ beta
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    ll = loglik(b)
    for _ in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(0.5 * (X @ b)))  # expit without overflow
        H = (X.T * (p * (1.0 - p))) @ X
        try:
            step = np.linalg.solve(H, X.T @ (y - p))
        except np.linalg.LinAlgError:
            raise FloatingPointError("singular information matrix (separation or collinear columns)") from None
        if np.abs(b).max(initial=0.0) > 30:
            raise FloatingPointError("a logistic coefficient ran off (separation?)")
        s = 1.0
        while True:
            new = loglik(b + s * step)
            if new >= ll - 1e-12 * abs(ll) or s < 1e-8:
                break
            s /= 2
        b, ll = b + s * step, new
        if np.max(np.abs(s * step)) < 1e-10:
            break
    else:
        raise FloatingPointError("logistic regression did not converge")
    if not np.all(np.isfinite(b)) or np.abs(b).max() > 30:
        raise FloatingPointError("a logistic coefficient ran off (separation?)")
    p = 0.5 * (1.0 + np.tanh(0.5 * (X @ b)))
    try:
        cov = np.linalg.inv((X.T * (p * (1.0 - p))) @ X)
    except np.linalg.LinAlgError:
        raise FloatingPointError("singular information matrix at the optimum") from None
    return b, np.sqrt(np.maximum(np.diag(cov), 0.0))


def eb_slopes_to_date(t: np.ndarray, y: np.ndarray, mask: np.ndarray, mu: float, kappa: float) -> np.ndarray:
    """Empirical-Bayes slope of each row after each column (``(n, V)``), over the entries where ``mask``.

    ``t`` and ``y`` are ``(n, V)`` (or ``t`` ``(V,)``); cumulative sums run along the columns.
    """
    t = np.broadcast_to(np.asarray(t, dtype=float), np.shape(y))
    w = np.asarray(mask, dtype=float)
    yw = np.where(mask, y, 0.0)
    m = np.cumsum(w, axis=1)
    st, sy = np.cumsum(w * t, axis=1), np.cumsum(yw, axis=1)
    stt, sty = np.cumsum(w * t * t, axis=1), np.cumsum(yw * t, axis=1)
    safe = np.maximum(m, 1.0)
    sxx = np.maximum(stt - st * st / safe, 0.0)
    sxy = sty - st * sy / safe
    return (sxy + kappa * mu) / (sxx + kappa)


class VisitProcess:
    """Visit schedule, missed visits and a dropout hazard linked to the observed trajectory."""

    def __init__(self, *, min_visit_fraction: float = 0.05, informative: bool = True, min_events_per_bin: int = 5):
        self.min_visit_fraction = min_visit_fraction
        self.informative = informative
        self.min_events_per_bin = min_events_per_bin

    # ------------------------------------------------------------------ fit
    def fit(self, t, y, g, *, slope_mean: float = 0.0, slope_kappa: float = 1.0) -> "VisitProcess":
        """Learn from visits ``(t, y)`` of patients ``g`` (codes ``0 .. n-1``, rows sorted by patient, time).

        ``slope_mean`` and ``slope_kappa`` are ``mu`` and ``kappa`` of the slope feature (module docstring).
        """
        t, y, g = np.asarray(t, float), np.asarray(y, float), np.asarray(g, int)
        n = int(g.max()) + 1
        self.fit_notes_: list[str] = []
        self.slope_mean_, self.slope_kappa_ = float(slope_mean), float(slope_kappa)
        self._fit_schedule(t, g, n)
        K = len(self.visit_times_)
        vi = np.abs(t[:, None] - self.visit_times_[None, :]).argmin(axis=1)
        # one visit per (patient, index): the later one
        keep = np.r_[(g[1:] != g[:-1]) | (vi[1:] != vi[:-1]), True]
        t, y, g, vi = t[keep], y[keep], g[keep], vi[keep]
        last = np.zeros(n, dtype=int)
        np.maximum.at(last, g, vi)
        seen = np.zeros((n, K), dtype=bool)
        seen[g, vi] = True
        in_fu = np.arange(K)[None, :] <= last[:, None]
        n_fu = in_fu.sum(axis=0)
        self.attendance_ = np.where(n_fu > 0, (seen & in_fu).sum(axis=0) / np.maximum(n_fu, 1), 1.0)
        self.attendance_[0] = 1.0
        # hazard rows: attended visits before the final schedule time
        rows = vi < K - 1
        event = (vi == last[g])[rows].astype(float)
        level = y[rows]
        T, Y = np.full((n, K), np.nan), np.full((n, K), np.nan)
        T[g, vi], Y[g, vi] = t, y
        slope_all = eb_slopes_to_date(np.nan_to_num(T), np.nan_to_num(Y), seen, slope_mean, slope_kappa)
        slope = slope_all[g, vi][rows]
        self._fit_hazard(vi[rows], event, level, slope, K)
        return self

    def _fit_schedule(self, t, g, n) -> None:
        times, counts = np.unique(t, return_counts=True)
        pats = pd.DataFrame({"g": g, "t": t}).drop_duplicates()["t"].value_counts().reindex(times).to_numpy()
        keep = pats >= max(self.min_visit_fraction * n, 2)
        if keep.sum() >= 1 and counts[keep].sum() >= 0.8 * len(t):
            self.visit_times_ = times[keep].astype(float)
            return
        order = np.r_[0, np.cumsum(np.bincount(g, minlength=n))[:-1]]
        k = np.arange(len(t)) - order[g]  # visit index within patient (rows are sorted by patient, time)
        idx, kc = np.unique(k, return_counts=True)
        idx = idx[kc >= max(self.min_visit_fraction * n, 2)]
        self.visit_times_ = np.array([np.median(t[k == i]) for i in idx]) if idx.size else np.array([t.min()])
        self.fit_notes_.append("irregular visit times: schedule is the median time of each patient's k-th visit")

    def _bins(self, vi, event, K) -> np.ndarray:
        """Bin of each visit index ``0 .. K-2``: consecutive indices until a bin has enough departures and stays."""
        e = np.bincount(vi, weights=event, minlength=K - 1)[:K - 1]
        r = np.bincount(vi, minlength=K - 1)[:K - 1]
        need = self.min_events_per_bin
        bins, b, acc_e, acc_s = np.zeros(max(K - 1, 0), dtype=int), 0, 0.0, 0.0
        for k in range(K - 1):
            bins[k] = b
            acc_e, acc_s = acc_e + e[k], acc_s + r[k] - e[k]
            if acc_e >= need and acc_s >= need and k < K - 2:
                b, acc_e, acc_s = b + 1, 0.0, 0.0
        if K - 1 > 0 and b > 0 and (acc_e < need or acc_s < need):  # a short last bin joins the previous one
            bins[bins == b] = b - 1
        return bins

    def _fit_hazard(self, vi, event, level, slope, K) -> None:
        self.bin_of_visit_ = self._bins(vi, event, K)
        nb = int(self.bin_of_visit_.max()) + 1 if K > 1 else 0
        self.coef_level_ = self.coef_slope_ = 0.0
        self.se_level_ = self.se_slope_ = np.nan
        self.level_center_ = float(level.mean()) if level.size else 0.0
        self.hazard_method_ = "none"
        if K <= 1:
            self.bin_logit_ = np.zeros(0)
            return
        b = self.bin_of_visit_[vi]
        e_bin = np.bincount(b, weights=event, minlength=nb)
        r_bin = np.bincount(b, minlength=nb).astype(float)
        rate = np.where(r_bin > 0, e_bin / np.maximum(r_bin, 1), 0.0)
        self.bin_logit_ = np.log(np.clip(rate, 1e-300, None)) - np.log1p(-np.clip(rate, 0, 1 - 1e-16))
        self.hazard_method_ = "per-bin departure rate (independent of the outcome)"
        if not self.informative:
            return
        if event.sum() < self.min_events_per_bin or (1 - event).sum() < self.min_events_per_bin:
            self.fit_notes_.append("dropout: too few departures or stays for a regression; the dropout hazard "
                                   "does not depend on the trajectory")
            return
        feats, names = [], []
        for name, v, c in (("level", level, self.level_center_), ("slope", slope, self.slope_mean_)):
            sd = float(np.std(v))
            if sd > 1e-9 * max(1.0, float(np.abs(v).max())):
                feats.append((v - c) / sd)
                names.append((name, sd))
        X = np.column_stack([(b[:, None] == np.arange(nb)[None, :]).astype(float), *feats])
        start = np.r_[self.bin_logit_, np.zeros(len(feats))]
        try:
            params, bse = logistic_mle(X, event, start=start)
        except FloatingPointError as exc:  # separation / non-convergence: per-bin rates
            self.fit_notes_.append(f"dropout: logistic regression on the trajectory failed ({exc}); the dropout "
                                   "hazard does not depend on the trajectory")
            return
        self.bin_logit_ = params[:nb]
        for j, (name, sd) in enumerate(names):
            setattr(self, f"coef_{name}_", float(params[nb + j] / sd))
            setattr(self, f"se_{name}_", float(bse[nb + j] / sd))
        self.hazard_method_ = "logistic regression on the observed level and empirical-Bayes slope to date"
        self.n_hazard_rows_, self.n_departures_ = len(event), int(event.sum())

    # ------------------------------------------------------------------ synthetic patients
    def hazard(self, k: int, level, slope) -> np.ndarray:
        """Probability of leaving after an attended visit at schedule index ``k < K - 1``."""
        lp = (self.bin_logit_[self.bin_of_visit_[k]] + self.coef_level_ * (np.asarray(level) - self.level_center_)
              + self.coef_slope_ * (np.asarray(slope) - self.slope_mean_))
        return 1.0 / (1.0 + np.exp(-lp))

    def attended(self, y: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
        """Boolean ``(n, V)``: visits attended by patients whose realized values at the schedule are ``y``."""
        y = np.asarray(y, dtype=float)
        n, K = y.shape
        tk = self.visit_times_
        u_att, u_leave = rng.random((n, K)), rng.random((n, K))
        att = np.zeros((n, K), dtype=bool)
        active = np.ones(n, dtype=bool)
        m = st = sy = stt = sty = np.zeros(n)
        for k in range(K):
            a = active & ((k == 0) | (u_att[:, k] < self.attendance_[k]))
            att[:, k] = a
            w = a.astype(float)
            yk = np.where(a, y[:, k], 0.0)
            m, st, sy = m + w, st + w * tk[k], sy + yk
            stt, sty = stt + w * tk[k] ** 2, sty + yk * tk[k]
            if k < K - 1:
                safe = np.maximum(m, 1.0)
                slope = ((sty - st * sy / safe) + self.slope_kappa_ * self.slope_mean_) / (
                    np.maximum(stt - st * st / safe, 0.0) + self.slope_kappa_)
                leave = a & (u_leave[:, k] < self.hazard(k, y[:, k], slope))
                active &= ~leave
        return att

    def summary(self) -> pd.DataFrame:
        """The dropout regression's trajectory coefficients (per value unit and per value/time unit) and SEs."""
        return pd.DataFrame({"coef": [self.coef_level_, self.coef_slope_], "se": [self.se_level_, self.se_slope_]},
                            index=["level", "slope"])
