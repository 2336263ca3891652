"""The generator contract, run over every registered generator and every outcome type.

Real data: VA lung and GBSG2 (tte), the ddI/ddC trial's repeated sqrt(CD4) (longitudinal); small synthetic
frames cover continuous and binary outcomes, integer / category / string / missing baseline columns and an
ALSFRS-R-like bounded integer score.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cohorts.generators as gens
from cohorts.errors import InvalidDataError, NotFittedError, UnknownNameError
from cohorts.generators import (BinaryLatent, ContinuousLatent, SurvivalLatent, TrajectoryLatent, available_generators,
                                get_generator)
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"


def _schema(id, numeric, categorical, **outcome) -> CohortSchema:
    return CohortSchema.from_dict({"id": id, "baseline": {"numeric": numeric, "categorical": categorical},
                                   "outcome": outcome})


def _small_baseline(n: int, rng: np.random.Generator) -> pd.DataFrame:
    age = rng.normal(58, 11, n).round(1)
    age[rng.random(n) < 0.1] = np.nan
    stage = pd.Series(pd.Categorical(rng.choice(["I", "II", "III"], n, p=[0.2, 0.5, 0.3]),
                                     categories=["I", "II", "III", "IV"], ordered=True))
    sex = pd.Series(rng.choice(["female", "male"], n), dtype="str")
    sex[rng.random(n) < 0.05] = np.nan
    site = rng.choice(["bulbar", "limb", "rare"], n, p=[0.3, 0.68, 0.02])
    return pd.DataFrame({"pid": np.arange(1, n + 1), "age": age, "n_relapses": rng.poisson(2, n),
                         "stage": stage, "sex": sex, "site": site})


def _continuous_case():
    rng = np.random.default_rng(11)
    df = _small_baseline(250, rng)
    df["score"] = np.clip(np.rint(30 + 0.1 * np.nan_to_num(df["age"] - 58) + rng.normal(0, 6, 250)), 0, 48).astype(int)
    return df, _schema("pid", ["age", "n_relapses"], ["stage", "sex", "site"], type="continuous", value="score",
                       lower=0, upper=48)


def _binary_case():
    rng = np.random.default_rng(12)
    df = _small_baseline(250, rng)
    p = 1 / (1 + np.exp(-(-0.5 + 0.8 * (df["site"] == "bulbar"))))
    df["response"] = np.where(rng.random(250) < p, "yes", "no")
    df["response"] = df["response"].astype("str")
    return df, _schema("pid", ["age", "n_relapses"], ["stage", "sex", "site"], type="binary", value="response")


def _alsfrs_case():
    rng = np.random.default_rng(13)
    base = _small_baseline(150, rng)
    months = np.array([0, 1, 2, 3, 6, 9, 12])
    start = rng.normal(37, 5, 150)
    slope = rng.normal(-1.0, 0.5, 150)
    y = np.clip(np.rint(start[:, None] + slope[:, None] * months + rng.normal(0, 1.5, (150, 7))), 0, 48)
    last = rng.integers(2, 8, 150)
    rows = [(i, j) for i in range(150) for j in range(last[i])]
    i, j = np.array(rows).T
    df = base.iloc[i].reset_index(drop=True)
    df["month"], df["alsfrs_r"] = months[j], y[i, j].astype(np.int64)
    return df, _schema("pid", ["age", "n_relapses"], ["stage", "sex", "site"], type="longitudinal",
                       visit="month", value="alsfrs_r", lower=0, upper=48)


CASES = {
    "va_lung_tte": lambda: (pd.read_csv(DATA / "va_lung.csv"), _schema(
        "patient_id", ["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"],
        ["Celltype", "Prior_therapy", "Treatment"], type="tte", time="time_days", event="death")),
    "gbsg2_tte": lambda: (pd.read_csv(DATA / "gbsg2.csv"), _schema(
        "patient_id", ["age", "estrec", "pnodes", "progrec", "tsize"], ["horTh", "menostat", "tgrade"],
        type="tte", time="rfs_days", event="event")),
    "aids_longitudinal": lambda: (pd.read_csv(DATA / "aids_ddi_ddc_long.csv"), _schema(
        "pid", [], ["fac_drug", "fac_gender", "fac_prevOI", "fac_AZT"], type="longitudinal", visit="time",
        value="num_CD4")),
    "alsfrs_longitudinal": _alsfrs_case,
    "small_continuous": _continuous_case,
    "small_binary": _binary_case,
}
LATENT = {"tte": SurvivalLatent, "longitudinal": TrajectoryLatent, "continuous": ContinuousLatent,
          "binary": BinaryLatent}
_FITTED: dict = {}
#: cheaper settings for the contract run only (the contract does not depend on them)
CONTRACT_PARAMS = {"auto": {"candidates": ("copula", "cart")}, "tvae": {"epochs": 40}, "ctgan": {"epochs": 20}}


def contract_generator(name):
    return get_generator(name, **CONTRACT_PARAMS.get(name, {}))


def fitted(name, case):
    key = (name, case)
    if key not in _FITTED:
        data, schema = CASES[case]()
        _FITTED[key] = (data, schema, contract_generator(name).fit(data, schema, rng=np.random.default_rng(0)))
    return _FITTED[key]


@pytest.fixture(params=[(g, c) for g in available_generators() for c in CASES], ids=lambda p: f"{p[0]}-{p[1]}")
def model(request):
    return fitted(*request.param)


def test_registry_and_public_names():
    assert {"default", "copula"} <= set(available_generators())
    assert set(gens.__all__) == {"CohortGenerator", "register", "get_generator", "available_generators", "REGISTRY",
                                 "DefaultGenerator", "CopulaGenerator", "CARTGenerator", "SequentialGenerator", "TVAEGenerator", "CTGANGenerator", "AutoGenerator",
                                 "GaussianCopula", "WeibullPH", "TrajectoryModel", "PatientDraw",
                                 "SurvivalLatent", "TrajectoryLatent", "ContinuousLatent", "BinaryLatent"}
    with pytest.raises(UnknownNameError, match="default"):
        get_generator("nope")
    g = get_generator("default", max_discrete_levels=10)
    assert g.get_params()["max_discrete_levels"] == 10 and g.description


@pytest.mark.parametrize("name", available_generators())
def test_unfitted_generator_refuses_to_sample(name):
    data, schema = CASES["va_lung_tte"]()
    g = contract_generator(name)
    with pytest.raises(NotFittedError):
        g.sample(5, rng=np.random.default_rng(0))
    with pytest.raises(NotFittedError):
        g.draw(5, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        g.fit(data, schema, rng=42)
    assert g.fit(data, schema, rng=np.random.default_rng(0)) is g


def test_same_seed_same_frame_and_different_seed_differs(model):
    _, _, g = model
    a = g.sample(300, rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a, g.sample(300, rng=np.random.default_rng(5)))
    assert not a.equals(g.sample(300, rng=np.random.default_rng(6)))


def test_sampling_does_not_mutate_and_pickle_round_trip(model):
    _, _, g = model
    before = pickle.dumps(g)
    a = g.sample(200, rng=np.random.default_rng(1))
    g.draw(50, rng=np.random.default_rng(2))
    assert pickle.dumps(g) == before
    pd.testing.assert_frame_equal(a, pickle.loads(before).sample(200, rng=np.random.default_rng(1)))


def test_output_format_dtypes_and_domains(model):
    data, schema, g = model
    n = 400
    out = g.sample(n, rng=np.random.default_rng(3))
    o = schema.outcome
    assert list(out.columns) == list(schema.columns)
    assert out[schema.id].nunique() == n and out[schema.id].iloc[0] == "S000001"
    assert set(out[schema.id]) == {f"S{i:06d}" for i in range(1, n + 1)}
    for c in schema.baseline + o.columns:
        assert out[c].dtype == data[c].dtype, c
    for c in schema.categorical:
        assert set(out[c].dropna()) <= set(data[c].dropna()), c
        assert out[c].isna().any() == data[c].isna().any() or data[c].isna().mean() < 0.02
    for c in schema.numeric:
        v, ref = out[c].dropna(), data[c].dropna()
        assert v.min() >= ref.min() and v.max() <= ref.max(), c
        if np.all(ref == np.round(ref)):
            assert np.all(v == np.round(v)), c
    if o.type == "tte":
        assert set(out[o.event].unique()) <= {0, 1} and 0 < out[o.event].mean() < 1
        assert out[o.time].min() >= data[o.time].min() and out[o.time].max() <= data[o.time].max()
    elif o.type == "binary":
        assert set(out[o.value]) <= set(data[o.value])
    else:
        v = out[o.value]
        lo = o.lower if o.lower is not None else data[o.value].min()
        hi = o.upper if o.upper is not None else data[o.value].max()
        assert v.min() >= lo and v.max() <= hi
        if np.all(data[o.value] == np.round(data[o.value])):
            assert np.all(v == np.round(v))
    if o.type == "longitudinal":
        assert set(out[o.visit]) <= set(data[o.visit])
        assert (out.groupby(schema.id)[o.visit].min() == data[o.visit].min()).all()
        per = out.groupby(schema.id)[list(schema.baseline)].nunique(dropna=False)
        assert (per <= 1).all().all()  # baseline repeated on every visit of a patient


def test_draw_gives_baseline_and_latent_of_the_outcome_type(model):
    _, schema, g = model
    d = g.draw(64, rng=np.random.default_rng(4))
    assert len(d) == 64 and list(d.baseline.columns) == list(schema.baseline)
    assert isinstance(d.outcome, LATENT[schema.outcome.type])
    sub = d.outcome.take(np.arange(10))
    assert type(sub) is type(d.outcome)
    pickle.loads(pickle.dumps(d))  # draws travel to worker processes


def test_fit_is_reproducible_given_the_seed():
    data, schema = CASES["gbsg2_tte"]()
    a = get_generator("default").fit(data, schema, rng=np.random.default_rng(9))
    b = get_generator("default").fit(data, schema, rng=np.random.default_rng(9))
    pd.testing.assert_frame_equal(a.sample(100, rng=np.random.default_rng(0)),
                                  b.sample(100, rng=np.random.default_rng(0)))


def test_missing_schema_columns_and_no_events_are_clear_errors():
    data, schema = CASES["va_lung_tte"]()
    with pytest.raises(InvalidDataError, match="Celltype"):
        get_generator("default").fit(data.drop(columns="Celltype"), schema, rng=np.random.default_rng(0))
    with pytest.raises(InvalidDataError, match="no events"):
        get_generator("default").fit(data.assign(death=0), schema, rng=np.random.default_rng(0))


def test_missingness_and_rare_categories_are_reproduced():
    data, schema, g = fitted("default", "small_continuous")
    out = g.sample(5000, rng=np.random.default_rng(8))
    for c in ("age", "sex"):
        assert abs(out[c].isna().mean() - data[c].isna().mean()) < 0.03
    assert (out["site"] == "rare").mean() > 0.005  # a 2 % category is kept
    assert out["stage"].dtype == data["stage"].dtype and "IV" not in set(out["stage"])


def test_save_load_round_trip_samples_identically(model, tmp_path):
    from cohorts.generators.persist import load_generator, save_generator
    _, _, g = model
    loaded = load_generator(save_generator(g, tmp_path / "g", training_data_sha256="0" * 64, seed=0))
    assert type(loaded) is type(g) and loaded.get_params() == g.get_params()
    pd.testing.assert_frame_equal(loaded.sample(200, rng=np.random.default_rng(3)),
                                  g.sample(200, rng=np.random.default_rng(3)))
