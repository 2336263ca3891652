"""Gaussian copula for a baseline table (one row per patient): :class:`GaussianCopula`.

Model. Each column ``j`` has a marginal ``F_j`` and a latent normal score ``z_j``; the scores are jointly
``N(0, R)`` with ``R`` a correlation matrix, and a value is ``F_j^{-1}(Phi(z_j))``.

* Numeric column, more than ``max_discrete_levels`` distinct values: the empirical quantile function
  interpolated linearly between order statistics (``x_(k)`` at probability ``(k - 1/2) / n``, flat beyond), so
  values never leave the observed ``[min, max]``; an integer-valued column is rounded.
* Numeric column with few distinct values, and categorical columns of any dtype: the observed levels with
  their empirical probabilities (every level kept, however rare), the cumulative probabilities cutting the
  normal scale into intervals. Categorical levels are ordered by the pandas category order, else sorted.
* Missing values: a column with any missing value gets a latent missingness indicator (present / missing
  with the observed rate) inside the copula, so missingness can depend on the other columns; a sampled
  value is blanked when its indicator says missing. The marginal is that of the observed values.
* ``R``: Pearson correlation of the normal scores (pairwise complete), each score being
  ``Phi^{-1}(U)`` with ``U`` uniform on the observation's interval ``[F(x-), F(x)]`` (the distributional
  transform, which breaks ties at random with the ``rng`` given to ``fit``). Tied and categorical columns
  attenuate that correlation: ``Cov(score_j, score_k) ~ rho_jk a_j a_k`` to first order (Hermite expansion;
  exact when one of the two is untied, the biserial case), with ``a_j = Var(E[Z | cell])`` computed from the
  cell probabilities, so ``r_jk / (a_j a_k)`` is used (clipped to +-0.999). Then ``R`` is projected to positive
  definite (eigenvalues at least ``min_eigenvalue``, unit diagonal) and shrunk toward the identity by
  ``shrinkage``.

Samples keep each input column's dtype (including pandas 3 ``str``, ``category`` and nullable dtypes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from cohorts.errors import InvalidDataError, NotFittedError
from cohorts.generators.regression import category_levels, is_integer_valued, level_mask

__all__ = ["GaussianCopula", "nearest_correlation", "attenuation"]

_EPS = 1e-9


def attenuation(boundaries: np.ndarray) -> float:
    """``Var(E[Z | cell])`` for ``Z ~ N(0, 1)`` cut at ``Phi^{-1}(boundaries)``: the factor by which the
    distributional-transform score's covariance with any normal variable is shrunk (1 without ties)."""
    c = np.clip(np.asarray(boundaries, dtype=float), 0.0, 1.0)
    inner = (c > 0) & (c < 1)
    dens = np.where(inner, np.exp(-0.5 * ndtri(np.clip(c, _EPS, 1 - _EPS)) ** 2) / np.sqrt(2 * np.pi), 0.0)
    width = np.diff(c)
    ok = width > 0
    return float(np.sum((dens[:-1] - dens[1:])[ok] ** 2 / width[ok]))


def nearest_correlation(R: np.ndarray, *, min_eigenvalue: float = 1e-3) -> np.ndarray:
    """Symmetric positive definite correlation matrix near ``R``: clip eigenvalues, rescale to unit diagonal."""
    R = (R + R.T) / 2
    w, V = np.linalg.eigh(R)
    R = (V * np.maximum(w, min_eigenvalue)) @ V.T
    d = np.sqrt(np.diag(R))
    R = R / np.outer(d, d)
    np.fill_diagonal(R, 1.0)
    return R


class _Marginal:
    """One column's marginal: ``kind`` is "continuous" (interpolated quantiles) or "levels" (step)."""

    def __init__(self, values: np.ndarray, *, kind: str, levels=None, integer: bool = False):
        self.kind, self.integer = kind, integer
        if kind == "continuous":
            self.x = np.sort(values.astype(float))
            n = len(self.x)
            self.p = (np.arange(1, n + 1) - 0.5) / n
        else:
            self.levels = np.asarray(levels, dtype=object) if levels is not None else np.unique(values)
            counts = np.array([np.sum(level_mask(values, lv)) for lv in self.levels], dtype=float)
            self.cum = np.cumsum(counts) / counts.sum()
            self.cum[-1] = 1.0

    def interval(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each value's ``[F(x-), F(x)]`` among the fitted observations."""
        if self.kind == "continuous":
            lo = np.searchsorted(self.x, values.astype(float), side="left") / len(self.x)
            hi = np.searchsorted(self.x, values.astype(float), side="right") / len(self.x)
            return lo, hi
        idx = np.empty(len(values), dtype=int)
        for k, lv in enumerate(self.levels):
            idx[level_mask(values, lv)] = k
        cum0 = np.r_[0.0, self.cum]
        return cum0[idx], cum0[idx + 1]

    def quantile(self, u: np.ndarray) -> np.ndarray:
        if self.kind == "continuous":
            x = np.interp(u, self.p, self.x)
            return np.rint(x) if self.integer else x
        k = np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.levels) - 1)
        return self.levels[k]

    def boundaries(self) -> np.ndarray:
        """Cumulative probabilities cutting [0, 1] into the cells of equal value (ties form one cell)."""
        if self.kind == "continuous":
            _, counts = np.unique(self.x, return_counts=True)
            return np.r_[0.0, np.cumsum(counts) / len(self.x)]
        return np.r_[0.0, self.cum]

    @property
    def n_levels(self) -> int:
        return len(np.unique(self.x)) if self.kind == "continuous" else len(self.levels)


class GaussianCopula:
    """Gaussian copula with empirical marginals and modelled missingness (see the module docstring)."""

    def __init__(self, *, max_discrete_levels: int = 15, shrinkage: float = 0.0, min_eigenvalue: float = 1e-3):
        self.max_discrete_levels = max_discrete_levels
        self.shrinkage = shrinkage
        self.min_eigenvalue = min_eigenvalue

    def fit(self, frame: pd.DataFrame, numeric, categorical, *, rng: np.random.Generator) -> "GaussianCopula":
        numeric, categorical = list(numeric), list(categorical)
        missing_cols = [c for c in numeric + categorical if c not in frame.columns]
        if missing_cols:
            raise InvalidDataError(f"baseline column(s) {missing_cols} not in the data; "
                                   f"columns are {list(frame.columns)}")
        if len(frame) < 2:
            raise InvalidDataError(f"the copula needs at least 2 patients, got {len(frame)}")
        self.columns_ = numeric + categorical
        self.dtypes_ = {c: frame[c].dtype for c in self.columns_}
        self.marginals_: dict[str, _Marginal | None] = {}
        self.missing_rate_: dict[str, float] = {}
        scores, degenerate, atten, self.latent_names_ = [], [], [], []
        for c in self.columns_:
            s = frame[c]
            if c in numeric:
                s = pd.to_numeric(s, errors="coerce")
            observed = s.notna().to_numpy()
            values = s[observed].to_numpy(dtype=float if c in numeric else object)
            marg = self._marginal(values, s[observed], numeric=c in numeric)
            self.marginals_[c] = marg
            z = np.full(len(frame), np.nan)
            if marg is not None:
                lo, hi = marg.interval(values)
                z[observed] = self._score(lo, hi, rng)
            scores.append(z)
            degenerate.append(marg is None or marg.n_levels < 2)
            atten.append(attenuation(marg.boundaries()) if marg is not None else 1.0)
            self.latent_names_.append(c)
            rate = float(1.0 - observed.mean())
            self.missing_rate_[c] = rate
            if 0.0 < rate:
                lo = np.where(observed, 0.0, 1.0 - rate)
                hi = np.where(observed, 1.0 - rate, 1.0)
                scores.append(self._score(lo, hi, rng))
                degenerate.append(rate == 1.0)
                atten.append(attenuation(np.array([0.0, 1.0 - rate, 1.0])))
                self.latent_names_.append(f"{c}:missing")
        self.correlation_ = self._correlation(np.column_stack(scores) if scores else np.zeros((len(frame), 0)),
                                              np.array(degenerate, dtype=bool), np.array(atten))
        self.cholesky_ = np.linalg.cholesky(self.correlation_) if scores else np.zeros((0, 0))
        self.n_train_ = len(frame)
        return self

    def _marginal(self, values: np.ndarray, s: pd.Series, *, numeric: bool) -> _Marginal | None:
        if len(values) == 0:
            return None
        if not numeric:
            return _Marginal(values, kind="levels", levels=category_levels(s))
        if len(np.unique(values)) <= self.max_discrete_levels:
            return _Marginal(values, kind="levels", levels=np.unique(values))
        return _Marginal(values, kind="continuous", integer=is_integer_valued(values))

    @staticmethod
    def _score(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = lo + rng.random(len(lo)) * (hi - lo)
        return ndtri(np.clip(u, _EPS, 1 - _EPS))

    def _correlation(self, Z: np.ndarray, degenerate: np.ndarray, atten: np.ndarray) -> np.ndarray:
        L = Z.shape[1]
        if L == 0:
            return np.zeros((0, 0))
        R = pd.DataFrame(Z).corr(min_periods=3).to_numpy(dtype=float, copy=True)
        R[~np.isfinite(R)] = 0.0
        a = np.maximum(atten, 1e-3)  # scores have unit variance, so Corr(score_j, score_k) ~ a_j a_k rho_jk
        R = np.clip(R / np.outer(a, a), -0.999, 0.999)
        R[degenerate, :] = 0.0
        R[:, degenerate] = 0.0
        np.fill_diagonal(R, 1.0)
        R = nearest_correlation(R, min_eigenvalue=self.min_eigenvalue)
        return (1.0 - self.shrinkage) * R + self.shrinkage * np.eye(L)

    # ------------------------------------------------------------------ sampling
    def sample_normal_scores(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of the latent scores, shape ``(n, L)`` in the order of ``latent_names_``."""
        return rng.standard_normal((n, len(self.latent_names_))) @ self.cholesky_.T

    def sample(self, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` synthetic rows with the fitted columns and dtypes."""
        if not hasattr(self, "correlation_"):
            raise NotFittedError("GaussianCopula is not fitted: call fit(frame, numeric, categorical, rng=...)")
        n = int(n)
        U = ndtr(self.sample_normal_scores(n, rng=rng))
        pos = {name: j for j, name in enumerate(self.latent_names_)}
        out = {}
        for c in self.columns_:
            marg, dtype = self.marginals_[c], self.dtypes_[c]
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            values = np.full(n, np.nan, dtype=float if numeric else object)
            if marg is not None:
                values = marg.quantile(U[:, pos[c]]).astype(float if numeric else object)
            rate = self.missing_rate_[c]
            if rate > 0:
                values[U[:, pos[f"{c}:missing"]] > 1.0 - rate] = np.nan
            out[c] = _restore_dtype(values, self.dtypes_[c])
        return pd.DataFrame(out, index=pd.RangeIndex(n), columns=self.columns_)


def _restore_dtype(values: np.ndarray, dtype) -> pd.Series:
    """A series with the training column's dtype (values are training values or missing)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(values, dtype=dtype))
    if values.dtype != object and isinstance(dtype, np.dtype) and dtype.kind in "iu" and np.isnan(values).any():
        return pd.Series(values)  # an int64 column cannot hold a missing value (never seen in training data)
    return pd.Series(values).astype(dtype)
