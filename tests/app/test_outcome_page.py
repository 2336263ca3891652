"""AppTest of the Outcome page, run as its own script with the session state the other pages would have set
(cohort, fitted generator and its meta, design, settings, seed): one virtual trial, a real trial in the
cohort's data, a longitudinal trial, and the missing-generator message.

Plotly charts are UnknownElements in AppTest: they are counted; the figures themselves are tested in
tests/analysis/test_outcome_view.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis.estimators import SINGLE
from analysis.outcome_view import simulate_one_trial
from analysis.workflow import fit_generator, seed_streams
from cohorts.builtin import load_builtin
from cohorts.cohort import Cohort
from trials.design import Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "outcome.py")
TIMEOUT = 60
REAL = "Real trial in the cohort's data"


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def _page(cohort, generator=None, design=None, settings=None, seed=3, form=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["form"] = dict(form or {})   # remembered widget values, as after a visit
    at.session_state["cohort"] = cohort
    if generator is not None:
        at.session_state["generator"] = generator
        at.session_state["generator_meta"] = (cohort.sha256, "default", 5)
    if design is not None:
        at.session_state["design"] = design
        at.session_state["settings"] = settings or PowerSettings((60, 100), 20, 0.05)
    at.session_state["seed"] = seed
    return at.run()


@pytest.fixture(scope="module")
def va():
    cohort = load_builtin("va-lung")
    return cohort, fit_generator(cohort, "default", seed=5)


VA_DESIGN = TrialDesign((Arm("standard"), Arm("test", 1.0, Effect("hazard_ratio", 0.7))),
                        Endpoint("cox", followup=365.0), Dropout(0.01))


def test_one_virtual_trial(va):
    cohort, gen = va
    at = _ok(_page(cohort, gen, VA_DESIGN))
    trial = at.session_state["outcome_trial"][1]
    ref = simulate_one_trial(gen, VA_DESIGN, 100, rng=seed_streams(3)[1])    # N: the design's largest, seed 3
    pd.testing.assert_frame_equal(trial.patients, ref.patients)
    res = SINGLE["cox"](ref.data, **ref.analysis_kwargs("cox"))
    assert [m.value for m in at.metric] == [f"{res.estimate:.4g}", f"{res.ci_low:.3g} to {res.ci_high:.3g}",
                                            f"{res.p_value:.3g}"]
    assert _charts(at) == 2                       # Kaplan-Meier and forest (default: categorical covariates)
    table1 = at.dataframe[0].value
    assert "SMD" in table1.columns and table1.iloc[0][["standard", "test"]].tolist() == ["50", "50"]
    forest = at.dataframe[1].value
    assert forest["label"].iloc[0] == "Overall" and abs(forest["estimate"].iloc[0] - res.estimate) < 1e-12
    _ok(at.number_input(key="w_outcome_trial_seed").set_value(4).run())          # another seed, another trial
    other = at.session_state["outcome_trial"][1]
    assert not other.patients.equals(trial.patients)
    _ok(at.multiselect(key="w_outcome_trial_subgroups").set_value([]).run())
    assert _charts(at) == 1 and len(at.dataframe) == 1


def test_real_trial_in_the_cohort(va):
    cohort, gen = va
    at = _ok(_page(cohort, gen, VA_DESIGN))
    _ok(at.radio[0].set_value(REAL).run())
    assert at.selectbox(key="w_outcome_trial_arm").value == "Treatment"     # arm-like name first
    assert at.selectbox(key="w_outcome_trial_treated_Treatment").value == "test"
    values = [m.value for m in at.metric]
    assert values == ["1.018", "0.714 to 1.45", "0.922"]               # published: HR 1.018 (0.714-1.450)
    _ok(at.selectbox(key="w_outcome_trial_analysis_tte").set_value("logrank").run())
    assert at.metric[0].value != "1.018" and "log-rank" in "".join(c.value for c in at.caption)


def test_longitudinal_trial_shows_trajectories():
    als = load_builtin("als-natural-history")
    ids = als.data["patient_id"].unique()[:200]
    cohort = Cohort("als-200", als.schema, als.data[als.data["patient_id"].isin(ids)].reset_index(drop=True))
    gen = fit_generator(cohort, "default", seed=5)
    design = TrialDesign((Arm("placebo"), Arm("drug", 1.0, Effect("slope_reduction", 0.25))),
                         Endpoint("slope", visits_months=(0, 3, 6)), Dropout(0.02))
    at = _ok(_page(cohort, gen, design, PowerSettings((80,), 20, 0.05), seed=8))
    trial = at.session_state["outcome_trial"][1]
    assert trial.outcome.type == "longitudinal" and sorted(trial.data["month"].unique()) == [0, 3, 6]
    res = SINGLE["slope"](trial.data, **trial.analysis_kwargs("slope"))
    assert at.metric[0].value == f"{res.estimate:.4g}"
    assert _charts(at) == 2                       # trajectories and forest


def test_missing_generator_or_arm_column_is_explained(va):
    cohort, _ = va
    at = _ok(_page(cohort, None, VA_DESIGN))
    assert "train a generator" in " ".join(i.value for i in at.info) and not at.metric
    numeric_only = Cohort("va-numeric", cohort.schema.__class__(
        id=cohort.schema.id, outcome=cohort.schema.outcome, numeric=cohort.schema.numeric),
        cohort.data[[cohort.schema.id, *cohort.schema.numeric, "time_days", "death"]])
    at = _ok(_page(numeric_only, None, None, form={"trial_source": REAL}))  # run standalone: need() has no pages
    assert at.radio[0].value == REAL
    assert "no two-level categorical column" in " ".join(i.value for i in at.info) and not at.metric


def test_page_is_thin():
    assert len(Path(PAGE).read_text().splitlines()) <= 150
