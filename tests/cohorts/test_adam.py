"""SAS XPORT reading (cohorts.io.read_table) and the CDISC ADaM importer (cohorts.adam.load_adam).

Fixtures: tests/cohorts/fixtures/adam/ (made-up study ALS201, written by fixtures/make_fixtures.py; the XPORT
files by fixtures/xport.py, a small TS-140 writer). Expected values below were read off the generator's
explicit settings (see make_fixtures.adam_tables), not off the importer's output.
"""

import hashlib
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohorts.adam import ImportedCohort, load_adam
from cohorts.cohort import Cohort
from cohorts.errors import InvalidDataError
from cohorts.io import load_cohort, read_table
from cohorts.schema import CohortSchema

FIX = Path(__file__).parent / "fixtures"
ADAM = FIX / "adam"
MONTH = 365.25 / 12


def _fixture_module(name):
    spec = importlib.util.spec_from_file_location(f"_fixtures_{name}", FIX / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# =========================================================================== XPORT reading
def test_xpt_reads_same_values_as_csv():
    for name, rows, cols in (("adsl", 30, 14), ("adtte", 59, 6), ("adqs", 302, 9)):
        xpt, csv = read_table(ADAM / f"{name}.xpt"), read_table(ADAM / f"{name}.csv")
        assert xpt.shape == (rows, cols) == csv.shape  # the last row is not lost (pandas' padding heuristic)
        for col in xpt.columns:
            if pd.api.types.is_numeric_dtype(csv[col]):
                np.testing.assert_array_equal(xpt[col].to_numpy(float), csv[col].to_numpy(float))
            else:
                assert xpt[col].fillna("<missing>").tolist() == csv[col].fillna("<missing>").tolist()


def test_xpt_zero_is_zero_and_blank_text_is_missing():
    tte = read_table(ADAM / "adtte.xpt")
    assert (tte["CNSR"] == 0).sum() == 27 and tte["CNSR"].min() == 0.0  # not 5.4e-79 (pandas-dev/pandas#50670)
    qs = read_table(ADAM / "adqs.xpt")
    assert qs["ABLFL"].isna().sum() == 242 and set(qs["ABLFL"].dropna()) == {"Y"}
    assert qs["AVAL"].isna().sum() == 1 and qs["DTYPE"].tolist().count("LOCF") == 1


def test_xpt_detected_by_header_whatever_the_name():
    raw = (ADAM / "adsl.xpt").read_bytes()
    df = read_table(raw, filename="adsl.csv")
    assert df.shape == (30, 14) and df.loc[0, "USUBJID"] == "ALS201-001" and df.loc[0, "AGE"] == 48.0


def test_load_cohort_reads_xpt_with_sha_of_file():
    schema = CohortSchema.from_dict({"id": "USUBJID", "baseline": {"numeric": ["AGE"], "categorical": ["SEX"]},
                                     "outcome": {"type": "continuous", "value": "BMIBL"}})
    cohort = load_cohort(ADAM / "adsl.xpt", schema)
    assert cohort.n_patients == 30 and cohort.data["AGE"].isna().sum() == 1
    assert cohort.sha256 == hashlib.sha256((ADAM / "adsl.xpt").read_bytes()).hexdigest()


@pytest.mark.parametrize("cut", [1, 79, 81, 400, 1000])
def test_truncated_xpt_is_a_clear_error(cut):
    raw = (ADAM / "adtte.xpt").read_bytes()[:-cut]
    with pytest.raises(InvalidDataError) as err:
        read_table(raw, filename="adtte.xpt")
    assert err.value.source == "adtte.xpt"
    assert "truncated or damaged" in str(err.value) and "XPORT version 5" in str(err.value)


def test_not_an_xpt_file_is_a_clear_error():
    with pytest.raises(InvalidDataError, match="does not start with the SAS XPORT library header"):
        read_table(b"USUBJID,AGE\nA,1\n", filename="adsl.xpt")
    v8 = b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!" + b"0" * 32
    with pytest.raises(InvalidDataError, match="version 8"):
        read_table(v8, filename="adsl.xpt")
    with pytest.raises(InvalidDataError, match=r"SAS data sets \(\.sas7bdat\) are not supported.*XPORT"):
        read_table(b"\x00" * 100, filename="adsl.sas7bdat")


def test_xpt_with_two_datasets_is_refused():
    raw = (ADAM / "adsl.xpt").read_bytes()
    with pytest.raises(InvalidDataError, match="holds 2 datasets"):
        read_table(raw + raw[240:], filename="both.xpt")


def test_damaged_xpt_never_escapes_as_a_raw_exception():
    raw = (ADAM / "adtte.xpt").read_bytes()
    rng = np.random.default_rng(7)
    errors = 0
    for _ in range(150):
        damaged = bytearray(raw)
        for i in rng.integers(0, 1200, 3):  # headers and NAMESTR records
            damaged[i] = int(rng.integers(0, 256))
        try:
            read_table(bytes(damaged), filename="adtte.xpt")
        except InvalidDataError:
            errors += 1
    assert errors > 20  # many damages are caught; none raised anything else


def test_empty_xpt_dataset_says_no_rows():
    writer = _fixture_module("xport")
    empty = pd.DataFrame({"USUBJID": pd.Series([], dtype=str), "AGE": pd.Series([], dtype=float)})
    raw = writer.write_xport(empty, name="ADSL")
    with pytest.raises(InvalidDataError, match=r"header \(2 columns\) but no data rows"):
        read_table(raw, filename="adsl.xpt")


def test_fixture_writer_round_trips_ibm_floats():
    writer = _fixture_module("xport")
    values = [0.0, 1.0, -1.0, 0.1, 123.456, 1e-5, 2.0 ** 40, np.nan]
    df = read_table(writer.write_xport(pd.DataFrame({"X": values, "T": list("abcdefgh")}), name="T"),
                    filename="t.xpt")
    np.testing.assert_array_equal(df["X"].to_numpy(), np.array(values))


# =========================================================================== ADaM: time to event
def test_adtte_placebo_cohort():
    c = load_adam(ADAM / "adsl.xpt", adtte=ADAM / "adtte.xpt", paramcd="OS", arm="Placebo")
    assert isinstance(c, ImportedCohort) and isinstance(c, Cohort)
    assert c.schema.id == "USUBJID" and c.schema.outcome.type == "tte"
    assert (c.schema.outcome.time, c.schema.outcome.event, c.schema.outcome.unit) == ("AVAL", "EVENT", "days")
    assert c.schema.numeric == ("AGE", "BMIBL", "FVCBL") and c.schema.categorical == ("SEX", "RACE")
    assert c.n_patients == 14  # 15 placebo subjects, ALS201-029 has no ADTTE record
    row = c.data.set_index("USUBJID")
    assert row.loc["ALS201-001", ["AVAL", "EVENT", "AGE", "BMIBL"]].tolist() == [412.0, 1, 48.0, 24.2]
    assert row.loc["ALS201-003", ["AVAL", "EVENT"]].tolist() == [300.0, 0]  # CNSR 2: censored
    assert row.loc["ALS201-001", "SEX"] == "M" and "ALS201-002" not in row.index
    counts = c.import_report.counts
    assert (counts["adsl_subjects"], counts["other_arm"], counts["no_outcome"], counts["not_in_adsl"]) == \
        (30, 15, 1, 1)
    assert any("ALS201-099" in n for n in c.import_report.notes)
    assert "ALS201-029" in c.description


def test_adtte_from_csv_equals_xpt_and_sha_covers_both_files():
    x = load_adam(ADAM / "adsl.xpt", adtte=ADAM / "adtte.xpt", paramcd="os", arm="placebo")
    c = load_adam(ADAM / "adsl.csv", adtte=ADAM / "adtte.csv", paramcd="OS", arm="Placebo")
    pd.testing.assert_frame_equal(x.data, c.data)
    both = (ADAM / "adsl.xpt").read_bytes() + (ADAM / "adtte.xpt").read_bytes()
    assert x.sha256 == hashlib.sha256(both).hexdigest() != c.sha256
    assert x.import_report.files[1] == ("adtte.xpt", hashlib.sha256((ADAM / "adtte.xpt").read_bytes()).hexdigest())


def test_arm_var_and_explicit_baseline():
    c = load_adam(ADAM / "adsl.csv", adtte=ADAM / "adtte.csv", paramcd="TTDTRACH", arm="Placebo", arm_var="trt01a",
                  baseline_numeric=["age"], baseline_categorical=["onsetloc", "SEX"])
    assert c.n_patients == 15 and "ALS201-002" in set(c.data["USUBJID"])  # actual treatment: placebo
    assert c.schema.numeric == ("AGE",) and c.schema.categorical == ("ONSETLOC", "SEX")
    assert c.data.set_index("USUBJID").loc["ALS201-001", ["AVAL", "EVENT"]].tolist() == [67.0, 0]


def test_all_arms_and_weeks_unit_from_frames():
    adtte = read_table(ADAM / "adtte.csv").assign(AVALU="WEEKS")
    c = load_adam(read_table(ADAM / "adsl.csv"), adtte=adtte, paramcd="OS")
    assert c.n_patients == 29 and c.schema.outcome.unit == "weeks"
    frames = (read_table(ADAM / "adsl.csv"), adtte)
    csv = b"".join(f.to_csv(index=False, lineterminator="\n").encode() for f in frames)
    assert c.sha256 == hashlib.sha256(csv).hexdigest()


def test_imported_cohort_pickles_with_its_report():
    c = load_adam(ADAM / "adsl.csv", adtte=ADAM / "adtte.csv", paramcd="OS")
    back = pickle.loads(pickle.dumps(c))
    assert back.import_report == c.import_report and back.sha256 == c.sha256
    pd.testing.assert_frame_equal(back.data, c.data)


# =========================================================================== ADaM: BDS visits
def test_bds_by_avisitn():
    c = load_adam(ADAM / "adsl.xpt", bds=ADAM / "adqs.xpt", paramcd="ALSFRSR", visit_unit="weeks")
    assert c.schema.outcome.type == "longitudinal" and (c.schema.outcome.visit, c.schema.outcome.unit) == \
        ("AVISITN", "weeks")
    g = {k: v for k, v in c.data.groupby("USUBJID")}
    assert g["ALS201-001"][["AVISITN", "AVAL"]].values.tolist() == [[0, 37], [4, 36], [12, 33]]  # wk 24 no AVAL
    assert g["ALS201-003"]["AVISITN"].tolist() == [0, 4, 12]  # LOCF record dropped
    assert g["ALS201-005"][["AVISITN", "AVAL"]].values.tolist() == [[0, 35], [4, 34], [12, 31], [24, 27]]
    assert g["ALS201-007"][["AVISITN", "AVAL"]].values.tolist()[0] == [0, 34]  # flagged baseline kept, not 99
    counts = c.import_report.counts
    assert (counts["derived_records"], counts["pre_baseline_records"], counts["missing_aval"],
            counts["duplicate_visits"]) == (1, 30, 1, 2)
    assert c.n_patients == 30 and len(c.data) == 30 * 4 - 2


def test_bds_by_study_day_in_months():
    c = load_adam(ADAM / "adsl.csv", bds=ADAM / "adqs.csv", paramcd="ALSFRSR", visit="ADY", arm="Placebo")
    assert (c.schema.outcome.visit, c.schema.outcome.unit) == ("MONTH", "months")
    g = {k: v for k, v in c.data.groupby("USUBJID")}
    np.testing.assert_allclose(g["ALS201-001"]["MONTH"], [0, 28 / MONTH, 84 / MONTH])
    np.testing.assert_allclose(g["ALS201-005"]["MONTH"], [0, 29 / MONTH, 85 / MONTH, 89 / MONTH, 169 / MONTH])
    assert g["ALS201-005"]["AVAL"].tolist() == [35, 34, 31, 20, 27]  # unscheduled day-90 visit kept
    assert g["ALS201-007"]["AVAL"].tolist()[0] == 34  # ABLFL record wins month 0
    assert c.n_patients == 15 and c.import_report.counts["duplicate_visits"] == 1


# =========================================================================== ADaM: errors
def test_several_parameters_need_paramcd():
    with pytest.raises(InvalidDataError) as err:
        load_adam(ADAM / "adsl.csv", adtte=ADAM / "adtte.csv")
    assert "holds 2 parameters ('OS' (30 rows), 'TTDTRACH' (29 rows)); choose one with paramcd=" in str(err.value)
    with pytest.raises(InvalidDataError, match=r"PARAMCD 'ALSFRS' is not in the file \(did you mean 'ALSFRSR'"):
        load_adam(ADAM / "adsl.csv", bds=ADAM / "adqs.csv", paramcd="ALSFRS")


def test_unknown_arm_lists_the_arms():
    with pytest.raises(InvalidDataError) as err:
        load_adam(ADAM / "adsl.xpt", adtte=ADAM / "adtte.xpt", paramcd="OS", arm="Plcebo")
    assert "no subject has TRT01P = 'Plcebo'; arms found: 'Placebo' (15), 'Drug 100 mg' (15)" in str(err.value)


def test_missing_columns_are_named_with_the_closest():
    adsl = read_table(ADAM / "adsl.csv").rename(columns={"USUBJID": "USUBJ_ID"})
    adtte = read_table(ADAM / "adtte.csv").drop(columns=["CNSR"])
    with pytest.raises(InvalidDataError) as err:
        load_adam(adsl, adtte=adtte, paramcd="OS", baseline_numeric=["WEIGHTBL"], arm="Placebo", arm_var="ARMCD")
    problems = err.value.problems
    assert "ADSL (DataFrame): column 'USUBJID' is missing (did you mean 'USUBJ_ID'?); rename the column in the " \
           "file" in problems
    assert "ADSL (DataFrame): column 'WEIGHTBL' (a baseline covariate you named) is missing; check " \
           "baseline_numeric= / baseline_categorical= or the file" in problems
    assert any("column 'ARMCD' (arm_var) is missing (did you mean 'ARM'?); pass the ADSL variable" in p
               for p in problems)
    assert any(p.startswith("ADTTE (DataFrame): column 'CNSR' is missing") for p in problems)
    assert len(problems) == 4


def test_bad_values_are_reported_with_rows():
    adtte = read_table(ADAM / "adtte.csv").astype({"AVAL": object})
    adtte.loc[2, "AVAL"] = "n/a"
    adtte.loc[4, "CNSR"] = -1
    adtte.loc[6, "AVALU"] = "FORTNIGHTS"
    with pytest.raises(InvalidDataError) as err:
        load_adam(ADAM / "adsl.csv", adtte=adtte, paramcd="OS")
    text = str(err.value)
    assert "column 'AVAL' is not a number in row 3 ('n/a')" in text
    assert "CNSR must be 0 (event) or a positive integer (censored); check row 5" in text
    assert "AVALU must hold one time unit" in text and "FORTNIGHTS" in text
    assert len(err.value.problems) == 3  # 'n/a' is not also reported as a missing time


def test_duplicate_subjects_are_errors():
    adsl = pd.concat([read_table(ADAM / "adsl.csv"), read_table(ADAM / "adsl.csv").iloc[[3]]])
    with pytest.raises(InvalidDataError, match="USUBJID ALS201-004 on more than one row; ADSL needs one row"):
        load_adam(adsl, adtte=ADAM / "adtte.csv", paramcd="OS")
    adtte = pd.concat([read_table(ADAM / "adtte.csv"), read_table(ADAM / "adtte.csv").iloc[[0]]])
    with pytest.raises(InvalidDataError, match="USUBJID ALS201-001 on more than one row for the parameter"):
        load_adam(ADAM / "adsl.csv", adtte=adtte, paramcd="OS")


def test_empty_after_filtering():
    adtte = read_table(ADAM / "adtte.csv")
    drug_only = adtte[adtte["USUBJID"].str[-3:].astype(int) % 2 == 0]
    with pytest.raises(InvalidDataError, match="no subject is left: 30 in adsl.csv, 15 after the arm filter"):
        load_adam(ADAM / "adsl.csv", adtte=drug_only, paramcd="OS", arm="Placebo")


def test_outcome_dataset_choice_is_checked():
    with pytest.raises(InvalidDataError, match="exactly one outcome dataset"):
        load_adam(ADAM / "adsl.csv")
    with pytest.raises(InvalidDataError, match="cannot be read"):
        load_adam(ADAM / "nope.xpt", adtte=ADAM / "adtte.xpt")
    with pytest.raises(InvalidDataError, match="truncated or damaged"):
        load_adam(("adsl.xpt", (ADAM / "adsl.xpt").read_bytes()[:-5]), adtte=ADAM / "adtte.xpt", paramcd="OS")


def test_fixtures_are_reproducible():
    built = _fixture_module("make_fixtures").build()
    for rel, data in built.items():
        assert (FIX / rel).read_bytes() == data, f"{rel} differs: run tests/cohorts/fixtures/make_fixtures.py"
