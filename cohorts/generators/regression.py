"""Baseline design matrix and the single-value outcome models of the default generator.

:class:`BaselineDesign` turns a baseline frame (one row per patient) into the covariate matrix every outcome
model uses: numeric columns standardized (mean 0, SD 1 over the training patients; a missing value imputed by
the training median), categorical columns one-hot against their most frequent level (a missing value gets its
own indicator when the training data had one), constant and collinear columns dropped (pivoted QR).

:class:`ContinuousModel` is the linear model ``y = b0 + x'b + e``, ``e ~ N(0, sigma^2)`` (OLS, ``sigma`` the
residual SD on ``n - p`` degrees of freedom; values clipped to the schema's bounds, else the observed
range); :class:`BinaryModel` the logistic model
``P(y = 1) = expit(b0 + x'b)`` fitted by unpenalized maximum likelihood (statsmodels GLM; under complete
separation a nearly unpenalized sklearn fit, noted in ``fit_notes_``).
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import pandas as pd
import scipy.linalg

from cohorts.errors import InvalidDataError
from cohorts.generators.latent import BinaryLatent, ContinuousLatent
from cohorts.schema import is_integer_valued

__all__ = ["BaselineDesign", "ContinuousModel", "BinaryModel", "category_levels", "design_matvec", "is_integer_valued",
           "level_mask"]


def category_levels(s: pd.Series) -> list:
    """Observed levels of a categorical column: a pandas category order, else sorted, else first appearance."""
    observed = pd.unique(s.dropna())
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [c for c in s.dtype.categories if c in set(observed)]
    try:
        return sorted(observed.tolist())
    except TypeError:
        return list(observed)


def level_mask(values: np.ndarray, level) -> np.ndarray:
    """``values == level`` elementwise, False where a value is missing (any dtype, object arrays included)."""
    out = np.zeros(len(values), dtype=bool)
    present = ~pd.isna(values)
    out[present] = values[present] == level
    return out


#: codes of Arrow-backed columns built from codes (:func:`_remember_codes`), by the id of their Arrow data
_CODES: dict[int, tuple] = {}


def _arrow_data(s: pd.Series):
    """The (immutable) pyarrow array behind an Arrow-backed string column, else ``None``."""
    if not isinstance(s.dtype, pd.StringDtype) or getattr(s.dtype, "storage", None) != "pyarrow":
        return None
    to_arrow = getattr(s.array, "__arrow_array__", None)
    return to_arrow() if to_arrow is not None else None


def _remember_codes(s: pd.Series, codes: np.ndarray, slots: np.ndarray) -> None:
    """Record that column ``s`` holds ``slots[codes]`` (``slots``: its few distinct values, object array), so that
    :func:`_level_codes` reads the codes instead of factorizing the strings again. Kept while the column's Arrow
    data lives (a weak reference; Arrow data never changes in place, and a changed column gets new data)."""
    data = _arrow_data(s)
    if data is None:
        return
    try:
        ref = weakref.ref(data)
        weakref.finalize(data, _CODES.pop, id(data), None)
    except TypeError:
        return
    _CODES[id(data)] = (ref, codes, slots)


def _level_codes(s: pd.Series, levels) -> np.ndarray:
    """Per value: the position ``k`` of the level it equals (``level_mask(values, levels[k])``), ``-1`` where
    missing, ``len(levels)`` where it equals none. The column is factorized once (hash table; Arrow strings
    natively; or its codes read back from :func:`_remember_codes`) and ``level_mask`` is applied to its few
    distinct values only; an object column whose distinct values are not all strings is compared value by
    value as before (mixed types: ``1 == 1.0 == True``)."""
    s = pd.Series(s)
    data = _arrow_data(s)
    known = _CODES.get(id(data)) if data is not None else None
    if known is not None and known[0]() is data:
        _, codes, distinct = known
        return codes_from_slots(codes, distinct, levels)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    distinct = np.asarray(uniques.to_numpy(dtype=object), dtype=object)
    if s.dtype == object and not all(type(u) is str for u in distinct):
        values = s.to_numpy(dtype=object)
        out = np.full(len(values), len(levels), dtype=np.intp)
        for k in range(len(levels) - 1, -1, -1):
            out[level_mask(values, levels[k])] = k
        out[pd.isna(values)] = -1
        return out
    lookup = np.full(len(distinct) + 1, len(levels), dtype=np.intp)
    lookup[-1] = -1                      # factorize's missing code -1 reads the last entry
    for k in range(len(levels) - 1, -1, -1):
        lookup[:-1][level_mask(distinct, levels[k])] = k
    return lookup[codes]


def codes_from_slots(codes: np.ndarray, distinct: np.ndarray, levels) -> np.ndarray:
    """:func:`_level_codes` of the column ``distinct[codes]`` (``distinct``: its few distinct values, an object
    array), from the codes: ``level_mask`` is applied to the distinct values only."""
    lookup = np.full(len(distinct), len(levels), dtype=np.intp)
    for k in range(len(levels) - 1, -1, -1):
        lookup[level_mask(distinct, levels[k])] = k
    lookup[pd.isna(distinct)] = -1
    return lookup[codes]


def _numeric_column(frame, c: str) -> np.ndarray:
    """Column ``c`` as floats (NaN where missing or not a number), from a frame or a
    :class:`~cohorts.generators.sampled_columns.SampledColumns`."""
    if hasattr(frame, "numeric_values"):
        return frame.numeric_values(c)
    return pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)


def _column_codes(frame, c: str, levels) -> np.ndarray:
    """:func:`_level_codes` of column ``c`` of a frame or a :class:`~cohorts.generators.sampled_columns.SampledColumns`
    (read from its level codes)."""
    if hasattr(frame, "level_codes"):
        return frame.level_codes(c, levels)
    return _level_codes(frame[c], levels)


def design_matvec(X: np.ndarray, coef) -> np.ndarray:
    """``X @ coef`` summed column by column in a fixed order, without BLAS.

    OpenBLAS's matrix-vector product runs on several threads for a tall matrix; its result then depends on its
    thread count (100,003 x 7: other bits with 1 thread than with 2), and calls from several simulation threads at
    once wait for each other (drawing patients in 2 threads took longer than in 1). The linear predictors of the
    outcome models use this instead: the same bits whatever the thread counts, and each thread runs on its own."""
    X = np.asarray(X, dtype=float)
    coef = np.asarray(coef, dtype=float)
    out = np.zeros(X.shape[0])
    tmp = np.empty(X.shape[0])
    for j in range(X.shape[1]):
        np.multiply(X[:, j], coef[j], out=tmp)
        out += tmp
    return out


def _blas_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for a tall matrix ``A`` and a small matrix ``B``, in row blocks small enough that OpenBLAS runs
    each call on one thread (its threshold: ``m n k <= 262144``). A matrix product's kernel sums each row's
    ``k`` terms in the same order whatever the row blocking, so the values are the same bits (checked in
    tests/cohorts/test_draw_speed_equivalence.py); the blocks only avoid the thread hand-offs that stall on a
    busy shared machine (one ``(380000, 8) @ (8, 8)`` call took 0.14 s there, the blocks 0.008 s). Not for a
    matrix-vector product: OpenBLAS's ``gemv`` result does depend on the blocking."""
    A, B = np.asarray(A), np.asarray(B)
    if A.ndim != 2 or B.ndim != 2:
        return A @ B
    rows = max(64, 262144 // max(1, A.shape[1] * B.shape[1]))
    if A.shape[0] <= rows:
        return A @ B
    out = np.empty((A.shape[0], B.shape[1]), dtype=np.result_type(A, B))
    for i in range(0, A.shape[0], rows):
        np.matmul(A[i:i + rows], B, out=out[i:i + rows])
    return out


class BaselineDesign:
    """Covariate matrix (no intercept column) from a baseline frame; fitted on the training patients."""

    def fit(self, frame: pd.DataFrame, numeric, categorical) -> "BaselineDesign":
        self.numeric_, self.categorical_ = list(numeric), list(categorical)
        self.center_, self.median_, self.sd_ = {}, {}, {}
        for c in self.numeric_:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            med = float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0
            v = np.where(np.isfinite(v), v, med)
            self.median_[c], self.center_[c], self.sd_[c] = med, float(v.mean()), float(v.std())
        self.levels_ = {}
        for c in self.categorical_:
            s = frame[c]
            counts = s.value_counts(dropna=True)
            ref = counts.index[0] if len(counts) else None
            levels = [lv for lv in category_levels(s) if lv != ref]
            self.levels_[c] = (ref, levels, bool(s.isna().any()))
        self.names_ = self._all_names()
        X = self._build(frame)
        keep = self._independent(X)
        self.keep_ = keep
        self.names_ = [self.names_[j] for j in keep]
        return self

    def _all_names(self) -> list[str]:
        names = list(self.numeric_)
        for c in self.categorical_:
            ref, levels, has_na = self.levels_[c]
            names += [f"{c}={lv}" for lv in levels] + ([f"{c}=<NA>"] if has_na else [])
        return names

    def _build(self, frame: pd.DataFrame, keep=None) -> np.ndarray:
        """The design columns at positions ``keep`` (all when ``None``), written into one Fortran-ordered array
        (the layout ``column_stack(...)[:, keep]`` has, so ``X @ coef`` runs the same BLAS path). Each
        categorical column is encoded once as integer level codes (:func:`_level_codes`); a one-hot column is
        ``codes == k``."""
        wanted = list(range(len(self._all_names()))) if keep is None else list(keep)
        X = np.empty((len(frame), len(wanted)), order="F")
        where = {j: i for i, j in enumerate(wanted)}
        j = 0
        for c in self.numeric_:
            if j in where:
                v = _numeric_column(frame, c)
                finite = np.isfinite(v)
                if not finite.all():
                    v = np.where(finite, v, self.median_[c])
                sd = self.sd_[c] if self.sd_[c] > 0 else 1.0
                col = X[:, where[j]]                     # contiguous (Fortran order)
                np.subtract(v, self.center_[c], out=col)
                col /= sd
            j += 1
        for c in self.categorical_:
            _, levels, has_na = self.levels_[c]
            block = range(j, j + len(levels) + int(has_na))
            if any(k in where for k in block):
                codes = _column_codes(frame, c, levels)
                for k, jj in enumerate(block):
                    if jj in where:
                        X[:, where[jj]] = codes == (k if k < len(levels) else -1)
            j = block.stop
        return X

    @staticmethod
    def _independent(X: np.ndarray) -> list[int]:
        """Columns kept: non-constant and linearly independent of the intercept and earlier columns."""
        if X.shape[1] == 0:
            return []
        A = np.column_stack([np.ones(len(X)), X])
        _, R, piv = scipy.linalg.qr(A, mode="economic", pivoting=True)
        d = np.abs(np.diag(R))
        rank = int(np.sum(d > d.max() * 1e-9)) if d.size else 0
        chosen = set(piv[:rank].tolist())
        return [j - 1 for j in sorted(chosen) if j > 0 and X[:, j - 1].std() > 0]

    def transform(self, frame) -> np.ndarray:
        """The design matrix of a frame or of :class:`~cohorts.generators.sampled_columns.SampledColumns`."""
        return self._build(frame, self.keep_)

    @property
    def n_features(self) -> int:
        return len(self.keep_)


def _value_array(values, what: str) -> np.ndarray:
    y = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise InvalidDataError(f"outcome column {what!r} has missing or non-numeric values; drop those rows first")
    return y


class ContinuousModel:
    """Linear regression on the baseline design with normal residuals; latent = mean + N(0, sigma^2) draw."""

    def fit(self, baseline: pd.DataFrame, y, *, numeric, categorical, lower=None, upper=None,
            name: str = "value") -> "ContinuousModel":
        y = _value_array(y, name)
        self.design_ = BaselineDesign().fit(baseline, numeric, categorical)
        X = np.column_stack([np.ones(len(y)), self.design_.transform(baseline)])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ coef
        dof = max(len(y) - X.shape[1], 1)
        self.coef_ = coef
        self.sigma_ = float(np.sqrt(resid @ resid / dof))
        self.observed_range_ = (float(y.min()), float(y.max()))
        self.lower_ = float(lower) if lower is not None else self.observed_range_[0]
        self.upper_ = float(upper) if upper is not None else self.observed_range_[1]
        self.integer_ = is_integer_valued(y)
        self.fit_notes_ = []
        return self

    def mean(self, baseline: pd.DataFrame) -> np.ndarray:
        return self.coef_[0] + design_matvec(self.design_.transform(baseline), self.coef_[1:])

    def latent(self, baseline: pd.DataFrame, *, rng: np.random.Generator) -> ContinuousLatent:
        mean = self.mean(baseline)
        return ContinuousLatent(mean=mean, resid=rng.normal(0.0, self.sigma_, size=len(mean)),
                                lower=self.lower_, upper=self.upper_)


class BinaryModel:
    """Logistic regression on the baseline design; latent = linear predictor + one U(0,1) draw per patient."""

    def fit(self, baseline: pd.DataFrame, values, *, numeric, categorical, name: str = "value") -> "BinaryModel":
        s = pd.Series(values).reset_index(drop=True)
        if s.isna().any():
            raise InvalidDataError(f"binary outcome {name!r} has missing values; drop those rows first")
        levels = category_levels(s)
        if len(levels) > 2:
            raise InvalidDataError(f"binary outcome {name!r} has {len(levels)} distinct values {levels[:5]}; "
                                   "it needs two (e.g. 0/1)")
        if len(levels) == 1:
            levels = [0, 1] if levels[0] in (0, 1) else [None, levels[0]]
        self.levels_ = levels  # levels_[1] is the response coded 1
        y = level_mask(s.to_numpy(dtype=object), levels[1]).astype(float)
        self.design_ = BaselineDesign().fit(baseline, numeric, categorical)
        X = np.column_stack([np.ones(len(y)), self.design_.transform(baseline)])
        self.fit_notes_ = []
        self.coef_ = self._logit(X, y)
        return self

    def _logit(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = np.clip(y.mean(), 0.5 / len(y), 1 - 0.5 / len(y))
        if y.min() == y.max():
            self.fit_notes_.append("all responses equal: intercept-only model at a continuity-corrected rate")
            return np.r_[np.log(p / (1 - p)), np.zeros(X.shape[1] - 1)]
        import statsmodels.api as sm
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                res = sm.GLM(y, X, family=sm.families.Binomial()).fit()
            coef = np.asarray(res.params, dtype=float)
            if np.all(np.isfinite(coef)) and np.abs(coef).max() < 30:
                return coef
        except Exception:  # noqa: BLE001 - separation or non-convergence: fall back below
            pass
        from sklearn.linear_model import LogisticRegression
        self.fit_notes_.append("logistic MLE did not converge (separation?): sklearn fit with C=1e4 instead")
        lr = LogisticRegression(C=1e4, max_iter=2000).fit(X[:, 1:], y) if X.shape[1] > 1 else None
        if lr is None:
            return np.array([np.log(p / (1 - p))])
        return np.r_[lr.intercept_, lr.coef_.ravel()]

    def linear_predictor(self, baseline: pd.DataFrame) -> np.ndarray:
        return self.coef_[0] + design_matvec(self.design_.transform(baseline), self.coef_[1:])

    def latent(self, baseline: pd.DataFrame, *, rng: np.random.Generator) -> BinaryLatent:
        lp = self.linear_predictor(baseline)
        return BinaryLatent(lp=lp, uniform=rng.random(len(lp)))
