"""PRO-ACT in: the ALS placebo (or all) patients of a PRO-ACT extract as a longitudinal or survival cohort.

::

    load_proact(source, placebo_only=True, outcome="alsfrs_r", max_months=12) -> ImportedCohort

``source`` is a folder or a ``.zip`` (path, bytes or binary file) holding ``PROACT_<TABLE>.csv`` files
(names matched ignoring case, at any depth): ALSFRS and TREATMENT are required (and DEATHDATA for
``outcome="survival"``); DEMOGRAPHICS, ALSHISTORY, FVC and RILUZOLE are optional: a covariate whose table
is absent (or that is missing for every patient) is left out. The key is ``subject_id``; every ``*_Delta``
is days from trial entry (day 0); column names are matched ignoring case. A month is 365.25/12 days.

Rules, applied in this order and counted in :attr:`ImportedCohort.import_report` (also in ``description``):

1. Arm: TREATMENT.Study_Arm equal to "Placebo" (ignoring case and spaces). Subjects without a TREATMENT row,
   or with rows naming different arms, are left out. ``placebo_only=False`` keeps every subject and adds the
   covariate ``study_arm``.
2. ALSFRS-R visits (``outcome="alsfrs_r"``): subjects with no ``ALSFRS_R_Total`` at all (older ALSFRS only)
   are skipped; visits without a day or a total (missed), with a total outside 0-48, and repeated visits
   (same subject and ``ALSFRS_Delta``: the first row is kept) are dropped. The baseline is the visit nearest
   day 0 within ``baseline_window_days`` (ties: the earlier); subjects without one are skipped. Visits before
   the baseline are dropped; ``month`` = (ALSFRS_Delta - baseline day) / 30.4375, kept up to ``max_months``.
3. Covariates (one value per subject: the row nearest day 0 of the table, first non-missing value):
   ``age`` (DEMOGRAPHICS.Age), ``sex`` (Female/Male), ``site_of_onset`` (Bulbar / Limb (spinal onset too) /
   Other (incl. "Limb and Bulbar"); from the ``Site_of_Onset___*`` check boxes when the text is empty),
   ``months_since_onset`` (-Onset_Delta in months; missing when onset is after entry),
   ``diagnostic_delay_months`` (Diagnosis_Delta - Onset_Delta in months; missing when negative),
   ``pre_baseline_slope`` ((48 - baseline ALSFRS-R) / months_since_onset), ``fvc_percent``
   (pct_of_Normal_Trial_1 nearest day 0 within the window), ``riluzole`` (Yes/No).
4. Survival (``outcome="survival"``, one row per subject of ALSFRS): ``death`` = 1 and ``survival_months`` =
   Death_Days when Subject_Died is Yes with a day; otherwise censored at the last known contact (the latest
   ``*_Delta`` of the subject in any table); no follow-up after day 0 -> left out; times beyond
   ``max_months`` are censored there (``max_months=None``: no limit). Adds the covariate ``alsfrs_r_baseline``.

``sha256`` is the SHA-256 of the table files' bytes concatenated in the order ALSFRS, DEATHDATA,
DEMOGRAPHICS, ALSHISTORY, FVC, RILUZOLE, TREATMENT (present ones): the same for a folder and a zip.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from cohorts.adam import (DAYS_PER_MONTH, ImportedCohort, ImportReport, _Table, combined_sha256, id_text, numbers,
                          plural, require_columns, show_ids, text_key)
from cohorts.errors import InvalidDataError
from cohorts.io import cohort_from_frame, read_table
from cohorts.schema import CohortSchema, OutcomeSpec

__all__ = ["load_proact", "PROACT_TABLES"]

PROACT_TABLES = ("ALSFRS", "DEATHDATA", "DEMOGRAPHICS", "ALSHISTORY", "FVC", "RILUZOLE", "TREATMENT")
_COLUMNS = {"ALSFRS": ("subject_id", "ALSFRS_Delta", "ALSFRS_R_Total"),
            "DEATHDATA": ("subject_id", "Subject_Died", "Death_Days"),
            "DEMOGRAPHICS": ("subject_id", "Age", "Sex"),
            "ALSHISTORY": ("subject_id", "Site_of_Onset", "Onset_Delta", "Diagnosis_Delta"),
            "FVC": ("subject_id", "pct_of_Normal_Trial_1", "Forced_Vital_Capacity_Delta"),
            "RILUZOLE": ("subject_id", "Subject_used_Riluzole"),
            "TREATMENT": ("subject_id", "Study_Arm")}
_NUMBERS = ("ALSFRS_R_Total", "ALSFRS_Total", "Death_Days", "Age", "pct_of_Normal_Trial_1")
_FILE = re.compile(r"^proact_([a-z]+)\.csv$", re.IGNORECASE)
_YES = {"YES": "Yes", "Y": "Yes", "1": "Yes", "TRUE": "Yes", "NO": "No", "N": "No", "0": "No", "FALSE": "No"}
_SEX = {"MALE": "Male", "M": "Male", "FEMALE": "Female", "F": "Female"}
_BOXES = (("limb_and_bulbar", "Other"), ("bulbar", "Bulbar"), ("limb", "Limb"), ("spine", "Limb"),
          ("other", "Other"))
_NUMERIC = ["age", "months_since_onset", "diagnostic_delay_months", "pre_baseline_slope", "fvc_percent"]
_CATEGORICAL = ["sex", "site_of_onset", "riluzole"]


# =========================================================================== reading the extract
def _files(source) -> tuple[dict[str, tuple[str, bytes]], str]:
    """{TABLE: (file name, bytes)} of the PROACT_<TABLE>.csv files in a folder or zip, and a source label."""
    found: dict[str, list[tuple[str, bytes]]] = {}
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        label = str(source)
        entries = [(str(p.relative_to(source)), p.read_bytes) for p in sorted(Path(source).rglob("*"))
                   if p.is_file()]
    else:
        if isinstance(source, (str, os.PathLike)):
            label = Path(source).name
            try:
                raw = Path(source).read_bytes()
            except OSError:
                raise InvalidDataError(f"{str(source)!r} is neither a folder nor a readable .zip file; check the "
                                       "path", source=label) from None
        elif isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
            raw = bytes(source) if not hasattr(source, "read") else source.read()
            label = Path(str(getattr(source, "name", "") or "uploaded PRO-ACT zip")).name
        else:
            raise TypeError("source must be a folder, a .zip path, bytes or a binary file, "
                            f"not {type(source).__name__}")
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
            entries = [(i.filename, lambda i=i: archive.read(i)) for i in archive.infolist()
                       if not i.is_dir() and "__MACOSX" not in i.filename]
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
            raise InvalidDataError(f"not a readable zip archive ({exc}); give the PRO-ACT folder, or zip it again",
                                   source=label) from None
    for rel, read in entries:
        match = _FILE.match(Path(rel).name)
        if match and match.group(1).upper() in PROACT_TABLES:
            found.setdefault(match.group(1).upper(), []).append((rel, read))
    problems = [f"several files for table {t}: {', '.join(r for r, _ in v)}; keep one"
                for t, v in found.items() if len(v) > 1]
    if problems:
        raise InvalidDataError(problems, source=label)
    try:
        return {t: (v[0][0], v[0][1]()) for t, v in found.items()}, label
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error) as exc:
        # NotImplementedError: an unknown compression method; RuntimeError: an encrypted member
        raise InvalidDataError(f"a file in the archive cannot be read ({exc}); zip the folder again",
                               source=label) from None


def _load_tables(source, outcome: str, notes: list[str]) -> tuple[dict[str, pd.DataFrame], list[_Table], str]:
    files, label = _files(source)
    required = ("ALSFRS", "TREATMENT") + (("DEATHDATA",) if outcome == "survival" else ())
    missing = [t for t in required if t not in files]
    if missing:
        found = ", ".join(Path(n).name for n, _ in files.values()) or "no PROACT_<TABLE>.csv file"
        raise InvalidDataError([f"required table {t} is missing: expected a file PROACT_{t}.csv; found: {found}"
                                for t in missing], source=label)
    problems: list[str] = []
    tables, raw_tables = {}, []
    for t in PROACT_TABLES:
        if t not in files:
            continue
        name, raw = files[t]
        df = require_columns(read_table(raw, filename=Path(name).name), _COLUMNS[t], Path(name).name, problems,
                             f" (table {t})")
        for column in df.columns:
            if str(column).lower().endswith("_delta") or column in _NUMBERS:
                df[column] = numbers(df, column, Path(name).name, problems)
        tables[t] = df
        raw_tables.append(_Table(df, Path(name).name, raw))
    if problems:
        raise InvalidDataError(problems, source=label)
    for t, df in tables.items():
        df["subject_id"] = df["subject_id"].map(id_text)
        tables[t] = df[df["subject_id"].notna()]
        if len(tables[t]) < len(df):
            notes.append(f"PROACT_{t}.csv: {plural(len(df) - len(tables[t]), 'row')} without subject_id ignored")
    return tables, raw_tables, label


# =========================================================================== rules
def _arms(treat: pd.DataFrame, placebo_only: bool, counts, notes) -> pd.Series:
    """Study arm per subject (None where rows disagree); an error when placebo is asked for and absent."""
    arm = treat.assign(_k=treat["Study_Arm"].map(text_key)).dropna(subset=["_k"])
    per = arm.groupby("subject_id")["_k"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
    conflict = per.isna()
    counts["arm_conflict"] = int(conflict.sum())
    if conflict.any():
        notes.append(f"{plural(int(conflict.sum()), 'subject')} with TREATMENT rows naming different arms "
                     f"({show_ids(per.index[conflict])}): study arm taken as missing")
    if placebo_only and not (per == "PLACEBO").any():
        found = ", ".join(f"{v!r} ({n})" for v, n in treat["Study_Arm"].value_counts().items())
        raise InvalidDataError(f"no subject has TREATMENT.Study_Arm = 'Placebo'; values found: {found or 'none'}; "
                               "pass placebo_only=False to keep every subject", source="PROACT_TREATMENT.csv")
    return per.map(lambda k: k.title() if isinstance(k, str) else None)


def _one_per_subject(df: pd.DataFrame, delta: str | None, columns: list[str], table: str, notes) -> pd.DataFrame:
    """First non-missing value of each column per subject, rows nearest day 0 first."""
    order = df[delta].abs() if delta and delta in df.columns else pd.Series(0.0, index=df.index)
    sorted_ = df.assign(_o=order).sort_values("_o", kind="stable", na_position="last")
    several = int(sorted_["subject_id"].duplicated().sum())
    if several:
        many = sorted_["subject_id"][sorted_["subject_id"].duplicated()].unique()
        notes.append(f"{table}: {plural(len(many), 'subject')} with several rows; per column the first value "
                     f"nearest day 0 is used ({show_ids(many)})")
    return sorted_.groupby("subject_id", sort=False)[columns].first()


def _site(row: pd.Series, boxes: list[str]) -> str | None:
    text = str(row["Site_of_Onset"]).lower() if pd.notna(row["Site_of_Onset"]) else ""
    text = text.replace("onset:", "").strip()
    if text:
        bulbar, limb = "bulbar" in text, "limb" in text or "spin" in text
        return "Other" if bulbar and limb else "Bulbar" if bulbar else "Limb" if limb else "Other"
    for suffix, site in _BOXES:
        column = next((b for b in boxes if b.lower() == f"site_of_onset___{suffix}"), None)
        if column is not None and text_key(row[column]) in ("1", "YES", "Y", "TRUE"):
            return site
    return None


def _alsfrs(a: pd.DataFrame, window: float, max_months: float | None, counts, notes) -> pd.DataFrame:
    """Clean ALSFRS-R visits with ``month`` from the baseline visit (rule 2)."""
    has_r = a.groupby("subject_id")["ALSFRS_R_Total"].transform(lambda s: s.notna().any())
    no_r = a.loc[~has_r, "subject_id"].unique()
    old = a.loc[~has_r & a.get("ALSFRS_Total", pd.Series(np.nan, a.index)).notna(), "subject_id"].nunique()
    counts["no_alsfrs_r"] = len(no_r)
    if len(no_r):
        notes.append(f"{plural(len(no_r), 'subject')} without any ALSFRS-R total skipped ({old} with the older "
                     f"ALSFRS only): {show_ids(no_r)}")
    a = a[has_r]
    missed = a["ALSFRS_Delta"].isna() | a["ALSFRS_R_Total"].isna()
    counts["missed_visits"] = int(missed.sum())
    if missed.any():
        which = [f"{s} day {d:g}" for s, d in a.loc[missed, ["subject_id", "ALSFRS_Delta"]].itertuples(False)]
        notes.append(f"{plural(int(missed.sum()), 'ALSFRS visit')} without a day or an ALSFRS-R total (missed) "
                     f"dropped: {show_ids(which)}")
    a = a[~missed]
    bad = (a["ALSFRS_R_Total"] < 0) | (a["ALSFRS_R_Total"] > 48)
    counts["out_of_range"] = int(bad.sum())
    if bad.any():
        which = [f"{s} day {d:g} ({v:g})" for s, d, v in a.loc[bad, ["subject_id", "ALSFRS_Delta",
                                                                      "ALSFRS_R_Total"]].itertuples(index=False)]
        notes.append(f"{plural(int(bad.sum()), 'ALSFRS-R total')} outside 0-48 dropped: {show_ids(which)}")
    a = a[~bad]
    dup = a.duplicated(["subject_id", "ALSFRS_Delta"])
    counts["duplicate_visits"] = int(dup.sum())
    if dup.any():
        which = [f"{s} day {d:g}" for s, d in a.loc[dup, ["subject_id", "ALSFRS_Delta"]].itertuples(index=False)]
        notes.append(f"{plural(int(dup.sum()), 'repeated ALSFRS visit')} (same subject and day) dropped, the "
                     f"first row kept: {show_ids(which)}")
    a = a[~dup]
    near = a[a["ALSFRS_Delta"].abs() <= window].assign(_d=lambda x: x["ALSFRS_Delta"].abs())
    base = near.sort_values(["_d", "ALSFRS_Delta"], kind="stable").groupby("subject_id")["ALSFRS_Delta"].first()
    no_base = sorted(set(a["subject_id"]) - set(base.index))
    counts["no_baseline"] = len(no_base)
    if no_base:
        notes.append(f"{plural(len(no_base), 'subject')} without an ALSFRS-R visit within {window:g} days of "
                     f"day 0 skipped: {show_ids(no_base)}")
    a = a[a["subject_id"].isin(base.index)]
    month = (a["ALSFRS_Delta"] - a["subject_id"].map(base).astype("float64")) / DAYS_PER_MONTH
    before, after = month < 0, month > (np.inf if max_months is None else max_months)
    counts["before_baseline"], counts["after_max_months"] = int(before.sum()), int(after.sum())
    if before.any():
        which = [f"{s} day {d:g}" for s, d in a.loc[before, ["subject_id", "ALSFRS_Delta"]].itertuples(False)]
        notes.append(f"{plural(int(before.sum()), 'ALSFRS visit')} before the baseline visit dropped: "
                     f"{show_ids(which)}")
    if after.any():
        which = [f"{s} day {d:g}" for s, d in a.loc[after, ["subject_id", "ALSFRS_Delta"]].itertuples(False)]
        notes.append(f"{plural(int(after.sum()), 'ALSFRS visit')} after month {max_months:g} dropped: "
                     f"{show_ids(which)}")
    keep = ~before & ~after
    return pd.DataFrame({"subject_id": a["subject_id"][keep], "month": month[keep],
                         "alsfrs_r": a["ALSFRS_R_Total"][keep]})


def _covariates(tables, visits: pd.DataFrame, window: float, counts, notes) -> pd.DataFrame:
    """Rule 3: one row of covariates per subject (index subject_id)."""
    cov = pd.DataFrame(index=pd.Index(sorted(set(tables["ALSFRS"]["subject_id"])), name="subject_id"))
    if "DEMOGRAPHICS" in tables:
        d = _one_per_subject(tables["DEMOGRAPHICS"], "Demographics_Delta", ["Age", "Sex"], "DEMOGRAPHICS", notes)
        cov["age"] = d["Age"]
        cov["sex"] = d["Sex"].map(lambda v: _SEX.get(text_key(v)))
        odd = d["Sex"].notna() & cov["sex"].reindex(d.index).isna()
        if odd.any():
            notes.append(f"DEMOGRAPHICS: Sex not Male/Female for {plural(int(odd.sum()), 'subject')} "
                         f"({show_ids(d.index[odd])}): taken as missing")
    if "ALSHISTORY" in tables:
        h = tables["ALSHISTORY"]
        boxes = [c for c in h.columns if str(c).lower().startswith("site_of_onset___")]
        h = _one_per_subject(h, "Subject_ALS_History_Delta" if "Subject_ALS_History_Delta" in h.columns else None,
                             ["Site_of_Onset", "Onset_Delta", "Diagnosis_Delta", *boxes], "ALSHISTORY", notes)
        cov["site_of_onset"] = h.apply(_site, axis=1, boxes=boxes) if len(h) else pd.Series(dtype="str")
        late = h["Onset_Delta"] > 0
        counts["onset_after_entry"] = int(late.sum())
        if late.any():
            notes.append(f"ALSHISTORY: Onset_Delta after trial entry for {plural(int(late.sum()), 'subject')} "
                         f"({show_ids(h.index[late])}): months_since_onset taken as missing")
        onset = h["Onset_Delta"].where(~late)
        cov["months_since_onset"] = -onset / DAYS_PER_MONTH
        delay = (h["Diagnosis_Delta"] - onset) / DAYS_PER_MONTH
        early = delay < 0
        counts["diagnosis_before_onset"] = int(early.sum())
        if early.any():
            notes.append(f"ALSHISTORY: Diagnosis_Delta before Onset_Delta for "
                         f"{plural(int(early.sum()), 'subject')} ({show_ids(h.index[early])}): "
                         "diagnostic_delay_months taken as missing")
        cov["diagnostic_delay_months"] = delay.where(~early)
    if "FVC" in tables:
        f = tables["FVC"].dropna(subset=["pct_of_Normal_Trial_1", "Forced_Vital_Capacity_Delta"])
        day = f["Forced_Vital_Capacity_Delta"]
        f = f.assign(_d=day, _a=day.abs())[day.abs() <= window].sort_values(["_a", "_d"], kind="stable")
        cov["fvc_percent"] = f.groupby("subject_id")["pct_of_Normal_Trial_1"].first()
    if "RILUZOLE" in tables:
        r = _one_per_subject(tables["RILUZOLE"], "Riluzole_use_Delta", ["Subject_used_Riluzole"], "RILUZOLE",
                             notes)
        cov["riluzole"] = r["Subject_used_Riluzole"].map(lambda v: _YES.get(text_key(v)))
    baseline = visits[visits["month"] == 0].set_index("subject_id")["alsfrs_r"]
    cov["alsfrs_r_baseline"] = baseline
    if "months_since_onset" in cov:
        since = cov["months_since_onset"]
        cov["pre_baseline_slope"] = ((48 - baseline.reindex(cov.index)) / since).where(since > 0)
    return cov


def _survival(tables, subjects, max_months: float | None, counts, notes) -> pd.DataFrame:
    """Rule 4: time to death or censoring at the last contact, in months."""
    contact = pd.concat([df.set_index("subject_id")[c] for df in tables.values() for c in df.columns
                         if str(c).lower().endswith("_delta")]).groupby(level=0).max()
    death = _one_per_subject(tables["DEATHDATA"], None, ["Subject_Died", "Death_Days"], "DEATHDATA", notes)
    died = death["Subject_Died"].map(lambda v: _YES.get(text_key(v))).reindex(subjects) == "Yes"
    days = death["Death_Days"].reindex(subjects)
    unknown = died & days.isna()
    counts["death_day_unknown"] = int(unknown.sum())
    if unknown.any():
        notes.append(f"{plural(int(unknown.sum()), 'subject')} died on an unknown day: censored at the last "
                     f"contact ({show_ids(subjects[unknown.to_numpy()])})")
    event = died & days.notna()
    time = days.where(event, contact.reindex(subjects)) / DAYS_PER_MONTH
    none = ~(time > 0)
    counts["no_follow_up"] = int(none.sum())
    if none.any():
        notes.append(f"{plural(int(none.sum()), 'subject')} without follow-up after day 0 left out")
    limit = np.inf if max_months is None else max_months
    cut = time > limit
    counts["censored_at_max_months"] = int(cut.sum())
    if cut.any():
        notes.append(f"{plural(int(cut.sum()), 'survival time')} beyond month {max_months:g} censored there")
    out = pd.DataFrame({"survival_months": time.where(~cut, limit), "death": (event & ~cut).astype("int64")})
    return out[~none.to_numpy()]


# =========================================================================== entry point
def load_proact(source, *, placebo_only: bool = True, outcome: str = "alsfrs_r", max_months: float | None = 12,
                baseline_window_days: float = 30, name: str | None = None) -> ImportedCohort:
    """A longitudinal ALSFRS-R (``outcome="alsfrs_r"``) or survival cohort from a PRO-ACT extract (see the
    module docstring for every rule). Problems with the files raise one :class:`InvalidDataError`."""
    if outcome not in ("alsfrs_r", "survival"):
        raise InvalidDataError(f"outcome={outcome!r} is unknown; use 'alsfrs_r' or 'survival'", source="PRO-ACT")
    counts: dict[str, int] = {}
    notes: list[str] = []
    tables, raw_tables, label = _load_tables(source, outcome, notes)
    subjects = pd.Index(sorted(set(tables["ALSFRS"]["subject_id"])), name="subject_id")
    counts["alsfrs_subjects"] = len(subjects)
    arms = _arms(tables["TREATMENT"], placebo_only, counts, [] if placebo_only else notes).reindex(subjects)
    no_arm = ~subjects.isin(tables["TREATMENT"]["subject_id"])
    counts["no_treatment_row"] = int(no_arm.sum())
    if placebo_only:
        keep = (arms == "Placebo").to_numpy()
        conflict = int((arms.isna().to_numpy() & ~no_arm).sum())
        counts["not_placebo"] = int((~keep).sum())
        notes.append(f"{plural(int(keep.sum()), 'placebo subject')} of {len(subjects)} in ALSFRS kept; left out: "
                     f"{int(no_arm.sum())} without a TREATMENT row, {conflict} with conflicting arms, "
                     f"{int((~keep).sum()) - int(no_arm.sum()) - conflict} of other arms")
        subjects = subjects[keep]
    missing_tables = [t for t in PROACT_TABLES if t not in tables]
    if missing_tables:
        notes.append(f"tables not found (their covariates are left out): {', '.join(missing_tables)}")
    alsfrs = tables["ALSFRS"][tables["ALSFRS"]["subject_id"].isin(subjects)]
    visits = _alsfrs(alsfrs, baseline_window_days, max_months if outcome == "alsfrs_r" else None,
                     counts if outcome == "alsfrs_r" else {}, notes if outcome == "alsfrs_r" else [])
    cov = _covariates(tables, visits, baseline_window_days, counts, notes).reindex(subjects)
    if not placebo_only:
        cov["study_arm"] = arms.reindex(subjects)
    numeric = [c for c in _NUMERIC + (["alsfrs_r_baseline"] if outcome == "survival" else [])
               if c in cov and cov[c].notna().any()]
    categorical = [c for c in _CATEGORICAL + ([] if placebo_only else ["study_arm"])
                   if c in cov and cov[c].notna().any()]
    absent = [c for c in _NUMERIC + _CATEGORICAL if c not in numeric + categorical]
    if absent:
        notes.append(f"covariates left out (no value for any patient): {', '.join(absent)}")
    if outcome == "alsfrs_r":
        frame = visits.merge(cov[numeric + categorical], left_on="subject_id", right_index=True, how="inner")
        schema = CohortSchema(id="subject_id", numeric=tuple(numeric), categorical=tuple(categorical),
                              outcome=OutcomeSpec("longitudinal", value="alsfrs_r", visit="month",
                                                  time_unit="months", lower=0, upper=48))
    else:
        surv = _survival(tables, subjects, max_months, counts, notes)
        frame = cov[numeric + categorical].join(surv, how="inner").reset_index()
        schema = CohortSchema(id="subject_id", numeric=tuple(numeric), categorical=tuple(categorical),
                              outcome=OutcomeSpec("tte", time="survival_months", event="death",
                                                  time_unit="months"))
    if frame.empty:
        raise InvalidDataError(f"no patient is left after the import rules ({counts['alsfrs_subjects']} subjects "
                               "in ALSFRS): " + "; ".join(notes), source=label)
    ids = frame["subject_id"]
    frame["subject_id"] = pd.to_numeric(ids) if ids.str.fullmatch(r"-?\d+").all() else ids
    frame = frame[["subject_id", *numeric, *categorical, *[c for c in schema.outcome.columns]]]
    cohort = cohort_from_frame(frame, schema, name=name or f"PRO-ACT {'placebo' if placebo_only else 'all arms'}, "
                               f"{'ALSFRS-R' if outcome == 'alsfrs_r' else 'survival'}", source=label)
    sha, files = combined_sha256(raw_tables)
    counts["patients"] = cohort.n_patients
    report = ImportReport(source=label, files=files, counts=counts, notes=tuple(notes))
    what = "ALSFRS-R visits" if outcome == "alsfrs_r" else "survival"
    return ImportedCohort(name=cohort.name, schema=schema, data=cohort.data, source=label,
                          citation="PRO-ACT: Atassi N et al., Neurology 2014;83:1719",
                          description=f"PRO-ACT import ({what}): {cohort.n_patients} patients.\n{report}",
                          sha256=sha, import_report=report)
