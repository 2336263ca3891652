"""Design objects validate on construction and describe their null."""

import math

import pytest

from cohorts.errors import InvalidScenarioError
from trials.design import Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign
from trials.effects import latent_parameter, per_patient_parameter


def test_null_design_keeps_everything_but_the_effect():
    d = TrialDesign((Arm("p"), Arm("t", 2, Effect("hazard_ratio", 0.7))), Endpoint("cox", followup=365), Dropout(0.01))
    n = d.null()
    assert n.effect.kind == "hazard_ratio" and n.effect.value == 1.0 and n.effect.is_null
    assert n.endpoint == d.endpoint and n.dropout == d.dropout and n.treated_fraction == d.treated_fraction


def test_dropout_hazard_is_the_monthly_rate_on_the_log_scale():
    assert Dropout(0.02).hazard_per_month == pytest.approx(-math.log(0.98))


@pytest.mark.parametrize("make", [
    lambda: Effect("odds_ratio", 0),
    lambda: Effect("mean_difference", float("nan")),
    lambda: Arm("a", allocation=-1),
    lambda: Endpoint("slope"),                    # visits required
    lambda: Endpoint("logrank"),                  # follow-up required
    lambda: Endpoint("nonsense", followup=1),
    lambda: Dropout(1.0),
    lambda: PowerSettings((10,), replicates=0),
    lambda: PowerSettings((10,), alpha=1.0),
    lambda: TrialDesign((Arm("a"), Arm("a")), Endpoint("ttest")),
    lambda: TrialDesign((Arm("a", effect=Effect("mean_difference", 1)), Arm("b")), Endpoint("ttest")),
])
def test_impossible_designs_are_rejected(make):
    with pytest.raises(InvalidScenarioError):
        make()


def test_effect_parameters_on_the_latent_scale():
    assert latent_parameter(Effect("hazard_ratio", 0.5)) == pytest.approx(math.log(0.5))
    assert latent_parameter(Effect("odds_ratio", 2.0)) == pytest.approx(math.log(2.0))
    assert latent_parameter(Effect("slope_reduction", 0.25)) == 0.25
    p = per_patient_parameter(Effect("mean_difference", 3.0), [True, False, True])
    assert list(p) == [3.0, 0.0, 3.0]


def test_cohort_check_lets_eligibility_use_the_longitudinal_baseline_value_and_names_unknown_columns():
    from cohorts.builtin import load_builtin
    from trials.conduct import Eligibility, Randomization
    from trials.simulate import check_design_fits_cohort, eligibility_columns
    cohort = load_builtin("als-natural-history")
    value = cohort.schema.outcome.value
    assert eligibility_columns(cohort.schema) == (*cohort.schema.baseline, value)
    base = dict(arms=(Arm("placebo"), Arm("treated", 1, Effect("slope_reduction", 0.25))),
                endpoint=Endpoint("slope", visits_months=(0, 3, 6)))
    check_design_fits_cohort(TrialDesign(**base, eligibility=Eligibility(f"{value} >= 30")), cohort.schema)
    bad = TrialDesign(**base, eligibility=Eligibility("age >= 18", (("agee > 60", 2.0),)),
                      randomization=Randomization("permuted_block", 4, ("sexx", f"{value} > 30")))
    with pytest.raises(InvalidScenarioError) as err:
        check_design_fits_cohort(bad, cohort.schema, cohort.data)
    text = "\n".join(err.value.problems)
    assert "eligibility.enrich['agee > 60']" in text and "randomization.strata: 'sexx'" in text
    # strata see the baseline covariates only: the outcome's value is not one of them
    assert f"randomization.strata['{value} > 30']" in text
