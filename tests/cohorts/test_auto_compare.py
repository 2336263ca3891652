"""The comparison table and the ``auto`` family: same split for every family, the best refitted on all."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohorts.compare import COMPARISON_COLUMNS, compare_families
from cohorts.errors import InvalidDataError, InvalidScenarioError
from cohorts.evaluate import split_train_holdout
from cohorts.generators.auto import AutoGenerator
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def gbsg2():
    df = pd.read_csv(DATA / "gbsg2.csv")
    schema = CohortSchema.from_dict({"id": "patient_id",
                                     "baseline": {"numeric": ["age", "estrec", "pnodes", "progrec", "tsize"],
                                                  "categorical": ["horTh", "menostat", "tgrade"]},
                                     "outcome": {"type": "tte", "time": "rfs_days", "event": "event"}})
    return df, schema


def test_comparison_table_is_sorted_and_each_family_independent_of_the_others(gbsg2):
    df, schema = gbsg2
    train, holdout = split_train_holdout(df, schema, rng=np.random.default_rng(1))
    table, gens, reports = compare_families(train, holdout, schema, ["copula", "cart"], rng=np.random.default_rng(2))
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert set(table["family"]) == {"copula", "cart"} and set(gens) == set(reports) == {"copula", "cart"}
    assert table["detection_auc"].is_monotonic_increasing
    for row in table.itertuples():
        assert row.detection_auc == reports[row.family].fidelity.detection_auc
        assert row.outcome_distance == reports[row.family].fidelity.km.sup_distance
        assert 0 <= row.exact_copy_rate <= 1 and 0 <= row.membership_auc <= 1
    # a family's numbers depend on its position's rng child only, not on which families come after it
    alone, _, _ = compare_families(train, holdout, schema, ["copula"], rng=np.random.default_rng(2))
    assert alone["detection_auc"].iloc[0] == table.set_index("family").loc["copula", "detection_auc"]


def test_auto_picks_the_lowest_detection_auc_and_refits_on_all(gbsg2):
    df, schema = gbsg2
    g = AutoGenerator(candidates=("copula", "cart")).fit(df, schema, rng=np.random.default_rng(3))
    assert g.selected_ == g.scores_["family"].iloc[0]
    assert g.scores_["detection_auc"].iloc[0] == g.scores_["detection_auc"].min()
    assert g.chosen_.name == g.selected_ and g.chosen_.n_train_ == df["patient_id"].nunique()
    a = g.sample(50, rng=np.random.default_rng(4))
    b = g.sample(50, rng=np.random.default_rng(4))
    pd.testing.assert_frame_equal(a, b)
    assert "auto selected" in g.fit_notes_[0]


def test_auto_rejects_bad_settings(gbsg2):
    df, schema = gbsg2
    with pytest.raises(InvalidScenarioError, match="not generator families"):
        AutoGenerator(candidates=("copula", "gan9")).fit(df, schema, rng=np.random.default_rng(0))
    with pytest.raises(InvalidDataError, match="at least 20 patients"):
        AutoGenerator(candidates=("copula",)).fit(df.head(10), schema, rng=np.random.default_rng(0))
