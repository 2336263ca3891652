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
from .cox import cox_batched, cox_test
from .logrank import logrank_batched, logrank_test
from .proportions import proportions_batched, proportions_test
from .result import BatchResult, TestResult
from .slope import slope_batched, slope_test
from .ttest import ttest_batched, ttest_test

__all__ = ["BATCHED", "SINGLE", "analyze_batch", "BatchResult", "TestResult",
           "slope_batched", "slope_test", "ancova_batched", "ancova_test", "logrank_batched", "logrank_test",
           "cox_batched", "cox_test", "ttest_batched", "ttest_test", "proportions_batched", "proportions_test"]


def _need(batch: TrialBatch, analysis: str, *fields: str) -> None:
    missing = [f for f in fields if getattr(batch, f) is None]
    if missing:
        raise ValueError(f"analysis {analysis!r} needs TrialBatch fields {missing} "
                         f"(the batch is {batch.outcome_type!r})")


def _slope(batch: TrialBatch, alpha: float) -> BatchResult:
    _need(batch, "slope", "y", "visit_times")
    return slope_batched(batch.y, batch.visit_times, batch.treated, alpha)


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


#: analysis name -> batched estimator on a :class:`~trials.batch.TrialBatch` (Cox uses Efron ties)
BATCHED: dict[str, Callable[[TrialBatch, float], BatchResult]] = {
    "slope": _slope, "ancova": _ancova, "logrank": _logrank, "cox": _cox, "ttest": _ttest,
    "proportions": _proportions,
}

#: analysis name -> single-dataset function on a DataFrame
SINGLE: dict[str, Callable[..., TestResult]] = {
    "slope": slope_test, "ancova": ancova_test, "logrank": logrank_test, "cox": cox_test,
    "ttest": ttest_test, "proportions": proportions_test,
}


def analyze_batch(batch: TrialBatch, analysis: str, alpha: float = 0.05) -> BatchResult:
    """Run the registered analysis ``analysis`` on every replicate of ``batch``."""
    try:
        fn = BATCHED[analysis]
    except KeyError:
        raise UnknownNameError("analysis", analysis, BATCHED) from None
    return fn(batch, alpha)
