"""Batched estimators: one file per analysis, each checked against statsmodels.

Every analysis has a single-dataset function ``<name>_test(data, ..., alpha=0.05) -> TestResult`` (columns
named by keyword) and a batched function ``<name>_batched(arrays..., alpha=0.05) -> BatchResult`` over a
leading replicate axis; the single-dataset function builds arrays and calls the batched one with ``R = 1``.

Registries (keys are the analysis names of :data:`trials.design.ANALYSIS_OUTCOME`):

* :data:`BATCHED`: ``name -> f(batch: TrialBatch, alpha: float) -> BatchResult``;
* :data:`SINGLE`: ``name -> <name>_test``;
* :func:`analyze_batch` looks a name up and raises :class:`~cohorts.errors.UnknownNameError` for others.
"""

from __future__ import annotations

from collections.abc import Callable

from cohorts.errors import UnknownNameError
from trials.batch import TrialBatch

from .ancova import ancova_batched, ancova_test
from .ancova_adjusted import ancova_adjusted_batched, ancova_adjusted_test
from .binary import risk_difference_batched, risk_difference_test, risk_ratio_batched, risk_ratio_test
from .cafs import cafs_batched, cafs_scores, cafs_test
from .cox import cox_batched, cox_test
from .cox_adjusted import cox_adjusted_batched, cox_adjusted_test
from .km import km_median_batched, km_summary
from .logistic import logistic_batched, logistic_test
from .logrank import logrank_batched, logrank_test
from .logrank_stratified import logrank_stratified_batched, logrank_stratified_test
from .mmrm import mmrm_batched, mmrm_test
from .procova import fit_prognostic_model, procova_batched, procova_test
from .proportions import proportions_batched, proportions_test
from .random_slope import random_slope_batched, random_slope_test
from .result import BatchResult, TestResult
from .rmst import rmst_batched, rmst_test
from .slope import slope_batched, slope_test
from .ttest import ttest_batched, ttest_test

__all__ = ["BATCHED", "SINGLE", "RATIO_ANALYSES", "null_estimate", "analyze_batch", "BatchResult", "TestResult",
           "slope_batched", "slope_test", "ancova_batched", "ancova_test", "logrank_batched", "logrank_test",
           "cox_batched", "cox_test", "ttest_batched", "ttest_test", "proportions_batched", "proportions_test",
           "ancova_adjusted_batched", "ancova_adjusted_test", "risk_difference_batched", "risk_difference_test",
           "risk_ratio_batched", "risk_ratio_test", "logistic_batched", "logistic_test", "cafs_batched",
           "cafs_scores", "cafs_test", "cox_adjusted_batched", "cox_adjusted_test", "km_median_batched",
           "km_summary", "logrank_stratified_batched", "logrank_stratified_test", "mmrm_batched", "mmrm_test",
           "random_slope_batched", "random_slope_test", "rmst_batched", "rmst_test", "fit_prognostic_model",
           "procova_batched", "procova_test"]


def _need(batch: TrialBatch, analysis: str, *fields: str) -> None:
    missing = [f for f in fields if getattr(batch, f) is None]
    if missing:
        raise ValueError(f"analysis {analysis!r} needs TrialBatch fields {missing} "
                         f"(the batch is {batch.outcome_type!r})")


def _slope(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "slope", "y", "visit_times")
    times = batch.visit_times if batch.visit_times_actual is None else batch.visit_times_actual  # visit windows
    return slope_batched(batch.y, times, batch.treated, alpha)


def _ancova(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "ancova", "y")
    return ancova_batched(batch.y, batch.treated, alpha)


def _logrank(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "logrank", "time", "event")
    return logrank_batched(batch.time, batch.event, batch.treated, alpha)


def _cox(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "cox", "time", "event")
    return cox_batched(batch.time, batch.event, batch.treated, alpha, ties="efron")


def _ttest(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "ttest", "y")
    return ttest_batched(batch.y, batch.treated, alpha)


def _proportions(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "proportions", "y")
    return proportions_batched(batch.y, batch.treated, alpha)


def _risk_difference(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "risk_difference", "y")
    return risk_difference_batched(batch.y, batch.treated, alpha)


def _risk_ratio(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "risk_ratio", "y")
    return risk_ratio_batched(batch.y, batch.treated, alpha)


def _logistic(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "logistic", "y")
    return logistic_batched(batch.y, batch.treated, None, alpha)


def _mmrm(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "mmrm", "y", "visit_times")
    return mmrm_batched(batch.y, batch.treated, batch.visit_times, alpha)


def _random_slope(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "random_slope", "y", "visit_times")
    return random_slope_batched(batch.y, batch.treated, batch.visit_times, alpha)


#: analysis name -> batched estimator on a :class:`~trials.batch.TrialBatch` (Cox uses Efron ties)
BATCHED: dict[str, Callable[[TrialBatch, float], BatchResult]] = {
    "slope": _slope, "ancova": _ancova, "logrank": _logrank, "cox": _cox, "ttest": _ttest,
    "proportions": _proportions, "risk_difference": _risk_difference, "risk_ratio": _risk_ratio,
    "logistic": _logistic, "mmrm": _mmrm, "random_slope": _random_slope,
}

#: analysis name -> single-dataset function on a DataFrame
SINGLE: dict[str, Callable[..., TestResult]] = {
    "slope": slope_test, "ancova": ancova_test, "logrank": logrank_test, "cox": cox_test,
    "ttest": ttest_test, "proportions": proportions_test, "risk_difference": risk_difference_test,
    "risk_ratio": risk_ratio_test, "logistic": logistic_test, "mmrm": mmrm_test, "random_slope": random_slope_test,
}


#: analyses whose estimate is a ratio (hazard, odds or risk ratio; no effect = 1); the others estimate differences
#: (no effect = 0)
RATIO_ANALYSES = frozenset({"logrank", "cox", "risk_ratio", "logistic"})


def null_estimate(analysis: str) -> float:
    """The estimate of ``analysis`` that means no effect: 1 for ratios, 0 for differences."""
    return 1.0 if analysis in RATIO_ANALYSES else 0.0


def analyze_batch(batch: TrialBatch, analysis: str, alpha: float = 0.05) -> BatchResult:
    """Run the registered analysis ``analysis`` on every replicate of ``batch``."""
    try:
        fn = BATCHED[analysis]
    except KeyError:
        raise UnknownNameError("analysis", analysis, BATCHED) from None
    return fn(batch, alpha)
