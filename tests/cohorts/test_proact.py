"""The PRO-ACT importer (cohorts.proact.load_proact) on a made-up extract in the PRO-ACT layout.

Fixture: tests/cohorts/fixtures/proact/ (and proact.zip), written by fixtures/make_fixtures.py. Placebo
subjects 1001-1022 each carry one quirk (make_fixtures.SPECIALS); the expected values below follow from
those hand-set numbers (a month is 365.25 / 12 = 30.4375 days).
"""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohorts.adam import ImportedCohort
from cohorts.errors import InvalidDataError
from cohorts.generators import get_generator
from cohorts.io import validate
from cohorts.proact import PROACT_TABLES, load_proact

FIX = Path(__file__).parent / "fixtures"
FOLDER = FIX / "proact"
M = 365.25 / 12


@pytest.fixture(scope="module")
def placebo():
    return load_proact(FOLDER)


@pytest.fixture(scope="module")
def survival():
    return load_proact(FOLDER, outcome="survival")


def _visits(cohort, sid):
    rows = cohort.data[cohort.data["subject_id"] == sid]
    return list(zip(rows["month"].round(6), rows["alsfrs_r"]))


def _base(cohort, sid):
    return cohort.data[cohort.data["subject_id"] == sid].iloc[0]


def _copy(tmp_path, drop=(), edit=None):
    """A copy of the fixture folder without the ``drop`` tables; ``edit`` = {TABLE: frame -> frame}."""
    out = tmp_path / "extract"
    shutil.copytree(FOLDER, out)
    for table in drop:
        (out / f"PROACT_{table}.csv").unlink()
    for table, change in (edit or {}).items():
        path = out / f"PROACT_{table}.csv"
        change(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
    return out


# =========================================================================== the cohort
def test_placebo_alsfrs_cohort_shape_and_schema(placebo):
    assert isinstance(placebo, ImportedCohort)
    s = placebo.schema
    assert s.id == "subject_id" and s.outcome.type == "longitudinal"
    assert (s.outcome.visit, s.outcome.value, s.outcome.unit, s.outcome.lower, s.outcome.upper) == \
        ("month", "alsfrs_r", "months", 0, 48)
    assert s.numeric == ("age", "months_since_onset", "diagnostic_delay_months", "pre_baseline_slope",
                         "fvc_percent")
    assert s.categorical == ("sex", "site_of_onset", "riluzole")
    assert placebo.n_patients == 19 and len(placebo.data) == 77
    assert placebo.data["subject_id"].dtype == np.int64
    pd.testing.assert_frame_equal(validate(placebo.data, s), placebo.data)  # already valid and clean


def test_import_counts(placebo):
    assert placebo.import_report.counts == {
        "alsfrs_subjects": 40, "arm_conflict": 1, "no_treatment_row": 4, "not_placebo": 19, "no_alsfrs_r": 1,
        "missed_visits": 1, "out_of_range": 1, "duplicate_visits": 1, "no_baseline": 1, "before_baseline": 1,
        "after_max_months": 3, "onset_after_entry": 1, "diagnosis_before_onset": 1, "patients": 19}


def test_reference_subject_1001(placebo):
    assert _visits(placebo, 1001) == [(0.0, 38), (round(30 / M, 6), 37), (round(91 / M, 6), 36),
                                      (round(182 / M, 6), 34), (round(273 / M, 6), 33), (round(365 / M, 6), 31)]
    b = _base(placebo, 1001)  # day 456 (month 14.98) is after max_months
    assert (b["age"], b["sex"], b["site_of_onset"], b["riluzole"], b["fvc_percent"]) == \
        (62, "Male", "Limb", "Yes", 85)
    assert b["months_since_onset"] == pytest.approx(400 / M)
    assert b["diagnostic_delay_months"] == pytest.approx(250 / M)
    assert b["pre_baseline_slope"] == pytest.approx((48 - 38) / (400 / M))


def test_visit_rules(placebo):
    assert _visits(placebo, 1002) == [(0.0, 40), (round(91 / M, 6), 35), (round(182 / M, 6), 32)]  # first of dup
    assert _visits(placebo, 1004) == [(0.0, 39), (round(30 / M, 6), 38), (round(91 / M, 6), 36),
                                      (round(182 / M, 6), 35)]  # baseline day 5; day -7 dropped
    assert _visits(placebo, 1013) == [(0.0, 37), (round(182 / M, 6), 35)]  # missed visit
    assert _visits(placebo, 1014) == [(0.0, 37), (round(182 / M, 6), 35)]  # 52 out of range
    ids = set(placebo.data["subject_id"])
    assert not ids & {1003, 1005, 1018} and {1019, 1021} <= ids  # 1021's arm is ' placebo '
    assert not ids & set(range(1023, 1041))
    notes = "\n".join(placebo.import_report.notes)
    for text in ("older ALSFRS only): 1003", "1014 day 91 (52)", "first row kept: 1002 day 91",
                 "within 30 days of day 0 skipped: 1005", "before the baseline visit dropped: 1004 day -7",
                 "after month 12 dropped: 1001 day 456, 1012 day 400, 1020 day 367",
                 "(missed) dropped: 1013 day 91"):
        assert text in notes and text in placebo.description


def test_covariate_rules(placebo):
    assert np.isnan(_base(placebo, 1006)["age"]) and pd.isna(_base(placebo, 1006)["sex"])  # no DEMOGRAPHICS row
    assert np.isnan(_base(placebo, 1006)["diagnostic_delay_months"])  # diagnosis (-394) before onset (-300)
    sites = {sid: _base(placebo, sid)["site_of_onset"] for sid in (1007, 1008, 1009, 1010)}
    assert sites == {1007: "Bulbar", 1008: "Other", 1009: "Bulbar", 1010: "Limb"}  # 1009: check box only
    assert _base(placebo, 1015)["fvc_percent"] == 70  # day -3 (day 2 has no value, day 10 is farther)
    assert pd.isna(_base(placebo, 1016)["riluzole"]) and _base(placebo, 1017)["riluzole"] == "No"
    b = _base(placebo, 1020)  # onset after entry
    assert np.isnan(b["months_since_onset"]) and np.isnan(b["pre_baseline_slope"])
    b = _base(placebo, 1022)  # two ALSHISTORY rows: the values come from the second
    assert b["months_since_onset"] == pytest.approx(300 / M) and b["diagnostic_delay_months"] == \
        pytest.approx(180 / M)


def test_max_months_and_baseline_window(placebo):
    six = load_proact(FOLDER, max_months=6)
    assert six.data["month"].max() <= 6 and _visits(six, 1001)[-1] == (round(182 / M, 6), 34)
    narrow = load_proact(FOLDER, baseline_window_days=3)
    assert 1004 not in set(narrow.data["subject_id"]) and narrow.n_patients == 18


def test_all_arms(placebo):
    c = load_proact(FOLDER, placebo_only=False)
    assert c.n_patients == 38 and c.schema.categorical[-1] == "study_arm"
    arms = c.data.drop_duplicates("subject_id").set_index("subject_id")["study_arm"]
    assert (arms == "Placebo").sum() == 19 and (arms == "Active").sum() == 14
    assert arms[[1018, 1037, 1040]].isna().all()  # conflicting arms, no TREATMENT row
    assert "'not_placebo'" not in str(c.import_report.counts)


def test_zip_equals_folder_and_sha_is_of_the_table_files(placebo):
    z = load_proact(FIX / "proact.zip")
    pd.testing.assert_frame_equal(z.data, placebo.data)
    cat = b"".join((FOLDER / f"PROACT_{t}.csv").read_bytes() for t in PROACT_TABLES)
    assert z.sha256 == placebo.sha256 == hashlib.sha256(cat).hexdigest()
    assert [name for name, _ in z.import_report.files] == [f"PROACT_{t}.csv" for t in PROACT_TABLES]
    uploaded = load_proact((FIX / "proact.zip").read_bytes())
    assert uploaded.sha256 == placebo.sha256 and uploaded.source == "uploaded PRO-ACT zip"


def test_missing_optional_tables_leave_covariates_out(tmp_path):
    folder = _copy(tmp_path, drop=("DEMOGRAPHICS", "ALSHISTORY", "RILUZOLE", "DEATHDATA"))
    c = load_proact(folder)
    assert c.schema.numeric == ("fvc_percent",) and c.schema.categorical == ()
    assert c.n_patients == 19 and list(c.data.columns) == ["subject_id", "fvc_percent", "month", "alsfrs_r"]
    notes = "\n".join(c.import_report.notes)
    assert "tables not found (their covariates are left out): DEATHDATA, DEMOGRAPHICS, ALSHISTORY, " \
           "RILUZOLE" in notes
    assert "covariates left out (no value for any patient): age, months_since_onset, diagnostic_delay_months, " \
           "pre_baseline_slope, sex, site_of_onset, riluzole" in notes


def test_names_are_matched_ignoring_case(tmp_path):
    folder = _copy(tmp_path, edit={"ALSFRS": lambda d: d.rename(columns={"subject_id": "Subject_ID",
                                                                         "ALSFRS_Delta": "alsfrs_delta"})})
    (folder / "PROACT_TREATMENT.csv").rename(folder / "proact_treatment.CSV")
    pd.testing.assert_frame_equal(load_proact(folder).data, load_proact(FOLDER).data)


# =========================================================================== survival
def test_survival_cohort(survival):
    s = survival.schema
    assert (s.outcome.type, s.outcome.time, s.outcome.event, s.outcome.unit) == \
        ("tte", "survival_months", "death", "months")
    assert s.numeric[-1] == "alsfrs_r_baseline" and survival.n_patients == 21  # 1003, 1005 kept here
    rows = survival.data.set_index("subject_id")
    assert rows.loc[1011, ["survival_months", "death"]].tolist() == [pytest.approx(200 / M), 1]
    assert rows.loc[1012, ["survival_months", "death"]].tolist() == [12, 0]  # died, day unknown; last contact 400
    assert rows.loc[1001, ["survival_months", "death", "alsfrs_r_baseline"]].tolist() == [12, 0, 38]
    assert rows.loc[1002, ["survival_months", "death"]].tolist() == [pytest.approx(182 / M), 0]
    assert np.isnan(rows.loc[1003, "alsfrs_r_baseline"])
    counts = survival.import_report.counts
    assert (counts["death_day_unknown"], counts["censored_at_max_months"], counts["no_follow_up"]) == (1, 3, 0)
    assert int(survival.data["death"].sum()) == 3


def test_survival_without_limit():
    rows = load_proact(FOLDER, outcome="survival", max_months=None).data.set_index("subject_id")
    assert rows.loc[1001, "survival_months"] == pytest.approx(456 / M)
    assert rows.loc[1012, ["survival_months", "death"]].tolist() == [pytest.approx(400 / M), 0]


# =========================================================================== a generator fits it
def test_default_generator_fits_a_proact_cohort(placebo):
    g = get_generator("default").fit(placebo.data, placebo.schema, rng=np.random.default_rng(0))
    synth = g.sample(40, rng=np.random.default_rng(1))
    assert synth["subject_id"].nunique() == 40 and list(synth.columns) == list(placebo.data.columns)
    assert synth["alsfrs_r"].between(0, 48).all() and set(synth["site_of_onset"].dropna()) <= {"Bulbar", "Limb",
                                                                                                 "Other"}


# =========================================================================== errors
@pytest.mark.parametrize("table", ["ALSFRS", "TREATMENT"])
def test_missing_required_table(tmp_path, table):
    with pytest.raises(InvalidDataError) as err:
        load_proact(_copy(tmp_path, drop=(table,)))
    assert f"required table {table} is missing: expected a file PROACT_{table}.csv; found: " in str(err.value)


def test_survival_needs_deathdata(tmp_path):
    with pytest.raises(InvalidDataError, match="required table DEATHDATA is missing"):
        load_proact(_copy(tmp_path, drop=("DEATHDATA",)), outcome="survival")
    load_proact(_copy(tmp_path / "b", drop=("DEATHDATA",)))  # fine for ALSFRS-R


def test_missing_key_columns_name_the_closest(tmp_path):
    folder = _copy(tmp_path, edit={"ALSFRS": lambda d: d.rename(columns={"ALSFRS_Delta": "ALSFRS_Dlta"}),
                                   "FVC": lambda d: d.rename(columns={"subject_id": "subjectid"})})
    with pytest.raises(InvalidDataError) as err:
        load_proact(folder)
    assert err.value.problems == [
        "PROACT_ALSFRS.csv: column 'ALSFRS_Delta' (table ALSFRS) is missing (did you mean 'ALSFRS_Dlta'?); "
        "rename the column in the file",
        "PROACT_FVC.csv: column 'subject_id' (table FVC) is missing (did you mean 'subjectid'?); rename the "
        "column in the file"]


def test_non_numeric_deltas_are_listed_with_rows(tmp_path):
    def bad_days(d):
        d.loc[[1, 4], "ALSFRS_Delta"] = ["day 30", "3 months"]
        return d

    def bad_onset(d):
        d.loc[0, "Onset_Delta"] = "unknown"
        return d
    with pytest.raises(InvalidDataError) as err:
        load_proact(_copy(tmp_path, edit={"ALSFRS": bad_days, "ALSHISTORY": bad_onset}))
    assert err.value.problems == [
        "PROACT_ALSFRS.csv: column 'ALSFRS_Delta' is not a number in rows 2 ('day 30'), 5 ('3 months'); use plain "
        "numbers with '.' as decimal point and leave missing values empty",
        "PROACT_ALSHISTORY.csv: column 'Onset_Delta' is not a number in row 1 ('unknown'); use plain numbers "
        "with '.' as decimal point and leave missing values empty"]


def test_no_placebo_lists_the_arms_found(tmp_path):
    folder = _copy(tmp_path, edit={"TREATMENT": lambda d: d.assign(Study_Arm=d["Study_Arm"].str.strip().str.lower()
                                                                   .map({"placebo": "Control"}).fillna("Active"))})
    with pytest.raises(InvalidDataError) as err:
        load_proact(folder)
    assert "no subject has TREATMENT.Study_Arm = 'Placebo'; values found: 'Control' (23), 'Active' (15); pass " \
           "placebo_only=False" in str(err.value)
    assert load_proact(folder, placebo_only=False).n_patients == 38


def test_empty_after_filtering(tmp_path):
    only_1003 = _copy(tmp_path, edit={"TREATMENT": lambda d: d.assign(
        Study_Arm=np.where(d["subject_id"] == "1003", "Placebo", "Active"))})
    with pytest.raises(InvalidDataError) as err:
        load_proact(only_1003)
    assert "no patient is left after the import rules (40 subjects in ALSFRS)" in str(err.value)
    assert "older ALSFRS only): 1003" in str(err.value)


def test_bad_sources(tmp_path):
    with pytest.raises(InvalidDataError, match="neither a folder nor a readable .zip"):
        load_proact(tmp_path / "nowhere")
    with pytest.raises(InvalidDataError, match="not a readable zip archive"):
        load_proact(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InvalidDataError, match="outcome='slope' is unknown"):
        load_proact(FOLDER, outcome="slope")
    twice = _copy(tmp_path)
    (twice / "old").mkdir()
    shutil.copy(twice / "PROACT_FVC.csv", twice / "old" / "PROACT_FVC.csv")
    with pytest.raises(InvalidDataError, match="several files for table FVC"):
        load_proact(twice)
