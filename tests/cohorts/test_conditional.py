"""Conditional sampling on real generators: the default generator fitted on the built-in ALS cohort and on GBSG2.

Statistical checks use bounds of 4.5 standard errors (two-sided false-failure rate about 7e-6 per check), with
fixed seeds; expected fractions are computed independently from large unconditional draws with other seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohorts.builtin import load_builtin
from cohorts.conditional import MIN_EFFECTIVE_SAMPLE_SIZE, SamplingConditions, draw_conditionally
from cohorts.criteria import CriteriaError
from cohorts.errors import InvalidScenarioError
from cohorts.generators import CohortGenerator, PatientDraw, get_generator
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"
ALS_CRITERIA = 'alsfrs_r >= 30 and months_since_onset <= 24 and site_of_onset == "Bulbar"'
Z = 4.5


def _als_mask(f: pd.DataFrame) -> np.ndarray:
    """The ALS criteria written independently with pandas."""
    return ((f["alsfrs_r"] >= 30) & (f["months_since_onset"] <= 24) & (f["site_of_onset"] == "Bulbar")).to_numpy()


@pytest.fixture(scope="module")
def als():
    cohort = load_builtin("als-natural-history")
    return get_generator("default").fit(cohort.data, cohort.schema, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def gbsg():
    data = pd.read_csv(DATA / "gbsg2.csv")
    schema = CohortSchema.from_dict({
        "id": "patient_id",
        "baseline": {"numeric": ["age", "estrec", "pnodes", "progrec", "tsize"],
                     "categorical": ["horTh", "menostat", "tgrade"]},
        "outcome": {"type": "tte", "time": "rfs_days", "event": "event"}})
    return get_generator("default").fit(data, schema, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def als_source(als) -> pd.DataFrame:
    """A large unconditional draw: the source distribution the conditional draws are compared with."""
    return als.baseline_frame(als.draw(60_000, rng=np.random.default_rng(99)))


class MissingAge(CohortGenerator):
    """A small fake generator: a fitted generator whose draws miss ``age`` for every fifth patient."""

    name = "missing-age-test"

    def __init__(self, inner=None):
        self.inner = inner
        if inner is not None:
            self.schema_ = inner.schema_

    def _fit(self, data, schema, *, rng, progress=None):
        raise NotImplementedError

    def _draw(self, n, *, rng):
        d = self.inner._draw(n, rng=rng)
        base = d.baseline.copy()
        base.loc[base.index % 5 == 0, "age"] = np.nan
        return PatientDraw(base, d.outcome, dict(d.info))

    def _realize(self, draw, *, rng):
        return self.inner._realize(draw, rng=rng)


# ------------------------------------------------------------------------------------------- criteria
def test_every_als_patient_satisfies_the_criteria_and_acceptance_matches_source(als, als_source):
    d = als.draw(3000, rng=np.random.default_rng(1), conditions=SamplingConditions(criteria=ALS_CRITERIA))
    frame = als.baseline_frame(d)
    assert len(d) == 3000 and _als_mask(frame).all()
    p = _als_mask(als_source).mean()  # eligible fraction of an unconditional draw
    rate, n_drawn = d.info["acceptance_rate"], d.info["n_drawn"]
    assert 0.1 < p < 0.5
    assert abs(rate - p) < Z * np.sqrt(p * (1 - p) * (1 / n_drawn + 1 / len(als_source)))
    assert d.info["n_eligible"] == round(rate * n_drawn) and n_drawn >= 3000 / p * 0.9
    assert set(d.info["clause_pass_rates"]) == {"alsfrs_r >= 30", "months_since_onset <= 24",
                                                "site_of_onset == 'Bulbar'"}
    assert d.info["criteria"] == "alsfrs_r >= 30 and months_since_onset <= 24 and site_of_onset == 'Bulbar'"
    # the conditional draw is the source restricted to the eligible: same mean ALSFRS-R as the eligible source
    eligible = als_source[_als_mask(als_source)]["alsfrs_r"]
    assert abs(frame["alsfrs_r"].mean() - eligible.mean()) < Z * eligible.std() * np.sqrt(1 / 3000 + 1 / len(eligible))


def test_sample_via_generator_contract(gbsg, als):
    cond = SamplingConditions(criteria="age >= 50 and menostat == 'Post' and tgrade != 'I'")
    out = gbsg.sample(100, rng=np.random.default_rng(2), conditions=cond)
    assert len(out) == 100 and out["patient_id"].nunique() == 100
    assert ((out["age"] >= 50) & (out["menostat"] == "Post") & (out["tgrade"] != "I")).all()
    assert 0 < out.attrs["acceptance_rate"] < 1
    again = gbsg.sample(100, rng=np.random.default_rng(2), conditions=cond)
    pd.testing.assert_frame_equal(out, again)
    long = als.sample(100, rng=np.random.default_rng(3), conditions=SamplingConditions(criteria=ALS_CRITERIA))
    first = long.groupby("patient_id").first()
    assert len(first) == 100 and (first["site_of_onset"] == "Bulbar").all()
    assert (first["months_since_onset"] <= 24).all() and 0.15 < long.attrs["acceptance_rate"] < 0.35


def test_deterministic_for_a_seed_and_pilot_reused_for_small_n(als):
    cond = SamplingConditions(criteria=ALS_CRITERIA, target_marginals={"sex": {"Female": 0.5, "Male": 0.5}})
    a = als.draw(500, rng=np.random.default_rng(4), conditions=cond)
    b = als.draw(500, rng=np.random.default_rng(4), conditions=cond)
    c = als.draw(500, rng=np.random.default_rng(5), conditions=cond)
    pd.testing.assert_frame_equal(a.baseline, b.baseline)
    assert np.array_equal(a.outcome.start, b.outcome.start) and not np.array_equal(a.outcome.start, c.outcome.start)
    assert a.info["n_drawn"] == 20_000  # 500 kept patients fit in the pilot
    assert draw_conditionally(als, 0, rng=np.random.default_rng(1), conditions=ALS_CRITERIA).baseline.shape[0] == 0


def test_conditions_as_text_or_mapping(gbsg):
    a = gbsg.draw(50, rng=np.random.default_rng(6), conditions="age < 45")
    b = gbsg.draw(50, rng=np.random.default_rng(6), conditions={"criteria": "age < 45"})
    assert (a.baseline["age"] < 45).all()
    pd.testing.assert_frame_equal(a.baseline, b.baseline)
    with pytest.raises(TypeError, match="conditions must be"):
        gbsg.draw(5, rng=np.random.default_rng(6), conditions=42)


def test_missing_values_are_not_eligible_and_not_targeted(gbsg):
    fake = MissingAge(gbsg)
    d = fake.draw(400, rng=np.random.default_rng(7), conditions=SamplingConditions(criteria="not (age < 50)"))
    assert d.baseline["age"].notna().all() and (d.baseline["age"] >= 50).all()
    d = fake.draw(400, rng=np.random.default_rng(7),
                  conditions=SamplingConditions(target_marginals={"age": {"mean": 55, "sd": 9}}))
    assert d.baseline["age"].notna().all() and d.info["acceptance_rate"] == 1.0


# ------------------------------------------------------------------------------------------- weights
def test_target_half_female_within_binomial_bounds_with_ess(als, als_source):
    n = 4000
    criteria = "alsfrs_r >= 30 and months_since_onset <= 24"
    cond = SamplingConditions(criteria=criteria, target_marginals={"sex": {"Female": 0.5, "Male": 0.5}})
    d = als.draw(n, rng=np.random.default_rng(8), conditions=cond)
    frame = als.baseline_frame(d)
    assert ((frame["alsfrs_r"] >= 30) & (frame["months_since_onset"] <= 24)).all()
    female = (frame["sex"] == "Female").mean()
    assert abs(female - 0.5) < Z * np.sqrt(0.25 / n)
    assert d.info["achieved_marginals"]["sex"]["Female"] == pytest.approx(female)
    # Kish ESS of weights 0.5/p and 0.5/(1-p) is N * 4 p (1 - p) (p: female share among the eligible pilot)
    eligible = als_source[(als_source["alsfrs_r"] >= 30) & (als_source["months_since_onset"] <= 24)]
    p = (eligible["sex"] == "Female").mean()
    assert p < 0.45  # the source is mostly male, so the target does reweight
    ess, n_pool = d.info["effective_sample_size"], d.info["n_pilot_eligible"]
    assert ess == pytest.approx(n_pool * 4 * p * (1 - p), rel=0.03)
    assert MIN_EFFECTIVE_SAMPLE_SIZE < ess < n_pool
    # mean weight 1, largest 0.5 / p: acceptance-rejection keeps 2 p of the eligible draws
    assert d.info["weight_efficiency"] == pytest.approx(2 * p, rel=0.05)


def test_numeric_target_mean_sd(als):
    n = 4000
    cond = SamplingConditions(target_marginals={"age": {"mean": 60.0, "sd": 8.0}})
    d = als.draw(n, rng=np.random.default_rng(9), conditions=cond)
    age = d.baseline["age"]
    # tolerance: 4.5 SE of a mean (sd / sqrt(n)) and of an sd (sd / sqrt(2 n)) from a near-normal sample
    assert abs(age.mean() - 60) < Z * 8 / np.sqrt(n)
    assert abs(age.std() - 8) < Z * 8 / np.sqrt(2 * n)
    assert d.info["achieved_marginals"]["age"] == pytest.approx({"mean": age.mean(), "sd": age.std()})
    assert 0 < d.info["weight_efficiency"] <= 1 and d.info["weights_capped_fraction"] < 0.01


def test_binned_target_with_criteria_on_gbsg(gbsg):
    n = 3000
    cond = SamplingConditions(criteria="menostat == 'Post'",
                              target_marginals={"tsize": {"bins": [0, 20, 30, 200], "probs": [0.3, 0.3, 0.4]}})
    d = gbsg.draw(n, rng=np.random.default_rng(10), conditions=cond)
    assert (d.baseline["menostat"] == "Post").all()
    got = np.histogram(d.baseline["tsize"], bins=[0, 20, 30, 200.0001])[0] / n
    for g, p in zip(got, [0.3, 0.3, 0.4]):
        assert abs(g - p) < Z * np.sqrt(p * (1 - p) / n)
    assert d.info["achieved_marginals"]["tsize"]["probs"] == pytest.approx(list(got))


def test_enrichment_ratio_achieved(als, als_source):
    n = 4000
    cond = SamplingConditions(enrich={"site_of_onset == 'Bulbar'": 2.0})
    d = als.draw(n, rng=np.random.default_rng(11), conditions=cond)
    p = (als_source["site_of_onset"] == "Bulbar").mean()
    q_expected = 2 * p / (2 * p + 1 - p)  # twice as likely to be enrolled as in the source
    q = (d.baseline["site_of_onset"] == "Bulbar").mean()
    assert abs(q - q_expected) < Z * np.sqrt(q_expected * (1 - q_expected) / n + 4 * p * (1 - p) / len(als_source))
    e = d.info["enrichment"]["site_of_onset == 'Bulbar'"]
    assert e["weight"] == 2.0 and e["sampled_fraction"] == pytest.approx(q)
    assert 1.7 < e["achieved_ratio"] < 2.3


def test_enrichment_and_targets_combine(als):
    cond = SamplingConditions(criteria="alsfrs_r >= 30", enrich={"c9orf72 == 'Carrier'": 3.0},
                              target_marginals={"sex": {"Female": 0.5, "Male": 0.5},
                                                "age": {"mean": 58.0, "sd": 9.0}})
    n = 4000
    d = als.draw(n, rng=np.random.default_rng(12), conditions=cond)
    f = als.baseline_frame(d)
    assert (f["alsfrs_r"] >= 30).all()
    assert abs((f["sex"] == "Female").mean() - 0.5) < Z * np.sqrt(0.25 / n)
    assert abs(f["age"].mean() - 58) < Z * 9 / np.sqrt(n)
    assert d.info["enrichment"]["c9orf72 == 'Carrier'"]["achieved_ratio"] > 1.8
    json.dumps(d.info)  # the report stores it


# ------------------------------------------------------------------------------------------- failures
def test_criteria_selecting_almost_nobody_fail_with_clause_pass_rates(als):
    with pytest.raises(InvalidScenarioError) as info:
        als.draw(10, rng=np.random.default_rng(13),
                 conditions=SamplingConditions(criteria="site_of_onset == 'Bulbar' and age > 84"))
    msg = str(info.value)
    assert "select almost nobody" in msg and "of 20,000 pilot draws" in msg and "min_acceptance = 0.001" in msg
    assert msg.index("age > 84: 0.") < msg.index("site_of_onset == 'Bulbar': 2")  # most restrictive first
    with pytest.raises(InvalidScenarioError, match=r"none of 20,000 pilot draws .*age > 200: 0.0%"):
        als.draw(10, rng=np.random.default_rng(13), conditions=SamplingConditions(criteria="age > 200"))
    with pytest.raises(InvalidScenarioError, match="'bulbar' never occurs in `site_of_onset`; did you mean `Bulbar`"):
        als.draw(10, rng=np.random.default_rng(13), conditions=SamplingConditions(criteria="site_of_onset == 'bulbar'"))
    ok = als.draw(10, rng=np.random.default_rng(13),
                  conditions=SamplingConditions(criteria="site_of_onset == 'Bulbar' and age > 84", min_acceptance=1e-5,
                                                max_draws=5_000_000))
    assert (ok.baseline["age"] > 84).all() and (ok.baseline["site_of_onset"] == "Bulbar").all()


def test_unknown_columns_and_max_draws(als):
    cond = SamplingConditions(criteria="agee > 50", enrich={"sexx == 'Female'": 2.0}, target_marginals={"ag": {
        "mean": 50, "sd": 5}})
    with pytest.raises(InvalidScenarioError) as info:
        als.draw(10, rng=np.random.default_rng(14), conditions=cond)
    msg = str(info.value)
    assert "3 problems" in msg and "criteria: unknown column `agee`; did you mean `age`" in msg
    assert "enrich[\"sexx == 'Female'\"]: unknown column `sexx`" in msg and "unknown column 'ag'" in msg
    with pytest.raises(InvalidScenarioError, match=r"need about .* beyond max_draws = 50,000"):
        als.draw(30_000, rng=np.random.default_rng(14),
                 conditions=SamplingConditions(criteria=ALS_CRITERIA, max_draws=50_000))


@pytest.mark.parametrize("target, fragment", [
    ({"sex": {"Female": 0.5, "Other": 0.5}}, "'Other' never occur(s) among the eligible pilot draws of `sex`"),
    ({"age": {"mean": 150, "sd": 5}}, "mean 150 is outside the range of the eligible source"),
    ({"age": {"bins": [100, 120], "probs": [1.0]}}, "outside the source's support"),
    ({"age": {"mean": 57, "sd": 40}}, "cannot all be reached"),
    ({"age": {"mean": 84.5, "sd": 0.1}}, "too far from the eligible source"),
    ({"sex": {"mean": 1, "sd": 1}}, "needs numbers: give category probabilities"),
])
def test_impossible_targets_fail_clearly(als, target, fragment):
    with pytest.raises(InvalidScenarioError) as info:
        als.draw(10, rng=np.random.default_rng(15), conditions=SamplingConditions(target_marginals=target))
    assert fragment in str(info.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"enrich": {"age > 60": 0}}, "give a positive number"),
    ({"enrich": {"age > 60": "2"}}, "give a positive number"),
    ({"enrich": ["age > 60"]}, "enrich must be a mapping"),
    ({"target_marginals": {"sex": {"Female": 0.6, "Male": 0.6}}}, "sum to 1 (they sum to 1.2)"),
    ({"target_marginals": {"age": {"mean": 60}}}, "{'mean': m, 'sd': s}"),
    ({"target_marginals": {"age": {"mean": 60, "sd": 0}}}, "sd > 0"),
    ({"target_marginals": {"age": {"bins": [50, 40], "probs": [1]}}}, "increasing"),
    ({"target_marginals": {"age": {"bins": [40, 50], "probs": [0.5, 0.5]}}}, "one probability per bin"),
    ({"target_marginals": {"age": "old"}}, "give {category: probability}"),
    ({"min_acceptance": 0}, "min_acceptance = 0"),
    ({"max_draws": 2.5}, "max_draws = 2.5"),
    ({"pilot_draws": 10}, "pilot_draws = 10"),
    ({"criteria": 3}, "criteria must be an expression"),
])
def test_conditions_are_validated_on_construction(kwargs, fragment):
    with pytest.raises(InvalidScenarioError) as info:
        SamplingConditions(**kwargs)
    assert fragment in str(info.value)


def test_expression_syntax_errors_surface_on_construction():
    with pytest.raises(CriteriaError) as info:
        SamplingConditions(criteria="age > 60 && sex == 'Female'")
    assert info.value.position == 9 and "eligibility criteria" in str(info.value)
    with pytest.raises(CriteriaError) as info:
        SamplingConditions(enrich={"f(age)": 2.0})
    assert info.value.position == 1 and "enrich expression 'f(age)'" in str(info.value)
    with pytest.raises(InvalidScenarioError, match="unknown key 'criterion'; did you mean 'criteria'"):
        SamplingConditions.from_dict({"criterion": "age > 1"})
    text = SamplingConditions(criteria="age > 1", enrich={"sex == 'Female'": 2},
                              target_marginals={"age": {"mean": 50, "sd": 5}}).describe()
    assert "age > 1" in text and "2 times as likely" in text and "mean 50, sd 5" in text
