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

Samples keep each input column's dtype (including pandas 3 ``str``, ``category`` and nullable dtypes). Sampling is
vectorised for speed without changing a bit of the result (tests/cohorts/test_draw_speed_equivalence.py): quantiles
interpolated without a binary search, levels, integer values and missingness read from tables over the normal
scores (:class:`_StepTable`), string columns built from level codes (:mod:`~cohorts.generators.sampled_columns`),
only when a frame is asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from cohorts.errors import InvalidDataError, NotFittedError
from cohorts.generators.regression import _blas_rows, category_levels, is_integer_valued, level_mask
from cohorts.generators.sampled_columns import SampledColumns, restore_dtype

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


def _interp_order_statistics(u: np.ndarray, x: np.ndarray, slopes: np.ndarray | None) -> np.ndarray:
    """``np.interp(u, p, x)`` with ``p_k = (k + 1/2) / n`` (``k = 0 .. n-1``), bit for bit, without its binary
    search: the knot below ``u`` is read off the uniform grid, ``j = floor(u n - 1/2)``, and corrected by one step
    (rounding puts the guess at most one knot off for ``n < 2**40``); then ``slope_j (u - p_j) + x_j``, numpy's
    own formula with numpy's own slopes. Beyond the end knots the slope is 0, so the value is ``x_0`` or
    ``x_{n-1}`` (numpy's ``left``/``right``); at a knot ``0 * 0 + x_j = x_j`` (exact because no ``x`` is -0.0).
    ``slopes`` is ``None`` when those conditions fail (non-finite or -0.0 values, fewer than 2 knots): then
    ``np.interp`` itself. Non-finite ``u`` also goes to ``np.interp``."""
    n = len(x)
    u = np.asarray(u, dtype=float)
    if slopes is None:
        return np.interp(u, (np.arange(1, n + 1) - 0.5) / n, x)
    p = (np.arange(1, n + 1) - 0.5) / n
    buf = np.multiply(u, n)
    buf -= 0.5
    if not np.isfinite(buf).all():
        return np.interp(u, p, x)
    np.floor(buf, out=buf)
    np.clip(buf, -1.0, n - 1.0, out=buf)
    j = buf.astype(np.intp)
    j += 1                                           # padded knots: pk[j] <= u < pk[j + 1], j in 0 .. n
    pk = np.r_[-np.inf, p, np.inf]
    np.take(pk, j, out=buf)
    step = np.greater(buf, u)
    j -= step
    j += 1
    np.take(pk, j, out=buf)
    j -= 1
    np.less_equal(buf, u, out=step)
    j += step
    np.take(np.r_[0.0, p], j, out=buf)               # knot at or below u (a finite dummy below p_0)
    np.subtract(u, buf, out=buf)
    other = np.take(np.r_[0.0, slopes, 0.0], j)
    buf *= other
    np.take(np.r_[x[0], x], j, out=other)
    buf += other
    return buf


#: z-buckets of :class:`_StepTable`: width 2**-12 on [-8, 8), the two end buckets open to -inf / +inf
_Z_EDGE, _Z_SCALE = 8.0, 4096.0
#: margins of the bucket check: on z (index rounding is below 2e-15) and on u (scipy's ndtr is accurate to
#: 3.4e-14, cephes' documented peak relative error on [-13, 0], absolute elsewhere below that; the slack is 400 times
#: that)
_Z_MARGIN, _U_SLACK = 1e-12, 2.0 ** -36


class _StepTable:
    """``g(ndtr(z))`` for a non-decreasing step function ``g`` of ``u`` (a level index, a rounded quantile, a
    missingness indicator), read from a table over z-buckets instead of evaluating ``ndtr`` and ``g``.

    A bucket's entry is ``g(lo)`` when ``g(lo) == g(hi)``, with ``lo = ndtr(a - m) - s`` and ``hi = ndtr(b + m) + s``
    for the bucket ``[a, b)`` (margins ``m`` on z, ``s`` on u): every z the index arithmetic puts in the bucket has
    ``lo <= ndtr(z) <= hi`` (``Phi`` is increasing and ``ndtr`` is within ``s / 2`` of it), and ``g`` is monotone,
    so ``g(ndtr(z))`` is that entry, the same value the direct evaluation gives. Other buckets (a step of ``g``
    inside; 0.01 % of draws for a binary level, 3 % for GBSG-2's receptor counts, integers 0 to 1144) hold the
    ``sentinel`` and their z go the direct way, as does everything when some z is NaN."""

    def __init__(self, g, sentinel):
        edges = np.arange(int(2 * _Z_EDGE * _Z_SCALE) + 1) / _Z_SCALE - _Z_EDGE
        lo = np.clip(ndtr(edges[:-1] - _Z_MARGIN) - _U_SLACK, 0.0, 1.0)
        hi = np.clip(ndtr(edges[1:] + _Z_MARGIN) + _U_SLACK, 0.0, 1.0)
        lo[0], hi[-1] = 0.0, 1.0
        g_lo, g_hi = g(lo), g(hi)
        self.g, self.nan = g, sentinel != sentinel
        self.table = np.where(g_lo == g_hi, g_lo, sentinel)
        if not self.nan:
            self.table = self.table.astype(np.int32)

    def __call__(self, z: np.ndarray, chunk: int = 16384) -> np.ndarray:
        """The bucket of each ``z`` is ``floor(clip((z + edge) * scale))``, computed in chunks that stay in cache
        (the same arithmetic on every value, so the same buckets; 2.6 times faster on 380,000 values)."""
        if np.isnan(z).any():
            return self.g(ndtr(z))
        n, top = len(z), len(self.table) - 1
        out = np.empty(n, dtype=self.table.dtype)
        b, idx = np.empty(min(chunk, n)), np.empty(min(chunk, n), dtype=np.intp)
        for i in range(0, n, chunk):
            k = min(chunk, n - i)
            np.add(z[i:i + k], _Z_EDGE, out=b[:k])
            b[:k] *= _Z_SCALE
            np.clip(b[:k], 0, top, out=b[:k])
            idx[:k] = b[:k]                            # truncation is floor here: b >= 0
            np.take(self.table, idx[:k], out=out[i:i + k])
        dirty = np.flatnonzero(np.isnan(out) if self.nan else out < 0)
        if dirty.size:
            out[dirty] = self.g(ndtr(z[dirty]))
        return out


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
            x = _interp_order_statistics(u, self.x, self._slopes())
            return np.rint(x) if self.integer else x
        return self.levels[self.level_index(u)]

    def level_index(self, u: np.ndarray) -> np.ndarray:
        """Position in ``levels`` of the level at probability ``u`` ("levels" kind):
        ``min(searchsorted(cum, u, "right"), L - 1)``, i.e. the number of ``cum[:L-1]`` at or below ``u`` (``cum`` is
        non-decreasing); with few levels counted by comparisons, which beat a binary search per value."""
        L, u = len(self.levels), np.asarray(u, dtype=float)
        if L > 8 or not np.all(np.diff(self.cum) >= 0):
            return np.minimum(np.searchsorted(self.cum, u, side="right"), L - 1)
        k = np.zeros(u.shape, dtype=np.intp)
        for c in self.cum[:-1]:
            k += u >= c
        nan = np.isnan(u)
        if nan.any():
            k[nan] = L - 1                   # searchsorted puts NaN after every value
        return k

    def numeric_levels(self) -> np.ndarray:
        """``levels`` as floats ("levels" kind of a numeric column), what ``quantile(u).astype(float)`` gives."""
        return self.levels.astype(float)

    def _slopes(self) -> np.ndarray | None:
        """``diff(x) / diff(p)`` (``np.interp``'s slopes), computed once; ``None`` where the fast path of
        :func:`_interp_order_statistics` is not exact (see there)."""
        slopes = getattr(self, "_slopes_cache", False)
        if slopes is False:
            slopes = np.diff(self.x) / np.diff(self.p)
            exact = (len(self.x) >= 2 and len(self.x) < 2 ** 40 and np.all(np.isfinite(self.x))
                     and np.all(np.isfinite(slopes)) and not np.any((self.x == 0) & np.signbit(self.x))
                     and np.array_equal(self.p, (np.arange(1, len(self.x) + 1) - 0.5) / len(self.x)))
            slopes = slopes if exact else None
            self._slopes_cache = slopes
        return slopes

    def step_map(self):
        """``u -> value`` as a non-decreasing step function for :class:`_StepTable`, or ``None``: the level
        index ("levels"), or the rounded quantile of an integer column (``rint`` of numpy's interpolation is
        non-decreasing in ``u``: within a piece every rounding is monotone and the slope is >= 0, and just
        below a knot ``x_j`` the value is ``x_j`` up to a few ulps, far from a half-integer for ``|x| < 2**40``)."""
        if self.kind == "levels":
            return self.level_index, -1
        if self.integer and self._slopes() is not None and np.abs(self.x).max() < 2.0 ** 40:
            return self.quantile, np.nan
        return None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}

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
        return _blas_rows(rng.standard_normal((n, len(self.latent_names_))), self.cholesky_.T)

    def _scores_by_row(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """:meth:`sample_normal_scores` transposed, ``(L, n)`` C-ordered (one contiguous row per latent score):
        the same draws and the same row blocks of the product, each block drawn, multiplied and transposed while
        in cache. A generator's fill is sequential, so drawing the ``(n, L)`` normals block by block gives the
        very numbers of one ``standard_normal((n, L))`` call, without writing and reading them back from memory."""
        L, CT = len(self.latent_names_), self.cholesky_.T
        out = np.empty((L, n))
        if L == 0:
            return out
        rows = max(64, 262144 // (L * L))       # the row blocks of regression._blas_rows
        if n <= rows:
            out[:] = (rng.standard_normal((n, L)) @ CT).T
            return out
        a, buf = np.empty((rows, L)), np.empty((rows, L))
        for i in range(0, n, rows):
            m = min(rows, n - i)
            rng.standard_normal(out=a[:m])
            np.matmul(a[:m], CT, out=buf[:m])
            out[:, i:i + m] = buf[:m].T
        return out

    def _step(self, name: str, g, sentinel) -> _StepTable:
        """The :class:`_StepTable` of latent ``name`` (built on first use, not pickled)."""
        cache = self.__dict__.setdefault("_step_cache", {})
        if name not in cache:
            cache[name] = _StepTable(g, sentinel)
        return cache[name]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_step_cache"}

    def sample(self, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` synthetic rows with the fitted columns and dtypes (:meth:`sample_columns` as a frame)."""
        return self.sample_columns(n, rng=rng).frame()

    def sample_columns(self, n: int, *, rng: np.random.Generator) -> SampledColumns:
        """``n`` synthetic rows as :class:`~cohorts.generators.sampled_columns.SampledColumns`: numeric columns as
        series, non-numeric ones as level codes, built into strings only if a frame is asked for.

        Each value is ``F^{-1}(Phi(z))`` of its latent score; a level, an integer column's value and the
        missingness indicator come from :class:`_StepTable` (the same values without ``Phi``), a non-integer
        column from ``Phi`` and the interpolated quantiles."""
        if not hasattr(self, "correlation_"):
            raise NotFittedError("GaussianCopula is not fitted: call fit(frame, numeric, categorical, rng=...)")
        n = int(n)
        Z = self._scores_by_row(n, rng)
        pos = {name: j for j, name in enumerate(self.latent_names_)}
        out = SampledColumns(n, self.columns_)
        for c in self.columns_:
            marg, dtype = self.marginals_[c], self.dtypes_[c]
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            rate = self.missing_rate_[c]
            missing = None
            if rate > 0:
                cut = 1.0 - rate
                missing = self._step(f"{c}:missing", lambda u, cut=cut: (u > cut).astype(np.int8),
                                     -1)(Z[pos[f"{c}:missing"]]).astype(bool)
            step = marg.step_map() if marg is not None else None
            if marg is not None and not numeric:
                out.add_levels(c, marg.levels, self._step(c, *step)(Z[pos[c]]), missing, dtype)
                continue
            if marg is None:
                values = np.full(n, np.nan, dtype=float if numeric else object)
            else:
                value = self._step(c, *step)(Z[pos[c]]) if step is not None else marg.quantile(ndtr(Z[pos[c]]))
                values = marg.numeric_levels()[value] if marg.kind == "levels" else value
            if missing is not None:
                values[missing] = np.nan
            out.add_series(c, restore_dtype(values, self.dtypes_[c]))
        return out
