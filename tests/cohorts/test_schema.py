"""CohortSchema: TOML round trip, every schema-file error, and column-role inference on real data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cohorts.errors import InvalidDataError
from cohorts.schema import CohortSchema, OutcomeSpec

DATA = Path(__file__).resolve().parents[1] / "data"

TTE_TOML = """
id = "patient_id"
[baseline]
numeric = ["age", "cd4"]
categorical = ["sex"]
[outcome]
type = "tte"
time = "time_days"
event = "death"
"""


def _schema(**outcome) -> dict:
    return {"id": "pid", "baseline": {"numeric": ["age"], "categorical": ["sex"]}, "outcome": outcome}


def _problems(d: dict) -> list[str]:
    with pytest.raises(InvalidDataError) as info:
        CohortSchema.from_dict(d, source="schema.toml")
    assert info.value.source == "schema.toml"
    return info.value.problems


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("outcome", [
    {"type": "tte", "time": "time_days", "event": "death", "time_unit": "days"},
    {"type": "continuous", "value": "alsfrs", "lower": 0.0, "upper": 48.0},
    {"type": "binary", "value": "responder"},
    {"type": "longitudinal", "visit": "month", "value": "alsfrs_r", "time_unit": "months", "lower": 0.0},
])
def test_toml_round_trip_gives_an_equal_schema(outcome):
    schema = CohortSchema.from_dict(_schema(**outcome))
    assert CohortSchema.from_toml(schema.to_toml()) == schema
    assert schema.to_dict()["outcome"] == outcome


def test_toml_round_trip_keeps_awkward_column_names(tmp_path):
    schema = CohortSchema.from_dict({"id": 'pa"tient', "baseline": {"numeric": ["a\\b", "größe"]},
                                     "outcome": {"type": "binary", "value": "y"}})
    path = tmp_path / "schema.toml"
    path.write_text(schema.to_toml(), encoding="utf-8")
    assert CohortSchema.from_toml(path) == schema


def test_from_toml_reads_text_and_files(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TTE_TOML, encoding="utf-8")
    from_file, from_text = CohortSchema.from_toml(path), CohortSchema.from_toml(TTE_TOML)
    assert from_file == from_text
    assert from_file.outcome == OutcomeSpec(type="tte", time="time_days", event="death")
    assert from_file.columns == ("patient_id", "age", "cd4", "sex", "time_days", "death")
    assert from_file.outcome.unit == "days"


# ----------------------------------------------------------------------------- schema-file errors
def test_unknown_keys_are_reported_with_suggestions():
    d = _schema(type="tte", time="t", event="e", evnt="x")
    d["baseilne"] = {}
    d["baseline"]["numerc"] = ["x"]
    problems = _problems(d)
    assert len(problems) == 3
    assert "unknown key 'baseilne' (did you mean 'baseline'?)" in problems[0]
    assert "unknown key 'baseline.numerc' (did you mean 'numeric'?)" in problems[1]
    assert "unknown key 'outcome.evnt' (did you mean 'event'?)" in problems[2]


@pytest.mark.parametrize("outcome_type, missing", [
    ("tte", ["time", "event"]),
    ("continuous", ["value"]),
    ("binary", ["value"]),
    ("longitudinal", ["value", "visit"]),
])
def test_missing_outcome_columns_are_named_for_each_type(outcome_type, missing):
    problems = _problems(_schema(type=outcome_type))
    assert problems == [f"'outcome.{key}' (a column name) is required for outcome type {outcome_type!r}"
                        for key in missing]


def test_bad_outcome_type_suggests_the_closest():
    [problem] = _problems(_schema(type="longitudnal", value="y", visit="m"))
    assert "'outcome.type' is 'longitudnal' (did you mean 'longitudinal'?)" in problem
    assert "tte, continuous, binary, longitudinal" in problem


def test_bad_time_unit_lists_the_allowed_units():
    [problem] = _problems(_schema(type="tte", time="t", event="e", time_unit="fortnights"))
    assert "'outcome.time_unit' is 'fortnights'" in problem
    assert "days, weeks, months, years" in problem


def test_time_unit_does_not_apply_to_a_binary_outcome():
    [problem] = _problems(_schema(type="binary", value="y", time_unit="days"))
    assert "time_unit" in problem


def test_duplicate_roles_are_reported():
    d = _schema(type="tte", time="age", event="death")
    d["baseline"]["categorical"] = ["sex", "pid"]
    [problem] = _problems(d)
    assert "['age', 'pid'] have more than one role" in problem


def test_bad_bounds_and_misplaced_columns_are_all_reported():
    problems = _problems(_schema(type="continuous", value="y", lower=10, upper=5, visit="month"))
    assert any("'outcome.visit' does not apply to outcome type 'continuous'" in p for p in problems)
    problems = _problems(_schema(type="continuous", value="y", lower=10, upper=5))
    assert problems == ["'outcome.lower' (10.0) must be below 'outcome.upper' (5.0)"]


def test_missing_id_and_outcome_table():
    problems = _problems({"baseline": {"numeric": "age"}})
    assert len(problems) == 3
    assert "key 'id' is missing" in problems[0]
    assert "'baseline.numeric' must be a list" in problems[1]
    assert "[outcome] table is missing" in problems[2]


def test_invalid_toml_names_the_line():
    with pytest.raises(InvalidDataError) as info:
        CohortSchema.from_toml('id = "pid"\n[outcome\ntype = "tte"\n')
    assert "not valid TOML" in str(info.value)
    assert "line 2" in str(info.value)


def test_missing_schema_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(InvalidDataError) as info:
        CohortSchema.from_toml(missing)
    assert f"schema file not found: {missing}" in str(info.value)
    assert info.value.source == str(missing)


def test_schema_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "s.toml"
    path.write_bytes('id = "pâtient"\n'.encode("latin-1"))
    with pytest.raises(InvalidDataError, match="not UTF-8"):
        CohortSchema.from_toml(path)


# ----------------------------------------------------------------------------- inference
def test_infer_va_lung():
    schema = CohortSchema.infer(pd.read_csv(DATA / "va_lung.csv"))
    assert schema.id == "patient_id"
    assert schema.outcome == OutcomeSpec(type="tte", time="time_days", event="death", time_unit="days")
    assert schema.numeric == ("Age_in_years", "Karnofsky_score", "Months_from_Diagnosis")
    assert schema.categorical == ("Celltype", "Prior_therapy", "Treatment")


def test_infer_gbsg2():
    schema = CohortSchema.infer(pd.read_csv(DATA / "gbsg2.csv"))
    assert (schema.id, schema.outcome.type, schema.outcome.time, schema.outcome.event) == \
        ("patient_id", "tte", "rfs_days", "event")
    assert schema.numeric == ("age", "estrec", "pnodes", "progrec", "tsize")
    assert schema.categorical == ("horTh", "menostat", "tgrade")


@pytest.mark.parametrize("hints", [{"id": "pid", "visit": "time", "value": "num_CD4"}, {}])
def test_infer_aids_long_with_and_without_hints(hints):
    schema = CohortSchema.infer(pd.read_csv(DATA / "aids_ddi_ddc_long.csv"), **hints)
    assert schema.id == "pid"
    assert (schema.outcome.type, schema.outcome.visit, schema.outcome.value) == ("longitudinal", "time", "num_CD4")
    # event and time2 change between visits, so they are not baseline covariates
    assert schema.numeric == ()
    assert schema.categorical == ("fac_drug", "fac_gender", "fac_prevOI", "fac_AZT")


def test_infer_continuous_and_binary_from_value():
    df = pd.DataFrame({"subject_id": [1, 2, 3, 4], "age": [50.5, 61.0, 70.2, 44.1], "grade": [1, 2, 3, 1],
                       "resp": [0, 1, 1, 0], "score": [10.5, 3.2, 7.7, 1.0]})
    binary = CohortSchema.infer(df, value="resp")
    assert binary.outcome == OutcomeSpec(type="binary", value="resp")
    assert binary.numeric == ("age", "score") and binary.categorical == ("grade",)
    assert CohortSchema.infer(df, value="score").outcome.type == "continuous"


def test_infer_explains_which_argument_to_pass():
    df = pd.DataFrame({"patient_id": [1, 2], "age": [50.0, 60.0]})
    with pytest.raises(InvalidDataError) as info:
        CohortSchema.infer(df)
    assert 'could not find the tte event column' in str(info.value)
    assert 'pass event="<column name>"' in str(info.value)
    assert "outcome_type= and value=" in str(info.value)

    with pytest.raises(InvalidDataError, match=r"pass id="):
        CohortSchema.infer(df.rename(columns={"patient_id": "who"}), value="age")


def test_infer_ambiguous_time_names_the_candidates():
    df = pd.DataFrame({"id": [1, 2, 3], "os_time": [3.5, 4.0, 9.1], "pfs_time": [1.5, 2.0, 7.2], "death": [1, 0, 1]})
    with pytest.raises(InvalidDataError) as info:
        CohortSchema.infer(df)
    assert ("several columns could be the tte time column (numeric, named like time/days): 'os_time', 'pfs_time'; "
            "pass time= to choose one") in str(info.value)
    assert CohortSchema.infer(df, time="os_time").numeric == ("pfs_time",)


def test_infer_rejects_unknown_hints_with_suggestions():
    df = pd.read_csv(DATA / "va_lung.csv")
    with pytest.raises(InvalidDataError) as info:
        CohortSchema.infer(df, id="patientid", outcome_type="survival", event="Death")
    problems = info.value.problems
    assert len(problems) == 3
    assert "id='patientid' is not a column of the data (did you mean 'patient_id'?)" in problems[0]
    assert "event='Death' is not a column of the data (did you mean 'death'?)" in problems[1]
    assert "outcome_type='survival' is unknown" in problems[2]


def test_toml_literal_round_trips_awkward_values():
    import tomllib

    from cohorts.schema import toml_literal
    for v in ['quote " and back\\slash', "line\nbreak\ttab\x7f", True, False, 1.5, float("inf"), 3, ["x", 2, 0.5], "é"]:
        assert tomllib.loads(f"v = {toml_literal(v)}")["v"] == v
