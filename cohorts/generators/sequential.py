"""Sequential generators: a baseline-covariate model, then an explicit outcome model conditional on it.

Every family (``copula``, ``cart``, ``tvae``, ``ctgan``) is a :class:`SequentialGenerator` that differs only in
its *baseline model* (any object with ``fit(frame, numeric, categorical, *, rng) -> self`` and
``sample(n, *, rng) -> DataFrame`` in the training dtypes); the outcome models are shared. ``default`` is the
Gaussian copula.

Sequential synthesis (Akiya et al., JMIR Med Inform 2024; Petrakos, Moodie & Savy, Stat Med 2025): the
baseline table (first row per patient) is learned by :class:`~cohorts.generators.copula.GaussianCopula`; the
outcome, given the baseline covariates, by the model of its type:

* ``tte``: proportional hazards with a Weibull or piecewise-exponential baseline hazard, whichever has the
  lower AIC (:class:`~cohorts.generators.survival.SurvivalModel`); ``sample`` censors with a model of the
  censoring times and at the largest observed time;
* ``longitudinal``: random intercept + slope mixed model with quadratic mean
  (:class:`~cohorts.generators.trajectory.TrajectoryModel`); ``sample`` uses the data's visit schedule, missed
  visits and a discrete-time dropout hazard on the synthetic patient's observed level and slope so far
  (:class:`~cohorts.generators.dropout.VisitProcess`): sicker patients leave earlier, as in the data;
* ``continuous``: linear model with normal residuals; ``binary``: logistic model
  (:mod:`cohorts.generators.regression`).

``draw`` returns the latent outcome pieces so a trial can apply a treatment effect as a counterfactual
transform of the same synthetic patient; ``sample`` realizes the control outcome in the schema's own format.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError
import inspect
from abc import abstractmethod

from cohorts.generators.base import CohortGenerator, register
from cohorts.generators.copula import GaussianCopula
from cohorts.generators.latent import PatientDraw
from cohorts.generators.regression import BinaryModel, ContinuousModel
from cohorts.generators.survival import SurvivalModel
from cohorts.generators.trajectory import TrajectoryModel
from cohorts.schema import CohortSchema

__all__ = ["SequentialGenerator", "CopulaGenerator", "DefaultGenerator", "synthetic_ids"]


def synthetic_ids(n: int) -> pd.Series:
    """``S000001``, ``S000002`` ... as a string series."""
    return pd.Series([f"S{i:06d}" for i in range(1, n + 1)], dtype="str")


def _cast(values: np.ndarray, dtype) -> pd.Series:
    """Values in the training column's dtype (whole numbers for an integer dtype)."""
    if pd.api.types.is_integer_dtype(dtype):
        values = np.rint(np.asarray(values, dtype=float))
    return pd.Series(values).astype(dtype)


class SequentialGenerator(CohortGenerator):
    """Baseline covariates from :meth:`_baseline_model`, then the outcome model of the schema's outcome type.

    Subclasses set ``name``/``description``, store their hyperparameters in ``__init__`` (plus the outcome
    options ``min_visit_fraction`` and ``covariate_by_time``) and build an unfitted baseline model.
    """

    min_visit_fraction: float = 0.05
    covariate_by_time: bool = True
    #: ``"auto"`` (Weibull or piecewise exponential by AIC), ``"weibull"`` or ``"piecewise"``
    survival_baseline_hazard: str = "auto"
    #: dropout in ``sample`` depends on the synthetic patient's trajectory (else only on the visit index)
    informative_dropout: bool = True

    @abstractmethod
    def _baseline_model(self):
        """A new, unfitted baseline model."""

    # ------------------------------------------------------------------ fit
    def _fit(self, data: pd.DataFrame, schema: CohortSchema, *, rng: np.random.Generator, progress=None) -> None:
        missing = [c for c in schema.columns if c not in data.columns]
        if missing:
            raise InvalidDataError(f"column(s) {missing} named by the schema are not in the data; "
                                   f"the data has {list(data.columns)}")
        if len(data) == 0:
            raise InvalidDataError("the data has no rows")
        o = schema.outcome
        first = data.drop_duplicates(subset=schema.id, keep="first").reset_index(drop=True)
        baseline = first[list(schema.baseline)]
        model = self._baseline_model()
        extra = {"progress": progress} if "progress" in inspect.signature(model.fit).parameters else {}
        self.baseline_model_ = model.fit(baseline, schema.numeric, schema.categorical, rng=rng, **extra)
        kw = dict(numeric=schema.numeric, categorical=schema.categorical)
        if o.type == "tte":
            model = SurvivalModel(baseline_hazard=self.survival_baseline_hazard).fit(
                baseline, first[o.time], first[o.event], time_unit=o.unit, **kw)
        elif o.type == "longitudinal":
            model = TrajectoryModel(min_visit_fraction=self.min_visit_fraction,
                                    covariate_by_time=self.covariate_by_time,
                                    informative_dropout=self.informative_dropout).fit(data, schema)
        elif o.type == "continuous":
            model = ContinuousModel().fit(baseline, first[o.value], lower=o.lower, upper=o.upper, name=o.value, **kw)
        else:
            model = BinaryModel().fit(baseline, first[o.value], name=o.value, **kw)
        self.outcome_model_ = model
        self.fit_notes_ = list(getattr(self.baseline_model_, "fit_notes_", [])) + list(model.fit_notes_)
        self.output_dtypes_ = {c: data[c].dtype for c in o.columns}

    # ------------------------------------------------------------------ synthetic patients
    def _draw(self, n: int, *, rng: np.random.Generator) -> PatientDraw:
        model = self.baseline_model_
        # the copula's columns reach the outcome model's design matrix without becoming a frame (same numbers)
        baseline = model.sample_columns(n, rng=rng) if hasattr(model, "sample_columns") else model.sample(n, rng=rng)
        return PatientDraw(baseline, self.outcome_model_.latent(baseline, rng=rng))

    def _realize(self, draw: PatientDraw, *, rng: np.random.Generator) -> pd.DataFrame:
        n = len(draw)
        o, model, dt = self.schema_.outcome, self.outcome_model_, self.output_dtypes_
        ids = synthetic_ids(n)
        if o.type == "longitudinal":
            attended, y = model.observe(draw.outcome, rng=rng)  # the latent trajectory drives dropout
            schedule = model.visit_times_
            who = np.repeat(np.arange(n), attended.sum(axis=1))
            visit_idx = np.nonzero(attended)[1]
            frame = pd.concat([ids.iloc[who].reset_index(drop=True),
                               draw.baseline.iloc[who].reset_index(drop=True)], axis=1)
            frame[o.visit] = _cast(schedule[visit_idx], dt[o.visit])
            frame[o.value] = _cast(y[attended], dt[o.value])
        else:
            frame = pd.concat([ids, draw.baseline.reset_index(drop=True)], axis=1)
            if o.type == "tte":
                time, event = model.observe(draw.outcome.event_time(), rng=rng)
                frame[o.time] = _cast(time, dt[o.time])
                frame[o.event] = _cast(event, dt[o.event])
            elif o.type == "continuous":
                v = draw.outcome.value()
                frame[o.value] = _cast(np.rint(v) if model.integer_ else v, dt[o.value])
            else:
                levels = np.asarray(model.levels_, dtype=object)
                frame[o.value] = pd.Series(levels[draw.outcome.value()]).astype(dt[o.value])
        frame.columns = [self.schema_.id, *frame.columns[1:]]
        return frame[list(self.schema_.columns)]


@register
class CopulaGenerator(SequentialGenerator):
    """Gaussian copula for the baseline table, then a parametric outcome model conditional on it."""

    name = "copula"
    description = ("Gaussian copula (empirical marginals, modelled missingness) for baseline covariates; "
                   "Weibull PH / random-slope mixed model / linear / logistic outcome model on them")

    def __init__(self, *, max_discrete_levels: int = 15, copula_shrinkage: float = 0.0,
                 min_visit_fraction: float = 0.05, covariate_by_time: bool = True):
        self.max_discrete_levels = max_discrete_levels
        self.copula_shrinkage = copula_shrinkage
        self.min_visit_fraction = min_visit_fraction
        self.covariate_by_time = covariate_by_time

    def _baseline_model(self):
        return GaussianCopula(max_discrete_levels=self.max_discrete_levels, shrinkage=self.copula_shrinkage)

    @property
    def copula_(self) -> GaussianCopula:
        return self.baseline_model_


@register
class DefaultGenerator(CopulaGenerator):
    """The default family: the Gaussian copula sequential generator."""

    name = "default"
