"""PROCOVA: ANCOVA adjusted for a prognostic score learned from historical control data.

Method (Schuler A, Walsh D, Hall D, Walsh J, Fisher C. Increasing the efficiency of randomized trial estimates
via linear adjustment for a prognostic score. Int J Biostat 2022;18(2):329-356, doi:10.1515/ijb-2021-0072;
EMA CHMP qualification opinion for prognostic covariate adjustment (PROCOVA), September 2022):

1. a prognostic model ``m(x)`` is trained on historical control patients only (:func:`fit_prognostic_model`);
2. each trial patient's prognostic score ``s_i = m(x_i)`` is its predicted outcome under control;
3. the treatment effect is the ``treated`` coefficient of the OLS ``y ~ 1 + treated + s (+ other covariates)``
   (:func:`~analysis.estimators.ancova_adjusted.ancova_adjusted_batched`), t-test with ``n - p - 2`` df.

The model is fixed before the trial is analysed, so the score is a baseline covariate and randomization
keeps the type I error (Schuler et al. 2022; the EMA opinion). Reported beside the adjusted result: the
unadjusted comparison (OLS on ``treated`` alone: the pooled-variance t-test) and the variance reduction.

``rho`` (``details["rho_control"]``) is the Pearson correlation of the prognostic score and the outcome
**within the trial's control arm**: the quantity of Schuler et al.'s (2022) prospective sample-size formula
and of the EMA opinion (there estimated on held-out historical controls and assumed equal in both arms). With
a linear score and equal residual variance across arms the ANCOVA variance is about ``(1 - rho^2)`` times the
unadjusted one, so the same power needs about ``(1 - rho^2) N`` patients (``details["n_procova_same_power"]``)
instead of ``N`` (``details["n_unadjusted"]``), a saving of ``rho^2 N``. ``details["rho_pooled"]`` is the
pooled within-arm correlation (score and outcome centred within arm); the realised ratio is exactly
``(se_adj / se_unadj)^2 = (1 - rho_pooled^2) (N-2)/(N-3) (1 + d^2 / (S_ss (1/n0 + 1/n1)))`` (``d``: difference
in mean score between arms, ``S_ss``: within-arm sum of squares of the score), i.e. ``1 - rho_pooled^2`` up to
the O(1/N) cost of the extra coefficient and of chance score imbalance.

Checked against ``statsmodels`` OLS with the score as covariate (params, bse, pvalues to 1e-8), the SE ratio
against ``1 - rho^2`` in simulation, and the type I error by re-randomization.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError

from ._common import arm_indicator, as_replicates, numeric_column, require_columns, to_test_result
from .ancova_adjusted import ancova_adjusted_batched, covariate_design
from .result import BatchResult, TestResult

__all__ = ["procova_batched", "procova_test", "fit_prognostic_model", "prognostic_scores", "MODELS"]

METHOD = "PROCOVA: ANCOVA on treated + prognostic score, t-test n-p-2 df"
MODELS = ("gradient_boosting", "linear")


def _corr(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of ``a`` and ``b`` ``(R, N)`` over the rows where ``w`` is True."""
    with np.errstate(all="ignore"):
        n = w.sum(axis=1)
        a0, b0 = np.where(w, a, 0.0), np.where(w, b, 0.0)
        ac = np.where(w, a0 - (a0.sum(axis=1) / n)[:, None], 0.0)
        bc = np.where(w, b0 - (b0.sum(axis=1) / n)[:, None], 0.0)
        return np.einsum("rn,rn->r", ac, bc) / np.sqrt(np.einsum("rn,rn->r", ac, ac)
                                                       * np.einsum("rn,rn->r", bc, bc))


def procova_batched(outcome: np.ndarray, treated: np.ndarray, score: np.ndarray, alpha: float = 0.05,
                    covariates: np.ndarray | None = None, *,
                    covariate_names: Sequence[str] | None = None) -> BatchResult:
    """PROCOVA on every replicate: ``outcome``, ``treated``, ``score`` ``(R, N)`` (a score shared by every
    replicate may be ``(N,)``), optional extra ``covariates`` ``(R, N, q)``; NaN = not analysable.

    The estimate, CI, p and ``statistic`` are those of the adjusted ANCOVA. ``details``: the ANCOVA details
    (``coef`` ... ``r2``; coefficient order ``const, treated, score, x1..``), ``score_coef``,
    ``unadjusted_estimate`` / ``unadjusted_se`` / ``unadjusted_p`` / ``unadjusted_ci_low`` /
    ``unadjusted_ci_high`` (OLS on treated alone, same analysable patients), ``rho_control`` (score-outcome
    correlation in the control arm), ``rho_pooled`` (pooled within-arm), ``variance_reduction`` =
    ``1 - rho_control^2``, ``se_ratio_squared`` = ``(se / unadjusted_se)^2`` (realised), ``n_unadjusted`` (the
    analysable N), ``n_procova_same_power`` = ``(1 - rho_control^2) n_unadjusted``,
    ``n_unadjusted_same_power`` = ``n_unadjusted / (1 - rho_control^2)`` (what an unadjusted analysis would
    need for the power PROCOVA has with ``n_unadjusted``).
    """
    y = as_replicates(outcome, ndim=2, name="outcome")
    x = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    s = np.broadcast_to(np.asarray(score, dtype=float), y.shape)
    cov = s[..., None]
    names = ["const", "treated", "score"]
    if covariates is not None:
        extra = np.asarray(covariates, dtype=float)
        extra = np.broadcast_to(extra, y.shape + extra.shape[-1:]) if extra.ndim == 2 else extra
        cov = np.concatenate([cov, extra], axis=2)
        names += (list(covariate_names) if covariate_names is not None
                  else [f"x{j + 1}" for j in range(extra.shape[2])])
    ok = np.isfinite(y) & np.isfinite(np.matmul(cov, np.ones(cov.shape[2])))
    y = np.where(ok, y, np.nan)
    adj = ancova_adjusted_batched(y, x, cov, alpha, names=names, method=METHOD)
    raw = ancova_adjusted_batched(y, x, None, alpha)
    rho0 = _corr(s, y, ok & ~x)
    with np.errstate(all="ignore"):
        m = [np.where(w, v, 0.0).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
             for w in (ok & ~x, ok & x) for v in (s, y)]             # arm means of score and outcome
        s_w = s - np.where(x, m[2], m[0])
        y_w = y - np.where(x, m[3], m[1])
        rho_p = _corr(s_w, y_w, ok)
        nan = np.where(np.isnan(adj.estimate), np.nan, 0.0)
        vr = 1.0 - rho0 ** 2 + nan
        n_tot = adj.n_per_arm.sum(axis=1).astype(float)
        details = dict(adj.details)
        details.update({
            "score_coef": adj.details["coef"][:, 2],
            "unadjusted_estimate": raw.estimate, "unadjusted_se": raw.details["se"],
            "unadjusted_p": raw.p_value, "unadjusted_ci_low": raw.ci_low, "unadjusted_ci_high": raw.ci_high,
            "rho_control": rho0 + nan, "rho_pooled": rho_p + nan, "variance_reduction": vr,
            "se_ratio_squared": (adj.details["se"] / raw.details["se"]) ** 2,
            "n_unadjusted": n_tot, "n_procova_same_power": vr * n_tot, "n_unadjusted_same_power": n_tot / vr,
            "rho_definition": "Pearson correlation of score and outcome in the control arm (Schuler et al. 2022)",
        })
    return BatchResult(METHOD, adj.estimate, adj.ci_low, adj.ci_high, adj.p_value, adj.statistic,
                       adj.n_per_arm, details)


def prognostic_scores(prognostic_model, frame: pd.DataFrame) -> np.ndarray:
    """Predicted control outcome of every row of ``frame``: ``prognostic_model.predict(frame)`` for a fitted
    estimator, or ``prognostic_model(frame)`` for a callable; one finite-or-NaN float per row."""
    if hasattr(prognostic_model, "predict"):
        pred = prognostic_model.predict(frame)
    elif callable(prognostic_model):
        pred = prognostic_model(frame)
    else:
        raise InvalidDataError(f"prognostic_model must have .predict(frame) or be a callable frame -> "
                               f"predictions, got {type(prognostic_model).__name__}")
    pred = np.asarray(pred, dtype=float).reshape(-1)
    if pred.shape != (len(frame),):
        raise InvalidDataError(f"prognostic_model returned {pred.size} predictions for {len(frame)} rows; it "
                               "must return one predicted control outcome per patient")
    return pred


def procova_test(data: pd.DataFrame, *, outcome: str, arm: str, treated_value,
                 prognostic_model: Callable | object, features: Sequence[str], alpha: float = 0.05,
                 covariates: Sequence[str] = ()) -> TestResult:
    """PROCOVA of one row per patient: score = ``prognostic_model`` applied to ``data[features]``, then
    ``outcome ~ treated + score (+ covariates)``. Rows with a missing arm, outcome, score or covariate are
    dropped. ``details`` as :func:`procova_batched` (coefficient names ``Intercept, treated, prognostic_score,
    <covariates>``)."""
    require_columns(data, [outcome, arm, *features])
    treated, known = arm_indicator(data, arm, treated_value)
    y = np.where(known, numeric_column(data, outcome), np.nan)
    score = prognostic_scores(prognostic_model, data[list(features)])
    extra, names = covariate_design(data, covariates) if len(covariates) else (None, [])
    res = procova_batched(y[None], treated[None], score[None], alpha,
                          None if extra is None else extra[None], covariate_names=names)
    out = to_test_result(res)
    out.details["coef_names"] = ["Intercept", "treated", "prognostic_score", *names]
    return out


def fit_prognostic_model(historical: pd.DataFrame, *, outcome: str, features: Sequence[str],
                         model: str = "gradient_boosting", rng: np.random.Generator):
    """Train a prognostic model of ``outcome`` on historical (control) patients; returns a fitted
    scikit-learn ``Pipeline`` whose ``.predict(frame)`` takes a DataFrame with the ``features`` columns.

    Non-numeric features are one-hot encoded (unknown levels -> all zeros), missing numeric values are imputed
    by the historical median. ``model``: ``"gradient_boosting"`` (``GradientBoostingRegressor``, 200 trees of
    depth 3, learning rate 0.05, subsample 0.8, seeded from ``rng``) or ``"linear"`` (OLS). Rows with a
    missing outcome are dropped.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    if model not in MODELS:
        raise InvalidDataError(f"model {model!r} is not known; use one of {list(MODELS)}")
    features = list(features)
    require_columns(historical, [outcome, *features])
    y = numeric_column(historical, outcome)
    keep = np.isfinite(y)
    if keep.sum() < 10:
        raise InvalidDataError(f"column {outcome!r}: {int(keep.sum())} historical patients with an outcome; "
                               "a prognostic model needs at least 10")
    frame = historical.loc[keep, features]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    other = [c for c in features if c not in numeric]
    prep = ColumnTransformer([("num", SimpleImputer(strategy="median"), numeric),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), other)])
    if model == "linear":
        reg = LinearRegression()
    else:
        reg = GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8,
                                        random_state=int(rng.integers(2 ** 31 - 1)))
    return Pipeline([("features", prep), ("model", reg)]).fit(frame, y[keep])
