"""AppTest of the conduct options on the Design page and the new result views on the Power page.

Design page: every conduct widget reaches the TrialDesign in session state (compared with the design built by
hand); bad input shows an inline error naming the scenario key, never an exception, and keeps the other inputs;
the looks' boundaries shown live equal :func:`analysis.gs_boundaries.boundaries`. Power page: a small run with
looks shows the per-look table (equal to ``PowerResult.looks``), the operating-characteristics table equals the
result's numbers, multi-arm and hybrid views equal ``PowerResult.operating``, and the in-app sweep equals
:func:`analysis.sweep.run_sweep` called directly with the same generator (exactly: same seed, same streams).
Figures are UnknownElements in AppTest (counted here); their data are tested in
tests/analysis/test_conduct_figures.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis.gs_boundaries import boundaries
from analysis.workflow import fit_generator
from app_pages._state import DEFAULT_SEED
from cohorts.builtin import load_builtin
from cohorts.cohort import Cohort
from cohorts.schema import CohortSchema, OutcomeSpec
from trials.conduct import Accrual, Eligibility, HybridControl, Looks, Randomization
from trials.design import Effect

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 60


def _errors(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in at.error)


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, _errors(at)
    return at


def _design_page(session: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    for k, v in (session or {}).items():
        at.session_state[k] = v
    at.switch_page("app_pages/design.py").run()
    return _ok(at)


def _set(at: AppTest, kind: str, name: str, value) -> AppTest:
    getattr(at, kind)(key=f"w_design_{name}").set_value(value).run()
    assert not at.exception, at.exception
    return at


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def _frame_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture(scope="module")
def als_generator():
    return fit_generator(load_builtin("als-natural-history"), "default", seed=DEFAULT_SEED)


def test_conduct_options_reach_the_design():
    at = _design_page()
    _set(at, "selectbox", "accrual_mode", "piecewise rates")
    _set(at, "text_input", "accrual_rates", "5, 20")
    _set(at, "text_input", "accrual_starts", "0, 6")
    _set(at, "selectbox", "accrual_process", "poisson")
    _set(at, "selectbox", "rand_method", "permuted_block")
    _set(at, "number_input", "rand_block", 4)
    _set(at, "multiselect", "rand_strata", ["sex"])
    _set(at, "text_input", "rand_strata_expr", "age >= 60; fvc_percent < 80")
    _set(at, "text_input", "eligibility", "age < 80")
    _set(at, "text_area", "enrichment", "site_of_onset == 'Bulbar' : 2\n\nriluzole == 'Yes': 0.5")
    _set(at, "checkbox", "arm_dropout_on", True)
    _set(at, "number_input", "arm_dropout_pct_0", 1.0)
    _set(at, "number_input", "arm_dropout_pct_1", 3.0)
    _set(at, "number_input", "dropout_hr_per_unit", 0.9)
    _set(at, "number_input", "visit_window_months", 0.25)
    _ok(at)
    d = at.session_state["design"]
    assert d.accrual == Accrual(rates=(5.0, 20.0), starts=(0.0, 6.0), process="poisson")
    assert d.randomization == Randomization("permuted_block", 4, ("sex", "age >= 60", "fvc_percent < 80"))
    assert d.eligibility == Eligibility("age < 80", (("site_of_onset == 'Bulbar'", 2.0), ("riluzole == 'Yes'", 0.5)))
    assert [a.dropout_per_month for a in d.arms] == pytest.approx([0.01, 0.03], abs=1e-12)
    assert d.dropout.hazard_ratio_per_unit_change == pytest.approx(0.9, abs=1e-12)
    assert d.endpoint.visit_window_months == pytest.approx(0.25, abs=1e-12)
    assert d.looks is None and d.hybrid is None and d.n_treatments == 1
    assert "permuted blocks of 4" in "\n".join(c.value for c in at.caption)
    # the values survive a page switch, and the design is rebuilt identically
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/design.py").run()
    assert _ok(at).session_state["design"] == d
    assert at.text_area(key="w_design_enrichment").value.startswith("site_of_onset")


def test_multi_arm_and_hybrid_options():
    at = _design_page()
    _set(at, "number_input", "extra_arms", 2)
    _set(at, "text_input", "arm0_name", "low dose")
    _set(at, "number_input", "arm0_slope_reduction_pct", 15.0)
    _set(at, "number_input", "arm1_alloc", 2.0)
    _set(at, "selectbox", "multiplicity", "hochberg")
    d = _ok(at).session_state["design"]
    assert [a.name for a in d.arms] == ["placebo", "treatment", "low dose", "treatment 3"]
    assert [a.allocation for a in d.arms] == [1.0, 1.0, 1.0, 2.0] and d.multiplicity == "hochberg"
    assert [e.value for e in d.effects] == pytest.approx([0.25, 0.15, 0.25], abs=1e-12)
    assert "N = 60 (12:12:12:24)" in at.success[0].value          # largest remainders of 60 x (1:1:1:2)/5
    # a hybrid control needs two arms: the design's own message names the key
    _set(at, "checkbox", "hybrid_on", True)
    assert "hybrid: a hybrid control is supported for two-arm designs" in _errors(at)
    _set(at, "number_input", "extra_arms", 0)
    _set(at, "number_input", "hybrid_controls", 30)
    _set(at, "checkbox", "hybrid_drift_on", True)
    _set(at, "number_input", "drift_slope_reduction_pct", -20.0)
    d = _ok(at).session_state["design"]
    assert d.hybrid == HybridControl(30, -0.2) and d.n_treatments == 1


def test_bad_inputs_show_an_inline_error_naming_the_field():
    at = _design_page()
    _set(at, "text_input", "n_total", "60, 90")
    good = at.session_state["design"]
    cases = [("text_input", "eligibility", "agee < 80", "eligibility.criteria: unknown column `agee`", ""),
             ("text_input", "eligibility", "age <", "eligibility.criteria", ""),
             ("text_area", "enrichment", "__import__('os') : 2", "eligibility.enrich", ""),
             ("text_area", "enrichment", "age > 60 : lots", "eligibility.enrich (line 1)", ""),
             ("selectbox", "accrual_mode", "piecewise rates", None, None),
             ("text_input", "accrual_rates", "5, x", "accrual.rates", "5, 20"),
             ("text_input", "accrual_starts", "0, 6, 9", "accrual.starts", "0, 6"),
             ("selectbox", "rand_method", "permuted_block", None, None),
             ("number_input", "rand_block", 3, "randomization.block_size: must be a multiple", 4),
             ("text_input", "rand_strata_expr", "age >", "randomization.strata[0]", "")]
    for kind, name, bad, field, fixed in cases:
        _set(at, kind, name, bad)
        if field is None:           # a valid step that opens the next fields: the new last valid design
            good = _ok(at).session_state["design"]
            continue
        assert field in _errors(at), (name, _errors(at))
        assert at.session_state["design"] == good              # the last valid design is kept
        assert at.text_input(key="w_design_n_total").value == "60, 90"   # other inputs keep their values
        _ok(_set(at, kind, name, fixed))


def test_looks_show_live_boundaries_and_refuse_bad_fractions():
    at = _design_page()
    _set(at, "checkbox", "looks_on", True)
    _set(at, "text_input", "looks_fractions", "0.3, 0.6, 1")
    _set(at, "radio", "looks_sided", 1)
    _set(at, "selectbox", "looks_futility", "obf")
    _set(at, "number_input", "looks_beta", 0.1)
    looks = _ok(at).session_state["design"].looks
    assert looks == Looks((0.3, 0.6, 1.0), spending="obf", futility="obf", beta=0.1, sided=1)
    ref = boundaries(looks.gs_design(0.05)).summary()
    shown = _frame_with(at, "efficacy_z")
    for col in ("information_fraction", "efficacy_z", "futility_z", "alpha_spent", "beta_spent"):
        np.testing.assert_allclose(shown[col], ref[col], rtol=0, atol=1e-12)   # the same computation
    assert _charts(at) == 1
    _set(at, "text_input", "looks_fractions", "0.6, 0.3, 1")
    assert "looks.information_fractions: must increase strictly" in _errors(at)
    assert _charts(at) == 0
    _ok(_set(at, "text_input", "looks_fractions", "0.5, 1"))
    _set(at, "number_input", "extra_arms", 1)
    assert "looks: group-sequential looks are supported for two-arm designs" in _errors(at)


def test_event_target_and_assessment_time():
    va = load_builtin("va-lung")
    at = _design_page({"cohort": va})
    _set(at, "number_input", "events", 80)
    assert _ok(at).session_state["design"].endpoint.events == 80
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"id": np.arange(50), "x": rng.normal(size=50), "y": rng.normal(size=50)})
    cont = Cohort("toy-continuous", CohortSchema(id="id", outcome=OutcomeSpec("continuous", value="y"),
                                                 numeric=("x",)), data)
    at = _design_page({"cohort": cont})
    _set(at, "number_input", "assessment_months", 6.0)
    d = _ok(at).session_state["design"]
    assert d.endpoint.assessment_months == 6.0 and d.effect == Effect("mean_difference", 1.0)


def test_power_with_looks_shows_the_look_table_and_the_sweep(als_generator):
    """A small power run with interim looks, then a two-cell sweep, on the session's fitted generator."""
    from analysis.sweep import run_sweep
    from analysis.sweep_grid import parse_grid
    from app_pages._power_views import cohort_ref
    from trials.design import PowerSettings
    from trials.scenario import Scenario

    cohort = load_builtin("als-natural-history")
    at = _design_page({"generator": als_generator, "generator_meta": (cohort.sha256, "default", DEFAULT_SEED)})
    _set(at, "text_input", "n_total", "60, 120")
    _set(at, "number_input", "replicates", 40)
    _set(at, "text_input", "visits_months", "0, 2, 4, 6")
    _set(at, "checkbox", "looks_on", True)
    _ok(at)
    at.switch_page("app_pages/power.py").run()
    at.button[0].click().run()
    job = at.session_state["power_job"]
    job.join(TIMEOUT)
    assert job.error is None and job.exception is None, job.error or job.traceback
    _ok(at.run())
    result = at.session_state["power_result"]
    looks = _frame_with(at, "p_efficacy")
    ref = result.looks[-1].dropna(axis=1, how="all")                # N = 120 shown first
    pd.testing.assert_frame_equal(looks.reset_index(drop=True), ref.reset_index(drop=True))
    assert looks["cumulative_efficacy"].iloc[-1] == pytest.approx(result.power[-1], abs=1e-12)
    oc = _frame_with(at, "coverage")
    np.testing.assert_array_equal(oc["power"], result.power)
    np.testing.assert_array_equal(oc["coverage"], result.operating["coverage"])
    assert oc["bias ± se"].iloc[0] == f"{result.operating['bias'][0]:+.4g} ± {result.operating['bias_se'][0]:.2g}"
    assert _charts(at) == 3                                       # power curve, boundaries, stopping
    at.selectbox(key="w_power_looks_n").set_value(60).run()
    pd.testing.assert_frame_equal(_frame_with(_ok(at), "p_efficacy").reset_index(drop=True),
                                  result.looks[0].dropna(axis=1, how="all").reset_index(drop=True))

    at.text_input(key="w_power_sweep_effects").set_value("15, 35").run()
    at.text_input(key="w_power_sweep_n").set_value("60").run()
    at.number_input(key="w_power_sweep_replicates").set_value(20).run()
    _ok(at).button(key="w_power_sweep_run").click().run()
    job = at.session_state["sweep_job"]
    job.join(TIMEOUT)
    assert job.error is None and job.exception is None, job.error or job.traceback
    _ok(at.run())
    ss = at.session_state
    scenario = Scenario("app sweep", DEFAULT_SEED, cohort_ref(cohort, "default"), ss["design"],
                        PowerSettings((60, 120), 20, 0.05))
    grid = parse_grid({"grid": {"effect": [0.15, 0.35], "n_total": [60]}}, scenario)
    direct = run_sweep(scenario, grid, generator=als_generator)
    cols = ["effect", "n_total", "power", "type1_error", "mean_estimate"]
    pd.testing.assert_frame_equal(job.result.table[cols], direct.table[cols])
    assert _charts(at) == 4                                       # + the sweep heatmap


def test_multi_arm_and_hybrid_power_views(als_generator):
    from trials.design import Arm, Dropout, Endpoint, PowerSettings, TrialDesign

    cohort = load_builtin("als-natural-history")
    ep = Endpoint("slope", visits_months=(0.0, 3.0, 6.0))
    multi = TrialDesign((Arm("placebo"), Arm("high", 1.0, Effect("slope_reduction", 0.4)),
                         Arm("low", 1.0, Effect("slope_reduction", 0.2))), ep, Dropout(0.02))
    hybrid = TrialDesign((Arm("placebo"), Arm("drug", 1.0, Effect("slope_reduction", 0.3))), ep, Dropout(0.02),
                         hybrid=HybridControl(20, 0.1))
    for design, column in ((multi, "power: low"), (hybrid, "power: randomized only")):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        for k, v in {"generator": als_generator, "generator_meta": (cohort.sha256, "default", DEFAULT_SEED),
                     "design": design, "settings": PowerSettings((60, 90), 30, 0.05), "seed": DEFAULT_SEED}.items():
            at.session_state[k] = v
        at.switch_page("app_pages/power.py").run()
        at.button[0].click().run()
        at.session_state["power_job"].join(TIMEOUT)
        result = _ok(at.run()).session_state["power_result"]
        view, op = _frame_with(at, column), result.operating
        if design is multi:
            np.testing.assert_array_equal(view["power: high"], op["power_arm_1"])
            np.testing.assert_array_equal(view["type I error: low"], op["type1_arm_2"])
            np.testing.assert_array_equal(view["power: any arm"], result.power)
            np.testing.assert_array_equal(view["power: all arms"], op["power_all_arms"])
        else:
            np.testing.assert_array_equal(view["power: hybrid"], result.power)
            np.testing.assert_array_equal(view["power: randomized only"], op["power_randomized_only"])
            np.testing.assert_array_equal(view["type I error: randomized only"], op["type1_randomized_only"])
            np.testing.assert_array_equal(view["bias under no effect: hybrid"], op["bias_null"])


def test_pages_stay_thin():
    for page in ("design.py", "power.py"):
        assert len((ROOT / "app_pages" / page).read_text().splitlines()) <= 150, page


def test_eligibility_shows_the_live_acceptance_rate(als_generator):
    """The Design page's acceptance rate equals the criteria evaluated on the historical patients (pandas masks)
    and on the seed's draw of synthetic patients; a value that never occurs is pointed out."""
    from app_pages._design_conduct import PREVIEW_PATIENTS
    from trials.eligibility_preview import cohort_eligibility_frame, synthetic_eligibility_frame
    cohort = load_builtin("als-natural-history")
    at = _design_page({"generator": als_generator, "generator_meta": (cohort.sha256, "default", DEFAULT_SEED)})
    _set(at, "text_input", "eligibility", "alsfrs_r >= 36 and site_of_onset == 'Bulbar'")
    _ok(at)
    f = cohort_eligibility_frame(cohort)
    real = int(((f["alsfrs_r"] >= 36) & (f["site_of_onset"] == "Bulbar")).sum())
    s = synthetic_eligibility_frame(als_generator, PREVIEW_PATIENTS, rng=np.random.default_rng(DEFAULT_SEED))
    synth = int(((s["alsfrs_r"] >= 36) & (s["site_of_onset"] == "Bulbar")).sum())
    text = "\n".join(str(c.value) for c in at.caption) + "\n".join(str(w.value) for w in at.warning)
    assert f"{real / len(f):.1%} of 3,000 historical patients ({real:,})" in text
    assert f"{synth / PREVIEW_PATIENTS:.1%} of 2,000 synthetic patients ({synth:,})" in text
    assert "Each condition alone:" in text

    _set(at, "text_input", "eligibility", "site_of_onset == 'bulbar'")     # a typo: nobody qualifies
    warnings = "\n".join(str(w.value) for w in at.warning)
    assert "0.0% of 3,000 historical patients" in warnings and "did you mean `Bulbar`" in warnings
