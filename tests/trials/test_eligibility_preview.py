"""The live acceptance rate of eligibility criteria, checked against plain pandas masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohorts.builtin import load_builtin
from cohorts.criteria import CriteriaError
from cohorts.generators import get_generator
from trials.eligibility_preview import cohort_eligibility_frame, preview_eligibility, synthetic_eligibility_frame


@pytest.fixture(scope="module")
def als():
    return load_builtin("als-natural-history")


def test_frame_has_one_row_per_patient_with_the_first_visit_value(als):
    f = cohort_eligibility_frame(als)
    d = als.data
    assert len(f) == als.n_patients
    first = d.sort_values(["patient_id", "month"]).groupby("patient_id", sort=True)["alsfrs_r"].first()
    np.testing.assert_array_equal(f["alsfrs_r"].to_numpy(), first.to_numpy())
    assert set(f.columns) == set(als.schema.baseline) | {"alsfrs_r"}


def test_rate_and_clauses_equal_pandas_masks(als):
    f = cohort_eligibility_frame(als)
    text = "alsfrs_r >= 36 and site_of_onset == 'Bulbar' and age < 65"
    p = preview_eligibility(text, f, "historical patients")
    a, b, c = f["alsfrs_r"] >= 36, f["site_of_onset"] == "Bulbar", f["age"] < 65
    assert p.n == len(f) and p.n_eligible == int((a & b & c).sum())
    assert dict(p.clause_rates) == pytest.approx({"alsfrs_r >= 36": a.mean(), "site_of_onset == 'Bulbar'": b.mean(),
                                                  "age < 65": c.mean()})
    assert [r for _, r in p.clause_rates] == sorted(r for _, r in p.clause_rates)   # most restrictive first
    assert p.sentence().startswith(f"{p.rate:.1%} of 3,000 historical patients")
    assert p.hints == ()


def test_missing_values_are_not_eligible_and_typos_are_hinted():
    f = pd.DataFrame({"fvc": [80.0, np.nan, 50.0, 90.0], "site": ["Limb", "Limb", None, "Bulbar"]})
    p = preview_eligibility("fvc >= 60 or site == 'bulbar'", f, "rows")
    assert p.n_eligible == 2 and p.clause_rates == ()          # rows 0 and 3 only; one clause: no breakdown
    assert any("'bulbar' never occurs in `site`" in h for h in p.hints)


def test_bad_criteria_raise_the_parser_error(als):
    with pytest.raises(CriteriaError, match="unknown column"):
        preview_eligibility("agee > 3", cohort_eligibility_frame(als), "x")
    with pytest.raises(CriteriaError):
        preview_eligibility("__import__('os')", cohort_eligibility_frame(als), "x")


def test_synthetic_frame_is_seeded_and_has_the_criteria_columns(als):
    gen = get_generator("copula").fit(als.data, als.schema, rng=np.random.default_rng(1))
    a = synthetic_eligibility_frame(gen, 500, rng=np.random.default_rng(7))
    b = synthetic_eligibility_frame(gen, 500, rng=np.random.default_rng(7))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 500 and set(cohort_eligibility_frame(als).columns) <= set(a.columns)
    p = preview_eligibility("alsfrs_r >= 36", a, "synthetic patients")
    assert p.n_eligible == int((a["alsfrs_r"] >= 36).sum())
