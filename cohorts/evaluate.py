"""Generator evaluation report: fidelity, utility, privacy.

::

    train, holdout = split_train_holdout(cohort.data, cohort.schema, rng=np.random.default_rng(1))
    generator = get_generator("default").fit(train, cohort.schema, rng=np.random.default_rng(2))
    report = evaluate_generator(generator, train, holdout, cohort.schema, rng=np.random.default_rng(3))
    report.summary()        # one row per metric: name, value, better, target, meets_target
    report.to_dict()        # JSON-safe

``evaluate_generator`` draws ``n_synthetic`` synthetic patients (default: as many as in ``train``) and computes,
on one-row-per-patient features (:func:`cohorts.evaluate_fidelity.patient_features`):

* **fidelity** (:class:`FidelityResult`) -- synthetic vs TRAIN (what the generator learned) for the
  marginals, associations, Kaplan-Meier, per-visit and slope comparisons; synthetic vs HOLDOUT (unseen real
  patients, so that memorising does not help) for the detection AUC;
* **utility** (:class:`UtilityResult`) -- train-on-synthetic-test-on-real (TSTR) vs train-on-real-test-on-real
  (TRTR), both tested on the holdout;
* **privacy** (:class:`~cohorts.evaluate_privacy.PrivacyResult`) -- exact copies, distance to closest record,
  membership inference.

Utility models (baseline covariates: numeric standardised with missing values set to the training median;
categorical one-hot with missing as a level, most frequent training level as reference; constant columns
dropped):

* tte: Cox model (statsmodels ``PHReg``, Breslow ties); score = Harrell's C-index of the linear predictor on
  the holdout (:func:`concordance_index`);
* continuous: least-squares linear regression; score = holdout R^2 = 1 - SS_res / SS_tot (holdout mean);
* binary: logistic regression (scikit-learn, L2 penalty C = 1 on the standardised design); score = holdout ROC
  AUC of the predicted probability (positive level: :func:`~cohorts.evaluate_fidelity.positive_level`);
* longitudinal: linear regression of each patient's last observed value on the baseline covariates plus the
  time of that visit; score = holdout R^2.

``ratio`` = TSTR score / TRTR score (NaN when the TRTR score is not positive).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError
from cohorts.evaluate_fidelity import (DETECTION_MODEL, KMComparison, OutcomeComparison, TrajectoryComparison,
                                       association_difference, detection_auc, km_comparison, marginal_distances,
                                       outcome_comparison, patient_features, positive_level, trajectory_comparison)
from cohorts.evaluate_privacy import PrivacyResult, privacy_metrics, roc_auc
from cohorts.schema import CohortSchema

__all__ = ["evaluate_generator", "split_train_holdout", "EvaluationReport", "FidelityResult", "UtilityResult",
           "PrivacyResult", "concordance_index", "TARGETS"]

#: conventional targets as (better, target). KS-type statistics (marginal KS, Kaplan-Meier sup, slope KS,
#: continuous outcome KS) use instead the larger of 0.1 and the two-sample KS 5 % critical value for the sample
#: sizes (:func:`_ks_target`: a difference sampling noise alone reaches is not held against the generator);
#: the exact-copy rate's target is the holdout rows' own exact-copy rate.
TARGETS = {"marginal": ("lower", 0.1), "association": ("lower", 0.1), "detection_auc": ("lower", 0.6),
           "km_mean_abs": ("lower", 0.05), "smd": ("lower", 0.1), "log_sd": ("lower", 0.1),
           "proportion": ("lower", 0.05), "utility_ratio": ("higher", 0.9), "membership_auc": ("lower", 0.55),
           "share_p5": ("lower", 0.1)}


def _ks_target(n: int, m: int) -> float:
    """max(0.1, 1.358 sqrt((n + m) / (n m))): 0.1, or the 5 % two-sample KS noise level when larger."""
    return max(0.1, math.sqrt(-math.log(0.025) / 2) * math.sqrt((n + m) / (n * m))) if n and m else 0.1


# ---------------------------------------------------------------------------------------------- split
def split_train_holdout(data: pd.DataFrame, schema: CohortSchema, *, holdout_fraction: float = 0.3,
                        rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random split by patient: round(holdout_fraction * n_patients) patients (at least 1, at most n - 1) go to
    the holdout; every row of a patient stays on one side; row order is kept; the index is reset."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))")
    if not 0 < holdout_fraction < 1:
        raise InvalidDataError(f"holdout_fraction is {holdout_fraction!r}; give a number between 0 and 1, e.g. 0.3")
    if schema.id not in data.columns:
        raise InvalidDataError(f"the id column {schema.id!r} is not in the data; the data has {list(data.columns)}")
    ids = pd.unique(data[schema.id].dropna())
    if len(ids) < 2:
        raise InvalidDataError(f"the data has {len(ids)} patient(s); a train/holdout split needs at least 2")
    n_hold = min(max(int(round(holdout_fraction * len(ids))), 1), len(ids) - 1)
    held = ids[rng.permutation(len(ids))[:n_hold]]
    is_held = data[schema.id].isin(held).to_numpy()
    return (data[~is_held & data[schema.id].notna().to_numpy()].reset_index(drop=True),
            data[is_held].reset_index(drop=True))


# ---------------------------------------------------------------------------------------------- utility
def concordance_index(time, event, risk, *, chunk: int = 2048) -> float:
    """Harrell's C-index: share of comparable pairs ordered correctly by ``risk`` (higher risk = earlier event).

    A pair (i, j) is comparable when t_i < t_j and patient i had the event, or t_i == t_j with i an event and j
    censored. It is concordant when risk_i > risk_j and counts 1/2 when risk_i == risk_j.
    C = (concordant + 0.5 * tied risk) / comparable; NaN without comparable pairs. Vectorised over blocks of
    ``chunk`` events (memory chunk x n).
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float) > 0
    r = np.asarray(risk, dtype=float)
    ok = ~(np.isnan(t) | np.isnan(r))
    t, e, r = t[ok], e[ok], r[ok]
    events = np.flatnonzero(e)
    num = den = 0.0
    for s in range(0, events.size, chunk):
        i = events[s:s + chunk]
        ti, ri = t[i][:, None], r[i][:, None]
        comparable = (ti < t[None, :]) | ((ti == t[None, :]) & ~e[None, :])
        num += np.sum(comparable & (ri > r[None, :])) + 0.5 * np.sum(comparable & (ri == r[None, :]))
        den += np.sum(comparable)
    return float(num / den) if den else float("nan")


class _Design:
    """Baseline design matrix learned on one frame (see the module docstring)."""

    def __init__(self, frame: pd.DataFrame, numeric: list[str], categorical: list[str]):
        self.numeric, self.categorical = numeric, categorical
        x = frame[numeric].to_numpy(float)
        self.median = np.nan_to_num(np.nanmedian(x, axis=0), nan=0.0) if len(numeric) else np.zeros(0)
        filled = np.where(np.isnan(x), self.median, x)
        self.mean, self.sd = filled.mean(axis=0), filled.std(axis=0)
        self.levels = {}
        for c in categorical:
            counts = frame[c].astype(str).value_counts()
            self.levels[c] = sorted(counts.index[counts.index != counts.idxmax()]) if len(counts) else []
        self.keep = self._raw(frame).std(axis=0) > 0

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[self.numeric].to_numpy(float)
        x = (np.where(np.isnan(x), self.median, x) - self.mean) / np.where(self.sd > 0, self.sd, 1.0)
        dummies = [(frame[c].astype(str).to_numpy() == lev).astype(float)[:, None]
                   for c in self.categorical for lev in self.levels[c]]
        return np.hstack([x] + dummies) if dummies else x

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        return self._raw(frame)[:, self.keep]


def _ols_r2(x_fit, y_fit, x_test, y_test) -> float:
    a = np.column_stack([np.ones(len(x_fit)), x_fit])
    beta = np.linalg.lstsq(a, y_fit, rcond=None)[0]
    pred = np.column_stack([np.ones(len(x_test)), x_test]) @ beta
    sst = float(np.sum((y_test - y_test.mean()) ** 2))
    return 1 - float(np.sum((y_test - pred) ** 2)) / sst if sst > 0 else float("nan")


def _score(fit: pd.DataFrame, test: pd.DataFrame, schema: CohortSchema) -> float:
    """Utility score of a model trained on ``fit`` and tested on ``test`` (patient-level frames)."""
    o = schema.outcome
    covars = list(schema.baseline)
    numeric = list(schema.numeric)
    if o.type == "longitudinal":
        fit, test = fit[fit["n_visits"] > 0], test[test["n_visits"] > 0]
        covars, numeric = covars + ["_last_visit"], numeric + ["_last_visit"]
    target = {"tte": o.time, "continuous": o.value, "binary": o.value}.get(o.type, f"last_{o.value}")
    if o.type != "binary":
        fit, test = fit[fit[target].notna()], test[test[target].notna()]
    if len(fit) < 3 or len(test) < 3:
        return float("nan")
    design = _Design(fit, numeric, [c for c in covars if c not in numeric])
    x_fit, x_test = design(fit), design(test)
    if o.type == "tte":
        from statsmodels.duration.hazard_regression import PHReg
        ev = fit[o.event].to_numpy(float)
        if x_fit.shape[1] == 0 or ev.sum() == 0:
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = PHReg(fit[o.time].to_numpy(float), x_fit, status=ev, ties="breslow").fit().params
        if not np.all(np.isfinite(params)):
            return float("nan")
        return concordance_index(test[o.time], test[o.event], x_test @ params)
    if o.type == "binary":
        from sklearn.linear_model import LogisticRegression
        pos = positive_level(fit[o.value])
        y_fit, y_test = (fit[o.value] == pos).to_numpy(), (test[o.value] == pos).to_numpy()
        if y_fit.all() or not y_fit.any():
            return float("nan")
        if x_fit.shape[1] == 0:
            return 0.5
        model = LogisticRegression(C=1.0, max_iter=1000).fit(x_fit, y_fit)
        return roc_auc(y_test, model.decision_function(x_test))
    return _ols_r2(x_fit, fit[target].to_numpy(float), x_test, test[target].to_numpy(float))


@dataclass(frozen=True)
class UtilityResult:
    """TSTR vs TRTR on the holdout (see the module docstring for the models and scores)."""

    metric: str
    real: float
    synthetic: float

    @property
    def ratio(self) -> float:
        """TSTR / TRTR score (NaN when the TRTR score is not positive or either is NaN)."""
        return self.synthetic / self.real if self.real > 0 and np.isfinite(self.synthetic) else float("nan")


_UTILITY_METRIC = {"tte": "C-index (Cox linear predictor)", "continuous": "R^2 (linear regression)",
                   "binary": "ROC AUC (logistic regression)",
                   "longitudinal": "R^2 of the last observed value (linear regression)"}


def _with_last_visit(features: pd.DataFrame, data: pd.DataFrame, schema: CohortSchema) -> pd.DataFrame:
    o = schema.outcome
    d = pd.DataFrame({"id": data[schema.id].to_numpy(),
                      "t": pd.to_numeric(data[o.visit], errors="coerce").to_numpy(float),
                      "y": pd.to_numeric(data[o.value], errors="coerce").to_numpy(float)}).dropna()
    out = features.copy()
    out["_last_visit"] = d.groupby("id")["t"].max().reindex(out.index).to_numpy(float)
    return out


# ---------------------------------------------------------------------------------------------- fidelity
@dataclass(frozen=True)
class FidelityResult:
    """Fidelity metrics (definitions in :mod:`cohorts.evaluate_fidelity`).

    ``marginals``: per baseline column KS / TV table; ``association_*``: matrices on the patient-level
    features of TRAIN and synthetic rows, and ``association_mean_abs_difference``; ``detection_auc`` (mean of
    ``detection_fold_aucs``) separating HOLDOUT from synthetic rows with ``detection_model``; outcome-specific:
    ``km`` (tte), ``trajectory`` (longitudinal) or ``outcome`` (continuous/binary), the others ``None``.
    """

    marginals: pd.DataFrame
    association_real: pd.DataFrame
    association_synthetic: pd.DataFrame
    association_difference: pd.DataFrame
    association_mean_abs_difference: float
    detection_auc: float
    detection_fold_aucs: np.ndarray
    detection_model: str = DETECTION_MODEL
    km: KMComparison | None = None
    trajectory: TrajectoryComparison | None = None
    outcome: OutcomeComparison | None = None


# ---------------------------------------------------------------------------------------------- report
def _json(x):
    if isinstance(x, pd.DataFrame):
        if isinstance(x.index, pd.RangeIndex):   # a table: one record per row
            return [{str(k): _json(v) for k, v in row.items()} for row in x.to_dict("records")]
        return {"index": _json(list(x.index)), "columns": _json(list(x.columns)),   # a labelled matrix
                "data": _json(x.to_numpy())}
    if isinstance(x, np.ndarray):
        return [_json(v) for v in x.tolist()]
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json(v) for v in x]
    if hasattr(x, "__dataclass_fields__"):
        out = {f.name: _json(getattr(x, f.name)) for f in fields(x)}
        if isinstance(x, UtilityResult):
            out["ratio"] = _json(x.ratio)
        return out
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    if x is pd.NA:
        return None
    return str(x)


@dataclass(frozen=True)
class EvaluationReport:
    """Raw numbers of one generator evaluation; :meth:`summary` and :meth:`to_dict` are views of them.

    ``n_*`` count patients; ``notes`` say what could not be computed (e.g. a utility model that failed).
    """

    generator: str
    outcome_type: str
    n_train: int
    n_holdout: int
    n_synthetic: int
    fidelity: FidelityResult
    utility: UtilityResult
    privacy: PrivacyResult
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> pd.DataFrame:
        """One row per metric: ``section``, ``name``, ``value``, ``better`` (``lower``/``higher``), ``target``
        (NaN when none) and ``meets_target`` (None when no target or no value)."""
        f, u, p = self.fidelity, self.utility, self.privacy
        rows = [("fidelity", f"marginal {r.metric}: {r.column}", r.statistic,
                 ("lower", max(0.1, r.noise_5pct)) if r.metric == "KS" else "marginal")
                for r in f.marginals.itertuples()]
        if len(f.marginals):
            rows.append(("fidelity", "marginal distance, mean over columns", f.marginals["statistic"].mean(),
                         "marginal"))
            rows.append(("fidelity", "marginal distance, max over columns", f.marginals["statistic"].max(),
                         "marginal"))
        rows += [("fidelity", "association matrix mean |difference|", f.association_mean_abs_difference,
                  "association"),
                 ("fidelity", "detection AUC (holdout vs synthetic)", f.detection_auc, "detection_auc")]
        if f.km is not None:
            rows += [("fidelity", "Kaplan-Meier sup |difference|", f.km.sup_distance,
                      ("lower", _ks_target(self.n_train, self.n_synthetic))),
                     ("fidelity", "Kaplan-Meier mean |difference| over follow-up", f.km.mean_abs_difference,
                      "km_mean_abs"),
                     ("fidelity", "Kaplan-Meier integrated |difference| (time units)",
                      f.km.integrated_abs_difference, None)]
        if f.trajectory is not None:
            tr = f.trajectory
            rows += [("fidelity", "per-visit mean |SMD|", tr.mean_abs_smd, "smd"),
                     ("fidelity", "per-visit mean |log SD ratio|", tr.mean_abs_log_sd_ratio, "log_sd"),
                     ("fidelity", "individual slope KS", tr.slope_ks,
                      ("lower", _ks_target(tr.slopes_real.size, tr.slopes_synthetic.size))),
                     ("fidelity", "individual slope mean, real", tr.slope_mean_real, None),
                     ("fidelity", "individual slope mean, synthetic", tr.slope_mean_synthetic, None)]
        if f.outcome is not None:
            ks = f.outcome.metric == "KS"
            rows.append(("fidelity", f"outcome {f.outcome.metric}" + ("" if ks else " (absolute)"),
                         abs(f.outcome.statistic), ("lower", _ks_target(self.n_train, self.n_synthetic)) if ks
                         else "proportion"))
        rows += [("utility", f"TRTR {u.metric}", u.real, None), ("utility", f"TSTR {u.metric}", u.synthetic, None),
                 ("utility", "TSTR / TRTR", u.ratio, "utility_ratio"),
                 ("privacy", "exact-copy rate", p.exact_copy_rate, ("lower", p.exact_copy_rate_holdout)),
                 ("privacy", "exact-copy rate of holdout rows (reference)", p.exact_copy_rate_holdout, None),
                 ("privacy", "DCR median, synthetic", p.dcr_synthetic_median, ("higher", np.nan)),
                 ("privacy", "DCR median, holdout (reference)", p.dcr_holdout_median, None),
                 ("privacy", "DCR 5th percentile, synthetic", p.dcr_synthetic_p5, ("higher", np.nan)),
                 ("privacy", "DCR 5th percentile, holdout (reference)", p.dcr_holdout_p5, None),
                 ("privacy", "share of synthetic DCR < holdout 5th percentile", p.share_closer_than_holdout_p5,
                  "share_p5"),
                 ("privacy", "membership-inference AUC", p.membership_auc, "membership_auc")]
        out = []
        for section, name, value, key in rows:
            better, target = (TARGETS[key] if isinstance(key, str) else key) if key else (None, float("nan"))
            if better is None:
                better = "higher" if name.startswith(("TRTR", "TSTR")) else None
            value = float(value) if value is not None else float("nan")
            meets = None
            if np.isfinite(value) and np.isfinite(target):
                meets = bool(value <= target + 1e-12) if better == "lower" else bool(value >= target - 1e-12)
            out.append((section, name, value, better, float(target), meets))
        return pd.DataFrame(out, columns=["section", "name", "value", "better", "target", "meets_target"])

    def to_dict(self) -> dict:
        """Every number of the report as JSON-safe Python values (NaN -> None, arrays -> lists)."""
        out = {f.name: _json(getattr(self, f.name)) for f in fields(self)}
        out["summary"] = _json(self.summary())
        return out


def evaluate_generator(generator, train: pd.DataFrame, holdout: pd.DataFrame, schema: CohortSchema, *,
                       rng: np.random.Generator, n_synthetic: int | None = None) -> EvaluationReport:
    """Fidelity, utility and privacy of a generator already fitted on ``train`` (see the module docstring).

    Draws ``generator.sample(n_synthetic, rng=rng)`` (default: the number of training patients); the detection
    classifier's folds and seed come from the same ``rng``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))")
    for name, frame in (("train", train), ("holdout", holdout)):
        missing = [c for c in schema.columns if c not in frame.columns]
        if missing:
            raise InvalidDataError(f"{name} lacks column(s) {missing} named by the schema")
        if frame[schema.id].nunique() < 2:
            raise InvalidDataError(f"{name} has fewer than 2 patients; evaluation needs at least 2 on each side")
    n = int(train[schema.id].nunique()) if n_synthetic is None else int(n_synthetic)
    if n < 2:
        raise InvalidDataError(f"n_synthetic is {n}; draw at least 2 synthetic patients")
    synthetic = generator.sample(n, rng=rng)
    missing = [c for c in schema.columns if c not in synthetic.columns]
    if missing:
        raise InvalidDataError(f"the generator's sample lacks column(s) {missing} named by the schema")
    data = {"train": train, "holdout": holdout, "synthetic": synthetic}
    if schema.is_longitudinal:
        v = schema.outcome.value
        data = {k: d[pd.to_numeric(d[v], errors="coerce").notna()] for k, d in data.items()}
    feats = {k: patient_features(d, schema) for k, d in data.items()}
    ftr, fho, fsy = feats["train"], feats["holdout"], feats["synthetic"]

    a_r, a_s, a_d, a_mean = association_difference(ftr, fsy)
    auc, folds = detection_auc(fho, fsy, rng=rng)
    o = schema.outcome
    extra = {}
    if o.type == "tte":
        extra["km"] = km_comparison(ftr[o.time], ftr[o.event], fsy[o.time], fsy[o.event])
    elif o.type == "longitudinal":
        extra["trajectory"] = trajectory_comparison(data["train"], data["synthetic"], schema)
    else:
        extra["outcome"] = outcome_comparison(ftr, fsy, schema)
    fidelity = FidelityResult(marginal_distances(ftr, fsy, schema), a_r, a_s, a_d, a_mean, auc, folds, **extra)

    if o.type == "longitudinal":
        ftr, fho, fsy = (_with_last_visit(feats[k], data[k], schema) for k in ("train", "holdout", "synthetic"))
    notes = []
    scores = []
    for label, fit in (("train-on-real", ftr), ("train-on-synthetic", fsy)):
        try:
            scores.append(_score(fit, fho, schema))
        except (np.linalg.LinAlgError, ValueError) as err:   # a degenerate design: report, do not stop
            scores.append(float("nan"))
            notes.append(f"{label} utility model failed: {err}")
    utility = UtilityResult(_UTILITY_METRIC[o.type], *scores)
    privacy = privacy_metrics(feats["train"], feats["holdout"], feats["synthetic"])
    return EvaluationReport(generator=getattr(generator, "name", "") or type(generator).__name__,
                            outcome_type=o.type, n_train=len(ftr), n_holdout=len(fho), n_synthetic=len(fsy),
                            fidelity=fidelity, utility=utility, privacy=privacy, notes=tuple(notes))
