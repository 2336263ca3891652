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

import numpy as np
import pandas as pd
import scipy.linalg

from cohorts.errors import InvalidDataError
from cohorts.generators.latent import BinaryLatent, ContinuousLatent
from cohorts.schema import is_integer_valued

__all__ = ["BaselineDesign", "ContinuousModel", "BinaryModel", "category_levels", "is_integer_valued", "level_mask"]


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

    def _build(self, frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.numeric_:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            v = np.where(np.isfinite(v), v, self.median_[c])
            sd = self.sd_[c] if self.sd_[c] > 0 else 1.0
            cols.append((v - self.center_[c]) / sd)
        for c in self.categorical_:
            values = frame[c].to_numpy(dtype=object)
            _, levels, has_na = self.levels_[c]
            cols += [level_mask(values, lv).astype(float) for lv in levels]
            if has_na:
                cols.append(pd.isna(values).astype(float))
        return np.column_stack(cols) if cols else np.zeros((len(frame), 0))

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

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self._build(frame)[:, self.keep_]

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
        return self.coef_[0] + self.design_.transform(baseline) @ self.coef_[1:]

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
        return self.coef_[0] + self.design_.transform(baseline) @ self.coef_[1:]

    def latent(self, baseline: pd.DataFrame, *, rng: np.random.Generator) -> BinaryLatent:
        lp = self.linear_predictor(baseline)
        return BinaryLatent(lp=lp, uniform=rng.random(len(lp)))
