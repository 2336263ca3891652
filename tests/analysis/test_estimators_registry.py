"""The estimator registries: names, dispatch on a TrialBatch, errors, public surface."""

import inspect

import numpy as np
import pytest

import analysis.estimators as est
from analysis.estimators import BATCHED, SINGLE, BatchResult, TestResult, analyze_batch
from cohorts.errors import UnknownNameError
from trials.batch import TrialBatch
from trials.design import ANALYSIS_OUTCOME


def _batch(outcome_type, rng, R=7, N=30):
    treated = rng.random((R, N)) < 0.5
    if outcome_type == "longitudinal":
        visits = np.array([0.0, 1, 2, 3])
        y = rng.normal(30, 3, (R, N, 1)) - rng.normal(1, 0.3, (R, N, 1)) * visits + rng.normal(0, 1, (R, N, 4))
        y[..., 3][rng.random((R, N)) < 0.2] = np.nan
        return TrialBatch("longitudinal", treated, y=y, visit_times=visits)
    if outcome_type == "tte":
        time = np.round(rng.exponential(10, (R, N)), 0) + 1
        return TrialBatch("tte", treated, time=time, event=rng.random((R, N)) < 0.7, time_unit="months")
    if outcome_type == "binary":
        return TrialBatch("binary", treated, y=(rng.random((R, N)) < 0.4).astype(float))
    return TrialBatch("continuous", treated, y=rng.normal(0, 1, (R, N)))


def test_registries_cover_every_analysis():
    assert set(BATCHED) == set(ANALYSIS_OUTCOME) == set(SINGLE)
    for name, fn in SINGLE.items():
        assert fn.__name__ == f"{name}_test"
        params = inspect.signature(fn).parameters
        assert {"arm", "treated_value", "alpha"} <= set(params) and params["alpha"].default == 0.05


@pytest.mark.parametrize("name", sorted(ANALYSIS_OUTCOME))
def test_analyze_batch_dispatches_and_replicates_agree(name):
    batch = _batch(ANALYSIS_OUTCOME[name], np.random.default_rng(len(name)))
    res = analyze_batch(batch, name, 0.1)
    assert isinstance(res, BatchResult) and len(res) == batch.replicates
    assert res.n_per_arm.shape == (batch.replicates, 2)
    fin = np.isfinite(res.p_value)       # a replicate may be undefined (e.g. no control events for a risk ratio)
    assert fin.sum() >= batch.replicates - 1 and (res.ci_low[fin] <= res.ci_high[fin]).all()
    frame = res.to_frame()
    assert list(frame["replicate"]) == list(range(batch.replicates))
    for r in range(batch.replicates):
        one = BATCHED[name](batch.replicate(r), 0.1)
        np.testing.assert_allclose([one.estimate[0], one.p_value[0]], [res.estimate[r], res.p_value[r]],
                                   rtol=1e-8)
    wider = analyze_batch(batch, name, 0.01)
    assert (wider.ci_low[fin] <= res.ci_low[fin]).all() and (wider.ci_high[fin] >= res.ci_high[fin]).all()


def test_unknown_names_raise():
    batch = _batch("tte", np.random.default_rng(0))
    with pytest.raises(UnknownNameError, match="choose one of: ancova, cox, logistic, logrank, mmrm"):
        analyze_batch(batch, "mmrn", 0.05)
    with pytest.raises(ValueError, match="needs TrialBatch fields"):
        analyze_batch(batch, "mmrm", 0.05)   # a longitudinal analysis on a tte batch
    with pytest.raises(KeyError):
        analyze_batch(batch, "wilcoxon", 0.05)
    with pytest.raises(UnknownNameError, match="efron"):
        est.cox_batched(batch.time, batch.event, batch.treated, ties="exact")
    with pytest.raises(ValueError, match="alpha"):
        analyze_batch(batch, "logrank", 1.5)


def test_public_surface():
    assert {"BATCHED", "SINGLE", "analyze_batch", "BatchResult", "TestResult"} <= set(est.__all__)
    for name in ANALYSIS_OUTCOME:
        assert f"{name}_batched" in est.__all__ and f"{name}_test" in est.__all__
    assert all(hasattr(est, n) for n in est.__all__)
    assert TestResult.__test__ is False
