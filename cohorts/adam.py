"""CDISC ADaM in: subject-level ADSL plus ADTTE (time to event) or a long BDS dataset (ADQS, ADLB ...).

::

    load_adam(adsl, adtte=...) -> ImportedCohort     tte cohort, one row per USUBJID, for one PARAMCD
    load_adam(adsl, bds=...)   -> ImportedCohort     longitudinal cohort, one row per USUBJID and visit

Files are SAS XPORT (``.xpt``) or CSV/Parquet with the same variables (read by :func:`cohorts.io.read_table`);
a DataFrame is accepted too. Variable names are matched case-insensitively and kept in upper case, as in
ADaM. Rules:

* ADSL: one row per ``USUBJID``. Baseline covariates are the ones named in ``baseline_numeric`` /
  ``baseline_categorical`` (exactly those, when either is given), otherwise ``AGE``, ``SEX``, ``RACE`` and
  every variable ending in ``BL`` (the ADaM suffix for baseline values), numeric or categorical by dtype.
  ``arm`` keeps the subjects whose ``arm_var`` (``TRT01P`` by default; ``ARM``, ``TRT01A`` ...) equals it
  (ignoring case and surrounding spaces); the arm variable itself is not a covariate.
* ADTTE: ``USUBJID``, ``PARAMCD``, ``AVAL`` (time), ``CNSR`` (0 = event, 1 or more = censored, so
  ``EVENT = 1 - CNSR`` for 0/1 codes) and ``AVALU`` (unit, days when absent). Output columns ``AVAL``, ``EVENT``.
* BDS: ``USUBJID``, ``PARAMCD``, ``AVAL`` and ``AVISITN`` (used as is, unit ``visit_unit``) or ``ADY``
  (study day, day 1 = first dose: month = (ADY - 1) / 30.4375, column ``MONTH``); the baseline record
  (``ABLFL = "Y"``) is visit 0 when ADY is used. Derived records (``DTYPE`` set, e.g. LOCF), pre-baseline
  visits (negative) and records without ``AVAL`` are dropped; of two records on one visit the baseline record
  (else the first) is kept. Everything dropped is counted in :attr:`ImportedCohort.import_report`.

``sha256`` is the SHA-256 of the input files' bytes concatenated in the order ADSL, ADTTE/BDS (what
``cat adsl.xpt adtte.xpt | sha256sum`` prints); each file's own hash is in ``import_report.files``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cohorts.cohort import Cohort
from cohorts.errors import InvalidDataError
from cohorts.io import cohort_from_frame, read_table
from cohorts.schema import DAYS_PER_UNIT, CohortSchema, OutcomeSpec, closest

__all__ = ["load_adam", "ImportReport", "ImportedCohort"]

DAYS_PER_MONTH = DAYS_PER_UNIT["months"]  # 30.4375
_SHOWN = 5
_UNITS = {"days": ("D", "DAY", "DAYS"), "weeks": ("W", "WK", "WKS", "WEEK", "WEEKS"),
          "months": ("MO", "MOS", "MONTH", "MONTHS"), "years": ("Y", "YR", "YRS", "YEAR", "YEARS")}


# =========================================================================== report and cohort
@dataclass(frozen=True)
class ImportReport:
    """What an importer kept and dropped: ``counts`` (machine-readable) and ``notes`` (one line per rule)."""

    source: str
    files: tuple[tuple[str, str], ...] = ()  # (file name, SHA-256 of its bytes), in hashing order
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "\n".join([f"Imported from {self.source}.", *(f"- {n}" for n in self.notes)])


@dataclass(frozen=True, eq=False)
class ImportedCohort(Cohort):
    """A :class:`~cohorts.cohort.Cohort` made by an importer, with its :class:`ImportReport`."""

    import_report: ImportReport | None = field(default=None, repr=False)


@dataclass
class _Table:
    """One input table: the frame, its file name and raw bytes (for the hash)."""

    df: pd.DataFrame
    name: str
    raw: bytes


# =========================================================================== helpers shared with proact
def rows_text(mask: pd.Series, values: pd.Series | None = None) -> str:
    """'rows 3, 8 ('x', 'y')' for the True entries of ``mask``. Frames keep the RangeIndex of the file as
    read, so the label + 1 is the data row of the file (row 1 = the first row under the header)."""
    positions = list(mask.index[mask.to_numpy(dtype=bool)])
    shown = [str(p + 1) + (f" ({_cell(values.loc[p])})" if values is not None else "") for p in positions[:_SHOWN]]
    more = f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else ""
    return f"row{'s' if len(positions) > 1 else ''} {', '.join(shown)}{more}"


def _cell(v) -> str:
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return format(float(v), "g")
    return repr(str(v)) if v is not None else "missing"


def numbers(df: pd.DataFrame, column: str, where: str, problems: list[str]) -> pd.Series:
    """float64 values of ``df[column]``; text that is not a number is reported in ``problems``."""
    s = df[column]
    text = s.map(lambda v: v.strip() if isinstance(v, str) else v)
    values = pd.to_numeric(text.map(lambda v: np.nan if v == "" else v), errors="coerce").astype("float64")
    bad = (text.notna() & (text != "")) & values.isna() | np.isinf(values)
    if bad.any():
        problems.append(f"{where}: column {column!r} is not a number in {rows_text(bad, s)}; use plain numbers "
                        "with '.' as decimal point and leave missing values empty")
    return values.where(~np.isinf(values))


def require_columns(df: pd.DataFrame, required, where: str, problems: list[str], what: str = "",
                    fix: str = "rename the column in the file") -> pd.DataFrame:
    """``df`` with columns renamed to the spelling in ``required`` when they match ignoring case; each
    required column still missing is reported with the closest existing name."""
    lower = {str(c).lower(): c for c in df.columns}
    renames = {lower[r.lower()]: r for r in required if r not in df.columns and r.lower() in lower}
    df = df.rename(columns=renames)
    for column in required:
        if column not in df.columns:
            problems.append(f"{where}: column {column!r}{what} is missing{closest(column, df.columns)}; {fix}")
    return df


def text_key(v) -> str | None:
    """Upper-case stripped text of a code (numbers without '.0'); None for missing."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    text = str(v).strip()
    return text.upper() if text else None


def id_text(v) -> str | None:
    """A subject id as text ('1001', not '1001.0'); None for missing."""
    if text_key(v) is None:
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    return str(v).strip()


def combined_sha256(tables: list[_Table]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """SHA-256 of the tables' bytes concatenated in order, and each table's own hash."""
    h = hashlib.sha256()
    for t in tables:
        h.update(t.raw)
    return h.hexdigest(), tuple((t.name, hashlib.sha256(t.raw).hexdigest()) for t in tables)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def show_ids(ids) -> str:
    ids = list(ids)
    more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return ", ".join(str(i) for i in ids[:_SHOWN]) + more


# =========================================================================== ADaM
def _read(source, label: str) -> _Table:
    """A table from a path, ``(file name, bytes)`` or a DataFrame; column names in upper case."""
    if isinstance(source, pd.DataFrame):
        df, name = source.reset_index(drop=True), f"{label} (DataFrame)"
        raw = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    elif isinstance(source, tuple) and len(source) == 2:
        name, raw = str(source[0]), bytes(source[1])
        df = read_table(raw, filename=name)
    elif isinstance(source, (str, os.PathLike)):
        name = Path(source).name
        try:
            raw = Path(source).read_bytes()
        except OSError:
            raise InvalidDataError(f"{label} file {str(source)!r} cannot be read (not found or a folder); check "
                                   "the path", source=name) from None
        df = read_table(raw, filename=name)
    else:
        raise TypeError(f"{label} must be a path, a (file name, bytes) pair or a DataFrame, "
                        f"not {type(source).__name__}")
    df.columns = [str(c).strip().upper() for c in df.columns]
    dups = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dups:
        raise InvalidDataError(f"variable name(s) {dups} appear more than once (names are compared ignoring "
                               "case); rename the copies", source=name)
    return _Table(df, name, raw)


def _choose_param(t: _Table, paramcd: str | None, problems: list[str]) -> pd.DataFrame | None:
    """The rows of one PARAMCD (needed when the file holds several)."""
    codes = t.df["PARAMCD"].map(text_key)
    found = codes.value_counts()
    label = ", ".join(f"{c!r} ({n} rows)" for c, n in found.items())
    if paramcd is None:
        if len(found) == 1:
            return t.df[codes == found.index[0]]
        problems.append(f"{t.name}: the file holds {len(found)} parameters ({label}); choose one with paramcd=")
        return None
    rows = codes == text_key(paramcd)
    if not rows.any():
        problems.append(f"{t.name}: PARAMCD {paramcd!r} is not in the file{closest(str(paramcd), found.index)}; "
                        f"found: {label}")
        return None
    return t.df[rows]


def _time_unit(rows: pd.DataFrame, name: str, problems: list[str], notes: list[str]) -> str:
    if "AVALU" not in rows.columns or rows["AVALU"].map(text_key).isna().all():
        notes.append(f"{name}: no AVALU; AVAL taken as days")
        return "days"
    codes = set(rows["AVALU"].map(text_key).dropna())
    units = {u for u, names in _UNITS.items() if codes & set(names)}
    unknown = sorted(c for c in codes if not any(c in names for names in _UNITS.values()))
    if unknown or len(units) != 1:
        problems.append(f"{name}: AVALU must hold one time unit (days, weeks, months or years) for the "
                        f"parameter; found {sorted(codes)}; convert AVAL to one unit")
        return "days"
    return units.pop()


def load_adam(adsl, *, adtte=None, bds=None, paramcd: str | None = None, arm: str | list[str] | None = None,
              arm_var: str = "TRT01P", baseline_numeric: list[str] | None = None,
              baseline_categorical: list[str] | None = None, visit: str | None = None,
              visit_unit: str | None = None, name: str | None = None) -> ImportedCohort:
    """A tte (``adtte=``) or longitudinal (``bds=``) cohort from CDISC ADaM datasets; see the module docstring.

    ``visit`` chooses the BDS visit variable (``"AVISITN"`` or ``"ADY"``; default AVISITN when present) and
    ``visit_unit`` the time unit of AVISITN (months when not given). Every problem raises one
    :class:`InvalidDataError`.
    """
    if (adtte is None) == (bds is None):
        raise InvalidDataError("give exactly one outcome dataset: adtte= (time to event) or bds= (visits, e.g. "
                               "ADQS)", source="ADaM import")
    sl = _read(adsl, "ADSL")
    out = _read(adtte if adtte is not None else bds, "ADTTE" if adtte is not None else "BDS")
    source = f"{sl.name} + {out.name}"
    problems: list[str] = []
    counts: dict[str, int] = {}
    notes: list[str] = []
    # ---------------------------------------------------------------- ADSL
    wanted_num = [c.upper() for c in baseline_numeric or []]
    wanted_cat = [c.upper() for c in baseline_categorical or []]
    given = baseline_numeric is not None or baseline_categorical is not None
    sl.df = require_columns(sl.df, ["USUBJID"], sl.name, problems)
    sl.df = require_columns(sl.df, [*wanted_num, *wanted_cat], sl.name, problems, " (a baseline covariate you "
                            "named)", "check baseline_numeric= / baseline_categorical= or the file")
    if arm is not None:
        sl.df = require_columns(sl.df, [arm_var.upper()], sl.name, problems, " (arm_var)",
                                "pass the ADSL variable holding the arm as arm_var= (e.g. 'ARM', 'TRT01A')")
    if adtte is not None:
        need_out = ["USUBJID", "PARAMCD", "AVAL", "CNSR"]
    else:
        visit = (visit or ("AVISITN" if "AVISITN" in out.df.columns or "ADY" not in out.df.columns else "ADY"))
        if visit.upper() not in ("AVISITN", "ADY"):
            raise InvalidDataError(f"visit={visit!r}: use 'AVISITN' or 'ADY'", source=out.name)
        visit = visit.upper()
        need_out = ["USUBJID", "PARAMCD", "AVAL", visit]
    out.df = require_columns(out.df, need_out, out.name, problems)
    if problems:
        raise InvalidDataError(problems, source=source)
    ids = sl.df["USUBJID"].map(id_text)
    dup = ids.duplicated(keep=False) & ids.notna()
    if dup.any():
        problems.append(f"{sl.name}: USUBJID {show_ids(sorted(set(ids[dup])))} on more than one row; ADSL "
                        "needs one row per subject")
    if ids.isna().any():
        problems.append(f"{sl.name}: USUBJID is missing in {rows_text(ids.isna())}; fill in every subject id")
    base = sl.df.assign(USUBJID=ids)
    counts["adsl_subjects"] = int(ids.nunique())
    if arm is not None:
        arms = [arm] if isinstance(arm, str) else list(arm)
        values = base[arm_var.upper()].map(text_key)
        keep = values.isin([text_key(a) for a in arms])
        if not keep.any():
            found = ", ".join(f"{v!r} ({n})" for v, n in base[arm_var.upper()].value_counts().items())
            problems.append(f"{sl.name}: no subject has {arm_var.upper()} = {arm!r}; arms found: {found}; "
                            "pass one of these as arm= (or another arm_var=, e.g. 'ARM' or 'TRT01A')")
        base = base[keep]
        counts["other_arm"] = int((~keep).sum())
        notes.append(f"{plural(int(keep.sum()), 'subject')} with {arm_var.upper()} in {arms} kept, "
                     f"{plural(counts['other_arm'], 'subject')} of other arms left out")
    if given:
        numeric, categorical = wanted_num, wanted_cat
    else:
        candidates = [c for c in sl.df.columns if c in ("AGE", "SEX", "RACE") or c.endswith("BL")]
        candidates = [c for c in candidates if c != arm_var.upper() and base[c].notna().any()]
        numeric = [c for c in candidates if pd.api.types.is_numeric_dtype(base[c])]
        categorical = [c for c in candidates if c not in numeric]
        notes.append(f"baseline covariates inferred from ADSL: numeric {numeric}, categorical {categorical}")
    for c in numeric:
        base[c] = numbers(base, c, sl.name, problems)
    # ---------------------------------------------------------------- outcome
    rows = _choose_param(out, paramcd, problems)
    if problems:
        raise InvalidDataError(problems, source=source)
    rows = rows.assign(USUBJID=rows["USUBJID"].map(id_text))
    rows = rows.assign(_blank=rows["AVAL"].map(text_key).isna(), AVAL=numbers(rows, "AVAL", out.name, problems))
    if adtte is not None:
        frame, schema = _tte(rows, out.name, base, numeric, categorical, problems, counts, notes)
    else:
        frame, schema = _bds(rows, out.name, base, numeric, categorical, visit, visit_unit, problems, counts,
                             notes)
    if problems:
        raise InvalidDataError(problems, source=source)
    not_in_adsl = sorted(set(rows["USUBJID"].dropna()) - set(ids.dropna()))
    if not_in_adsl:
        counts["not_in_adsl"] = len(not_in_adsl)
        notes.append(f"{out.name}: {plural(len(not_in_adsl), 'subject')} not in {sl.name} ignored "
                     f"({show_ids(not_in_adsl)})")
    missing = sorted(set(base["USUBJID"]) - set(frame["USUBJID"]))
    counts["no_outcome"] = len(missing)
    if missing:
        notes.append(f"{plural(len(missing), 'subject')} of {sl.name} without {out.name} records for the "
                     f"parameter left out ({show_ids(missing)})")
    if frame.empty:
        raise InvalidDataError(f"no subject is left: {counts['adsl_subjects']} in {sl.name}, {len(base)} after "
                               f"the arm filter, none with usable {out.name} records (see the parameter and arm "
                               "choices)", source=source)
    param = text_key(rows["PARAMCD"].iloc[0])
    cohort = cohort_from_frame(frame, schema, name=name or f"{Path(out.name).stem} {param}", source=source)
    sha, files = combined_sha256([sl, out])
    counts["patients"] = cohort.n_patients
    report = ImportReport(source=source, files=files, counts=counts, notes=tuple(notes))
    return ImportedCohort(name=cohort.name, schema=schema, data=cohort.data, source=source,
                          description=f"CDISC ADaM import, PARAMCD {param}: {cohort.n_patients} subjects.\n"
                          + str(report), sha256=sha, import_report=report)


def _tte(rows, name, base, numeric, categorical, problems, counts, notes):
    cnsr = numbers(rows, "CNSR", name, problems)
    bad = (cnsr.notna() & ((cnsr < 0) | (cnsr != np.floor(cnsr)))) | rows["CNSR"].map(text_key).isna()
    if bad.any():
        problems.append(f"{name}: CNSR must be 0 (event) or a positive integer (censored); check "
                        f"{rows_text(bad, rows['CNSR'])}")
    if rows["_blank"].any():
        problems.append(f"{name}: AVAL (time) is missing in {rows_text(rows['_blank'])} of the parameter; "
                        "every subject needs a time to event or censoring")
    unit = _time_unit(rows, name, problems, notes)
    dup = rows["USUBJID"].duplicated(keep=False) & rows["USUBJID"].notna()
    if dup.any():
        problems.append(f"{name}: USUBJID {show_ids(sorted(set(rows['USUBJID'][dup])))} on more than one row "
                        "for the parameter; ADTTE needs one row per subject and PARAMCD")
    event = (cnsr == 0).astype("int64").where(cnsr.notna())
    out = pd.DataFrame({"USUBJID": rows["USUBJID"].to_numpy(), "AVAL": rows["AVAL"].to_numpy(),
                        "EVENT": event.to_numpy()})
    frame = base[["USUBJID", *numeric, *categorical]].merge(out, on="USUBJID", how="inner")
    counts["events"] = int(frame["EVENT"].sum()) if not problems else 0
    schema = CohortSchema(id="USUBJID", outcome=OutcomeSpec("tte", time="AVAL", event="EVENT", time_unit=unit),
                          numeric=tuple(numeric), categorical=tuple(categorical))
    return frame, schema


def _bds(rows, name, base, numeric, categorical, visit, visit_unit, problems, counts, notes):
    if visit_unit is not None and visit_unit not in DAYS_PER_UNIT:
        problems.append(f"visit_unit={visit_unit!r} is unknown; use one of {', '.join(DAYS_PER_UNIT)}")
    baseline_flag = pd.Series(False, rows.index)
    if "ABLFL" in rows.columns:
        baseline_flag = rows["ABLFL"].map(text_key) == "Y"
    if "DTYPE" in rows.columns:
        derived = rows["DTYPE"].map(text_key).notna()
        counts["derived_records"] = int(derived.sum())
        if derived.any():
            notes.append(f"{name}: {plural(int(derived.sum()), 'derived record')} (DTYPE set, e.g. LOCF) dropped")
        rows, baseline_flag = rows[~derived], baseline_flag[~derived]
    time = numbers(rows, visit, name, problems)
    if visit == "ADY":
        time = (time.where(time < 1, time - 1) / DAYS_PER_MONTH).where(~baseline_flag, 0.0)
        column, unit = "MONTH", "months"
    else:
        column, unit = "AVISITN", visit_unit
    if time.isna().any():
        problems.append(f"{name}: {visit} is missing in {rows_text(time.isna())}; every record needs its visit")
    out = pd.DataFrame({"USUBJID": rows["USUBJID"].to_numpy(), column: time.to_numpy(),
                        "AVAL": rows["AVAL"].to_numpy(), "_base": baseline_flag.to_numpy()})
    pre = out[column] < 0
    counts["pre_baseline_records"] = int(pre.sum())
    if pre.any():
        notes.append(f"{name}: {plural(int(pre.sum()), 'pre-baseline record')} (negative {visit}) dropped")
    no_value = ~pre & out["AVAL"].isna()
    counts["missing_aval"] = int(no_value.sum())
    if no_value.any():
        notes.append(f"{name}: {plural(int(no_value.sum()), 'record')} without AVAL dropped")
    out = out[~pre & ~no_value].sort_values("_base", ascending=False, kind="stable")
    dup = out.duplicated(["USUBJID", column])
    counts["duplicate_visits"] = int(dup.sum())
    if dup.any():
        which = out[dup].apply(lambda r: f"{r['USUBJID']} at {column} {r[column]:g}", axis=1)
        notes.append(f"{name}: {plural(int(dup.sum()), 'duplicate record')} on the same visit dropped, the "
                     f"baseline (else first) record kept: {show_ids(which)}")
    out = out[~dup].sort_index().drop(columns="_base")
    frame = base[["USUBJID", *numeric, *categorical]].merge(out, on="USUBJID", how="inner")
    schema = CohortSchema(id="USUBJID", numeric=tuple(numeric), categorical=tuple(categorical),
                          outcome=OutcomeSpec("longitudinal", value="AVAL", visit=column, time_unit=unit))
    return frame, schema
