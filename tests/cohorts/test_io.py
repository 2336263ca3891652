"""cohorts.io: reading files, validating data against a schema (every problem at once), loading cohorts."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohorts.cohort import Cohort
from cohorts.errors import InvalidDataError
from cohorts.io import cohort_from_frame, load_cohort, read_table, validate
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"

TTE = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": ["age"], "categorical": ["sex"]},
                              "outcome": {"type": "tte", "time": "days", "event": "death"}})
LONG = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": ["age"], "categorical": ["arm"]},
                               "outcome": {"type": "longitudinal", "visit": "month", "value": "score",
                                           "lower": 0, "upper": 48}})


def _tte_frame(**changes) -> pd.DataFrame:
    df = pd.DataFrame({"pid": [1, 2, 3, 4], "age": [50.0, 61.5, np.nan, 70.0], "sex": ["m", "f", "f", "m"],
                       "days": [10.0, 200.0, 35.5, 400.0], "death": [1, 0, 1, 0]})
    for column, values in changes.items():
        df[column] = values
    return df


def _long_frame(**changes) -> pd.DataFrame:
    df = pd.DataFrame({"pid": [1, 1, 1, 2, 2], "age": [60.0] * 3 + [55.0] * 2, "arm": ["a"] * 3 + ["b"] * 2,
                       "month": [0, 3, 6, 0, 3], "score": [40.0, 38.0, 35.5, 44.0, 43.0]})
    for column, values in changes.items():
        df[column] = values
    return df


def _problems(df: pd.DataFrame, schema: CohortSchema = TTE) -> list[str]:
    with pytest.raises(InvalidDataError) as info:
        validate(df, schema, source="trial.csv")
    assert info.value.source == "trial.csv"
    assert all("\n" not in p for p in info.value.problems)
    return info.value.problems


def _read_error(data: bytes, filename: str = "upload.csv") -> InvalidDataError:
    with pytest.raises(InvalidDataError) as info:
        read_table(data, filename=filename)
    assert info.value.source == filename
    return info.value


# ----------------------------------------------------------------------------- validate: clean data
def test_clean_tte_frame_has_documented_dtypes_and_order():
    df = _tte_frame(extra=["x"] * 4)
    out = validate(df, TTE)
    assert list(out.columns) == ["pid", "age", "sex", "days", "death"]
    assert out["pid"].dtype == np.int64 and out["pid"].tolist() == [1, 2, 3, 4]
    assert out["age"].dtype == np.float64 and np.isnan(out["age"][2])  # missing baseline kept
    assert out["days"].dtype == np.float64
    assert out["death"].dtype == np.int64
    assert pd.api.types.is_string_dtype(out["sex"]) and out["sex"].tolist() == ["m", "f", "f", "m"]


def test_event_accepts_true_false_and_numeric_categories_lose_their_dot_zero():
    out = validate(_tte_frame(death=[True, False, "true", "0"], sex=[1.0, 2.0, np.nan, 1.0]), TTE)
    assert out["death"].tolist() == [1, 0, 1, 0]
    assert out["sex"].iloc[[0, 1, 3]].tolist() == ["1", "2", "1"] and pd.isna(out["sex"][2])


def test_numbers_stored_as_text_are_converted():
    out = validate(_tte_frame(age=["50", " 61.5", None, "70"]), TTE)
    assert out["age"].dtype == np.float64 and out["age"][1] == 61.5


def test_validate_does_not_mutate_its_input():
    df = _tte_frame(death=[True, False, True, False], age=["50", "61", "x", "70"])
    df.index = [10, 11, 12, 13]
    before = df.copy(deep=True)
    with pytest.raises(InvalidDataError):
        validate(df, TTE)
    df.loc[12, "age"] = "7"
    before.loc[12, "age"] = "7"
    validate(df, TTE)
    pd.testing.assert_frame_equal(df, before)


def test_long_data_drop_missed_visits_and_sort_by_id_then_visit():
    df = _long_frame(score=[40.0, np.nan, 35.5, 44.0, 43.0]).iloc[[3, 2, 0, 4, 1]]
    out = validate(df, LONG)
    assert out[["pid", "month"]].values.tolist() == [[1, 0], [1, 6], [2, 0], [2, 3]]
    assert out["score"].tolist() == [40.0, 35.5, 44.0, 43.0]
    assert out.index.tolist() == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- validate: one problem each
def test_missing_column_suggests_the_closest_name():
    [problem] = _problems(_tte_frame().rename(columns={"death": "Death"}))
    assert problem.startswith("column 'death' (tte event) is missing from the data (did you mean 'Death'?)")


def test_non_numeric_baseline_names_column_count_rows_and_values():
    [problem] = _problems(_tte_frame(age=["50", "abc", "n/a", "3,5"]))
    assert problem.startswith("column 'age' (baseline numeric): not a number in 3 data rows: "
                              "2 ('abc'), 3 ('n/a'), 4 ('3,5');")
    assert "'.' as decimal point" in problem


def test_long_lists_of_bad_rows_are_shortened():
    df = pd.DataFrame({"pid": range(10), "age": ["x"] * 8 + [1, 2], "sex": "m", "days": 1.0, "death": 0})
    [problem] = _problems(df)
    assert "8 data rows: 1 ('x'), 2 ('x'), 3 ('x'), 4 ('x'), 5 ('x') and 3 more;" in problem


@pytest.mark.parametrize("days, expected", [
    ([10.0, None, 3.0, 4.0], "column 'days' (tte time): missing in 1 data row: 2;"),
    ([10.0, -1.0, 3.0, -7.0], "column 'days' (tte time): negative in 2 data rows: 2 (-1), 4 (-7);"),
    ([10.0, "soon", 3.0, 4.0], "column 'days' (tte time): not a number in 1 data row: 2 ('soon');"),
])
def test_tte_time_problems(days, expected):
    [problem] = _problems(_tte_frame(days=days))
    assert problem.startswith(expected)


def test_event_must_be_zero_or_one():
    [problem] = _problems(_tte_frame(death=[1, 2, "yes", 0]))
    assert problem.startswith("column 'death' (tte event): not 0 or 1 in 2 data rows: 2 (2), 3 ('yes');")
    assert "1 = event, 0 = censored" in problem


def test_duplicate_and_missing_ids():
    problems = _problems(_tte_frame(pid=[7, 7, None, 9]))
    assert problems == [
        "column 'pid' (patient id): missing in 1 data row: 3; give every row its patient id",
        "column 'pid' (patient id): 1 id on more than one row: id 7 in 2 data rows: 1, 2; a tte outcome needs "
        "one row per patient (use type 'longitudinal' for visit data)",
    ]


def test_duplicate_id_visit_pairs():
    [problem] = _problems(_long_frame(month=[0, 3, 3, 0, 3]), LONG)
    assert problem.startswith("columns ('pid', 'month'): 1 (id, visit) pair on more than one row: "
                              "(1, 3) in 2 data rows: 2, 3;")


@pytest.mark.parametrize("month, expected", [
    ([0, None, 6, 0, 3], "column 'month' (longitudinal visit): missing in 1 data row: 2;"),
    ([0, 3, -6, 0, 3], "column 'month' (longitudinal visit): negative in 1 data row: 3 (-6);"),
    ([0, 3, 6, "M1", 3], "column 'month' (longitudinal visit): not a number in 1 data row: 4 ('M1');"),
])
def test_visit_problems(month, expected):
    [problem] = _problems(_long_frame(month=month), LONG)
    assert problem.startswith(expected)


def test_baseline_covariate_changing_within_a_patient():
    [problem] = _problems(_long_frame(arm=["a", "b", "a", "b", "b"]), LONG)
    assert problem.startswith("column 'arm' (baseline categorical) changes within 1 patient (id 1);")
    assert "same value on every row of a patient" in problem


def test_value_outside_bounds_and_not_numeric():
    problems = _problems(_long_frame(score=[40.0, 49.0, -1.0, "high", 43.0]), LONG)
    assert problems == [
        "column 'score' (longitudinal value): not a number in 1 data row: 4 ('high'); use plain numbers with '.' "
        "as decimal point and leave missing values empty",
        "column 'score' (longitudinal value): outside the schema bounds [0, 48] in 2 data rows: 2 (49), 3 (-1); "
        "correct the values or the outcome's lower/upper in the schema",
    ]


def test_continuous_value_may_not_be_missing():
    schema = CohortSchema.from_dict({"id": "pid", "outcome": {"type": "continuous", "value": "y"}})
    [problem] = _problems(pd.DataFrame({"pid": [1, 2], "y": [1.5, None]}), schema)
    assert problem.startswith("column 'y' (continuous value): missing in 1 data row: 2;")


def test_binary_value_must_be_zero_or_one():
    schema = CohortSchema.from_dict({"id": "pid", "outcome": {"type": "binary", "value": "resp"}})
    [problem] = _problems(pd.DataFrame({"pid": [1, 2, 3], "resp": [0, 1, 0.5]}), schema)
    assert problem.startswith("column 'resp' (binary value): not 0 or 1 in 1 data row: 3 (0.5);")
    assert "1 = yes, 0 = no" in problem
    out = validate(pd.DataFrame({"pid": [1, 2], "resp": [True, False]}), schema)
    assert out["resp"].dtype == np.int64 and out["resp"].tolist() == [1, 0]


def test_no_rows():
    assert _problems(_tte_frame().iloc[:0]) == ["the data have no rows; add one row per patient (or per visit)"]


def test_duplicate_column_in_a_frame():
    df = pd.concat([_tte_frame(), _tte_frame()[["age"]]], axis=1)
    [problem] = _problems(df)
    assert problem.startswith("column 'age' appears more than once")


# ----------------------------------------------------------------------------- validate: all problems at once
def test_several_problems_are_reported_together():
    df = pd.DataFrame({"pid": [1, 2, 2, 4], "Age": [50, 60, 70, 80], "sex": ["m", "f", "f", "m"],
                       "days": [5.0, -3.0, 7.0, None], "death": [0, 1, 3, 1]})
    problems = _problems(df)
    assert len(problems) == 5
    assert problems[0].startswith("column 'age' (baseline numeric) is missing from the data (did you mean 'Age'?)")
    assert problems[1].startswith("column 'days' (tte time): missing in 1 data row: 4;")
    assert problems[2].startswith("column 'days' (tte time): negative in 1 data row: 2 (-3);")
    assert problems[3].startswith("column 'death' (tte event): not 0 or 1 in 1 data row: 3 (3);")
    assert problems[4].startswith("column 'pid' (patient id): 1 id on more than one row: id 2 in 2 data rows: 2, 3;")
    with pytest.raises(InvalidDataError, match=r"^5 problems in trial\.csv:\n  - column 'age'"):
        validate(df, TTE, source="trial.csv")


def test_several_long_problems_are_reported_together():
    df = _long_frame(arm=["a", "a", "b", "b", "b"], month=[0, 0, 6, 0, -3], score=[1.0, 2.0, 3.0, 99.0, 4.0])
    problems = _problems(df, LONG)
    assert len(problems) == 4
    assert "negative in 1 data row: 5 (-3)" in problems[0]
    assert "outside the schema bounds [0, 48] in 1 data row: 4 (99)" in problems[1]
    assert "(1, 0) in 2 data rows: 1, 2" in problems[2]
    assert "column 'arm' (baseline categorical) changes within 1 patient (id 1)" in problems[3]


# ----------------------------------------------------------------------------- read_table
def test_csv_bytes_with_filename_and_bom():
    df = read_table("\ufeffpid,name\n1,Zoë\n".encode("utf-8"), filename="u.csv")
    assert list(df.columns) == ["pid", "name"] and df["name"][0] == "Zoë"


def test_semicolon_csv_and_file_objects():
    df = read_table(io.BytesIO(b"pid;age\n1;50.5\n"), filename="eu.csv")
    assert df.to_dict("list") == {"pid": [1], "age": [50.5]}


def test_latin1_bytes_give_an_encoding_message():
    error = _read_error("pid,name\n1,Zoë\n2,José\n".encode("latin-1"))
    assert "not UTF-8 text: byte 0xeb on line 2" in str(error)
    assert "re-save it as UTF-8" in str(error)


def test_empty_file():
    assert "the file is empty" in str(_read_error(b""))
    assert "the file is empty" in str(_read_error(b"\n\n  \n"))


def test_header_only_file():
    error = _read_error(b"pid,age,sex\n")
    assert error.problems == ["the file has a header (3 columns) but no data rows; add one row per patient "
                              "(or visit) under the header"]


def test_malformed_csv_names_the_line():
    error = _read_error(b"pid,age\n1,50\n2,60,extra\n")
    assert error.problems[0].startswith("malformed CSV: line 3 has 3 fields but the header has 2;")


def test_repeated_header_names_are_reported():
    error = _read_error(b"pid,age,age\n1,2,3\n")
    assert "column name 'age' appears more than once in the header (columns 2, 3)" in str(error)


def test_missing_file_and_excel_file(tmp_path):
    with pytest.raises(InvalidDataError, match="file not found") as info:
        read_table(tmp_path / "nope.csv")
    assert info.value.source == "nope.csv"
    assert "save the sheet as 'CSV UTF-8'" in str(_read_error(b"PK\x03\x04rest", filename="book.xlsx"))


def test_parquet_round_trip_by_extension_and_by_magic_bytes(tmp_path):
    df = _tte_frame()
    path = tmp_path / "cohort.parquet"
    df.to_parquet(path)
    pd.testing.assert_frame_equal(read_table(path), df)
    pd.testing.assert_frame_equal(read_table(path.read_bytes(), filename="upload"), df)
    cohort = load_cohort(path, TTE)
    assert cohort.n_patients == 4 and cohort.source == "cohort.parquet"


def test_damaged_parquet():
    data = io.BytesIO()
    _tte_frame().to_parquet(data)
    error = _read_error(data.getvalue()[:40], filename="cut.parquet")
    assert "could not read the Parquet file" in str(error)
    assert "does not start with the Parquet marker" in str(_read_error(b"pid\n1\n", filename="x.parquet"))


# ----------------------------------------------------------------------------- cohorts from real files
def test_va_lung_loads_with_the_hash_of_its_bytes():
    path = DATA / "va_lung.csv"
    schema = CohortSchema.infer(pd.read_csv(path))
    cohort = load_cohort(path, schema, citation="Kalbfleisch & Prentice 1980")
    assert isinstance(cohort, Cohort)
    assert cohort.name == "va_lung" and cohort.n_patients == 137 and len(cohort.data) == 137
    assert cohort.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cohort.data["death"].sum() == 128  # 128 deaths, 9 censored (Kalbfleisch & Prentice)


def test_aids_long_loads_and_drops_missing_visit_values():
    path = DATA / "aids_ddi_ddc_long.csv"
    schema = CohortSchema.infer(pd.read_csv(path), id="pid", visit="time", value="num_CD4")
    cohort = load_cohort(path.read_bytes(), schema, filename="aids.csv", name="aids")
    assert cohort.n_patients == 467 and len(cohort.data) == 1405
    assert cohort.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    holes = pd.read_csv(path)
    holes.loc[[0, 5], "num_CD4"] = np.nan
    assert len(validate(holes, schema)) == 1403
    assert validate(holes, schema)["num_CD4"].notna().all()


def test_gbsg2_loads():
    path = DATA / "gbsg2.csv"
    cohort = load_cohort(path, CohortSchema.infer(pd.read_csv(path)))
    assert cohort.n_patients == 686


def test_load_cohort_reports_data_problems_with_the_file_name():
    with pytest.raises(InvalidDataError) as info:
        load_cohort(b"pid,age,sex,days,death\n1,50,m,10,1\n2,abc,f,-1,1\n", TTE, filename="mine.csv")
    assert info.value.source == "mine.csv" and len(info.value.problems) == 2
    assert str(info.value).startswith("2 problems in mine.csv:")


def test_cohort_from_frame_validates_and_hashes_the_clean_frame():
    cohort = cohort_from_frame(_tte_frame(), TTE, name="demo", source="unit test")
    assert cohort.n_patients == 4 and cohort.data["death"].dtype == np.int64
    assert len(cohort.sha256) == 64
    with pytest.raises(InvalidDataError) as info:
        cohort_from_frame(_tte_frame(death=[1, 0, 5, 0]), TTE, name="demo")
    assert info.value.source == "demo"
