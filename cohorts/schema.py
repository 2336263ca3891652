"""Column roles of a historical cohort: :class:`CohortSchema`.

A schema names the patient id, the baseline covariates (numeric and categorical) and one outcome of type
``tte`` (time, event), ``continuous`` or ``binary`` (value) or ``longitudinal`` (long format: one row per
visit, with a visit-time column and a value column). It is read from TOML::

    id = "patient_id"
    [baseline]
    numeric = ["age", "cd4"]
    categorical = ["sex", "ivdrug"]
    [outcome]
    type = "tte"            # tte | continuous | binary | longitudinal
    time = "time_days"      # tte
    event = "aids_or_death" # tte: 1 = event, 0 = censored
    # value = "alsfrs_r"    # continuous | binary | longitudinal
    # visit = "month"       # longitudinal
    # time_unit = "days"    # optional: days | weeks | months | years (tte time or longitudinal visit)
    # lower = 0             # optional bounds of a continuous/longitudinal value (e.g. ALSFRS-R 0-48)
    # upper = 48

Validation of the schema itself lives here; validation of data against a schema lives in ``cohorts.io``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError

__all__ = ["CohortSchema", "OutcomeSpec", "OUTCOME_TYPES", "TIME_UNITS", "DAYS_PER_UNIT", "toml_literal",
           "is_integer_valued"]

OUTCOME_TYPES = ("tte", "continuous", "binary", "longitudinal")
TIME_UNITS = ("days", "weeks", "months", "years")
#: length of one time unit in days (a month is 365.25 / 12 days)
DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}

_REQUIRED = {
    "tte": ("time", "event"),
    "continuous": ("value",),
    "binary": ("value",),
    "longitudinal": ("value", "visit"),
}
_ALLOWED_OUTCOME_KEYS = {"type", "time", "event", "value", "visit", "time_unit", "lower", "upper"}
_DEFAULT_UNIT = {"tte": "days", "longitudinal": "months"}


def closest(name: str, candidates) -> str:
    """' (did you mean X?)' for the closest candidate, or ''."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


@dataclass(frozen=True)
class OutcomeSpec:
    """The outcome columns and their meaning."""

    type: str
    time: str | None = None
    event: str | None = None
    value: str | None = None
    visit: str | None = None
    time_unit: str | None = None
    lower: float | None = None
    upper: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.visit, self.time, self.event, self.value) if c is not None)

    @property
    def unit(self) -> str | None:
        """Time unit of ``time`` (tte) or ``visit`` (longitudinal); ``None`` for other types."""
        return self.time_unit or _DEFAULT_UNIT.get(self.type)


@dataclass(frozen=True)
class CohortSchema:
    """Column roles of a cohort. Build with :meth:`from_toml`, :meth:`from_dict` or :meth:`infer`."""

    id: str
    outcome: OutcomeSpec
    numeric: tuple[str, ...] = field(default_factory=tuple)
    categorical: tuple[str, ...] = field(default_factory=tuple)

    # ------------------------------------------------------------------ views
    @property
    def baseline(self) -> tuple[str, ...]:
        """All baseline covariates, numeric first."""
        return self.numeric + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the schema names, in a stable order."""
        return (self.id,) + self.baseline + self.outcome.columns

    @property
    def is_longitudinal(self) -> bool:
        return self.outcome.type == "longitudinal"

    # ------------------------------------------------------------- building
    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str | None = None) -> "CohortSchema":
        """Build and check a schema from a parsed TOML dict; every problem is reported at once."""
        problems: list[str] = []
        if not isinstance(d, dict):
            raise InvalidDataError("the schema must be a TOML table", source=source)
        for key in d:
            if key not in ("id", "baseline", "outcome"):
                problems.append(f"unknown key {key!r}{closest(key, ['id', 'baseline', 'outcome'])}; "
                                "allowed: id, baseline, outcome")
        pid = d.get("id")
        if not isinstance(pid, str) or not pid:
            problems.append("key 'id' is missing or not a string: give the patient id column, e.g. id = \"patient_id\"")
        base = d.get("baseline", {})
        numeric: list[str] = []
        categorical: list[str] = []
        if not isinstance(base, dict):
            problems.append("[baseline] must be a table with 'numeric' and 'categorical' lists")
        else:
            for key in base:
                if key not in ("numeric", "categorical"):
                    problems.append(f"unknown key 'baseline.{key}'{closest(key, ['numeric', 'categorical'])}; "
                                    "allowed: numeric, categorical")
            for key, dest in (("numeric", numeric), ("categorical", categorical)):
                val = base.get(key, [])
                if not isinstance(val, list) or not all(isinstance(v, str) and v for v in val):
                    problems.append(f"'baseline.{key}' must be a list of column names, e.g. [\"age\", \"sex\"]")
                else:
                    dest.extend(val)
        out = d.get("outcome")
        spec = None
        if not isinstance(out, dict):
            problems.append("[outcome] table is missing: give type = tte | continuous | binary | longitudinal "
                            "and its columns")
        else:
            spec, outcome_problems = _outcome_from_dict(out)
            problems += outcome_problems
        if not problems:
            named = [pid, *numeric, *categorical, *spec.columns]
            dups = sorted({c for c in named if named.count(c) > 1})
            if dups:
                problems.append(f"column(s) {dups} have more than one role; give each column one role")
        if problems:
            raise InvalidDataError(problems, source=source)
        return cls(id=pid, outcome=spec, numeric=tuple(numeric), categorical=tuple(categorical))

    @classmethod
    def from_toml(cls, path_or_text: str | Path) -> "CohortSchema":
        """Read a schema from a TOML file path (or from TOML text when given a string with a newline)."""
        if isinstance(path_or_text, str) and "\n" in path_or_text:
            text, source = path_or_text, "schema text"
        else:
            path = Path(path_or_text)
            source = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InvalidDataError(f"schema file not found: {path}; check the path", source=source) from None
            except OSError as exc:  # a folder, no permission ...
                raise InvalidDataError(f"cannot read the schema file {path} ({exc.strerror or exc}); give the path "
                                       "of a .toml file", source=source) from None
            except UnicodeDecodeError as exc:
                raise InvalidDataError(f"schema file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                       source=source) from None
        return cls.from_toml_text(text, source=source)

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "schema text", hint: str = "") -> "CohortSchema":
        """Read a schema from TOML text; ``hint`` follows the TOML parser's message when the text is not TOML."""
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidDataError(f"not valid TOML: {exc}{hint}", source=source) from None
        return cls.from_dict(d, source=source)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self.outcome).items() if v is not None}
        return {"id": self.id,
                "baseline": {"numeric": list(self.numeric), "categorical": list(self.categorical)},
                "outcome": out}

    def to_toml(self) -> str:
        """TOML text that :meth:`from_toml` reads back to an equal schema."""
        lit = toml_literal
        d = self.to_dict()
        lines = [f"id = {lit(d['id'])}", "", "[baseline]"]
        lines += [f"{k} = {lit(v)}" for k, v in d["baseline"].items()]
        lines += ["", "[outcome]"] + [f"{k} = {lit(v)}" for k, v in d["outcome"].items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def infer(cls, df: pd.DataFrame, *, outcome_type: str | None = None, id: str | None = None,
              time: str | None = None, event: str | None = None, value: str | None = None,
              visit: str | None = None, max_categories: int = 20) -> "CohortSchema":
        """Guess column roles from a DataFrame (for the UI); explicit arguments win over guesses.

        Rules, in order (column names are compared in lower case):

        1. id: a column named like a patient id (``patient_id``, ``usubjid``, ``pid`` ... or ending in ``_id``).
        2. outcome type: ``longitudinal`` when ids repeat; else ``continuous``/``binary`` when only ``value`` is
           given; else ``tte``.
        3. tte: event = the 0/1 column named like event/death/died/status/censor; time = the numeric column
           named like time/surv (preferred) or days/weeks/months/years. Longitudinal: visit = the numeric
           column varying within patients named visit/time/month... (exact names first, then names containing
           visit or ending in delta, then any time-like name); value = the one numeric, non-0/1 column that
           varies within patients and is not named like a time.
        4. baseline: every other column that is constant within each patient. Numbers are ``numeric``, except
           0/1 columns and integer codes with at most 5 levels, which are ``categorical``; booleans and text
           with at most ``max_categories`` levels are ``categorical``; other text (free text, dates) and empty
           columns are left out.

        A role with no candidate or several raises :class:`InvalidDataError` naming the argument to pass.
        The time unit is taken from the time/visit column name when it contains one (``time_days`` -> days).
        """
        _check_infer_arguments(df, outcome_type, id=id, time=time, event=event, value=value, visit=visit)
        id = id or _pick_one(_id_candidates(df), "patient id", "id")
        repeated = bool(df[id].dropna().duplicated().any())
        varying = _varying_columns(df, id) if repeated else set()
        if outcome_type is None:
            if repeated:
                outcome_type = "longitudinal"
            elif value is not None and time is None and event is None:
                outcome_type = "binary" if _is_binary(df[value]) else "continuous"
            else:
                outcome_type = "tte"
        outcome: dict[str, Any] = {"type": outcome_type}
        if outcome_type == "tte":
            event = event or _pick_one(_event_candidates(df, exclude={id, time}),
                                       "tte event column (0/1, named like event/death/status)", "event",
                                       hint="; or pass outcome_type= and value= for another outcome")
            time = time or _pick_one(_best_by_score(_numeric_columns(df, exclude={id, event}), _time_score),
                                     "tte time column (numeric, named like time/days)", "time")
            outcome.update(time=time, event=event, time_unit=_unit_from_name(time))
        elif outcome_type == "longitudinal":
            visit = visit or _pick_one(
                _best_by_score(_numeric_columns(df, exclude={id, value}, only=varying), _visit_score),
                "visit time column (numeric, varies within patients, named like visit/time/month)", "visit")
            value = value or _pick_one(
                [c for c in _numeric_columns(df, exclude={id, visit}, only=varying)
                 if _visit_score(c) == 0 and not _is_binary(df[c])],
                "longitudinal value column (numeric, varies within patients)", "value")
            outcome.update(visit=visit, value=value, time_unit=_unit_from_name(visit))
        else:
            if value is None:
                raise InvalidDataError(f"outcome type {outcome_type!r} needs its value column: pass value=",
                                       source=_INFER_SOURCE)
            outcome["value"] = value
        taken = {id, *(v for k, v in outcome.items() if k in ("time", "event", "visit", "value"))}
        numeric, categorical = _baseline_roles(df, taken | varying, max_categories)
        return cls.from_dict({"id": id, "baseline": {"numeric": numeric, "categorical": categorical},
                              "outcome": {k: v for k, v in outcome.items() if v is not None}},
                             source=_INFER_SOURCE)


def _outcome_from_dict(out: dict[str, Any]) -> tuple[OutcomeSpec | None, list[str]]:
    problems: list[str] = []
    for key in out:
        if key not in _ALLOWED_OUTCOME_KEYS:
            problems.append(f"unknown key 'outcome.{key}'{closest(key, _ALLOWED_OUTCOME_KEYS)}; "
                            f"allowed: {', '.join(sorted(_ALLOWED_OUTCOME_KEYS))}")
    otype = out.get("type")
    if otype not in OUTCOME_TYPES:
        problems.append(f"'outcome.type' is {otype!r}{closest(otype, OUTCOME_TYPES) if otype else ''}; "
                        f"allowed: {', '.join(OUTCOME_TYPES)}")
        return None, problems
    for key in _REQUIRED[otype]:
        if not isinstance(out.get(key), str) or not out.get(key):
            problems.append(f"'outcome.{key}' (a column name) is required for outcome type {otype!r}")
    for key in ("time", "event", "value", "visit"):
        if key in out and key not in _REQUIRED[otype]:
            problems.append(f"'outcome.{key}' does not apply to outcome type {otype!r}; "
                            f"it uses {', '.join(_REQUIRED[otype])}")
    unit = out.get("time_unit")
    if unit is not None and (otype not in ("tte", "longitudinal") or unit not in TIME_UNITS):
        problems.append(f"'outcome.time_unit' is {unit!r}; allowed for tte or longitudinal outcomes: "
                        f"{', '.join(TIME_UNITS)}")
    bounds = {}
    for key in ("lower", "upper"):
        if key in out:
            v = out[key]
            if otype not in ("continuous", "longitudinal"):
                problems.append(f"'outcome.{key}' applies only to continuous or longitudinal outcomes")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"'outcome.{key}' must be a finite number, got {v!r}")
            else:
                bounds[key] = float(v)
    if len(bounds) == 2 and bounds["lower"] >= bounds["upper"]:
        problems.append(f"'outcome.lower' ({bounds['lower']}) must be below 'outcome.upper' ({bounds['upper']})")
    if problems:
        return None, problems
    return OutcomeSpec(type=otype, time=out.get("time"), event=out.get("event"), value=out.get("value"),
                       visit=out.get("visit"), time_unit=unit, lower=bounds.get("lower"),
                       upper=bounds.get("upper")), problems


def is_integer_valued(values) -> bool:
    """True when every non-missing value is a whole number (and there is at least one)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    return v.size > 0 and bool(np.all(np.floor(v) == v))


def toml_literal(v) -> str:
    """A TOML literal for a bool, number, string or list of them (what schema and scenario files hold)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_literal(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


# ------------------------------------------------------------------ inference helpers
_INFER_SOURCE = "schema inference"
_ID_NAMES = ("patient_id", "subject_id", "usubjid", "subjid", "patid", "pid", "id", "patient", "subject")
_EVENT_WORDS = ("event", "death", "died", "dead", "status", "censor")
_TIME_WORDS = ("time", "surv", "duration")
_UNIT_WORDS = {"day": "days", "week": "weeks", "month": "months", "year": "years"}
_VISIT_NAMES = ("visit", "time", "month", "months", "week", "weeks", "day", "days", "year", "years",
                "visit_month", "visit_week", "visit_day", "visit_time")


def _check_infer_arguments(df: pd.DataFrame, outcome_type: str | None, **columns: str | None) -> None:
    """Every explicitly named column exists and the outcome type is known; all problems at once."""
    problems = [f"{arg}={col!r} is not a column of the data{closest(col, df.columns)}"
                for arg, col in columns.items() if col is not None and col not in df.columns]
    if outcome_type is not None and outcome_type not in OUTCOME_TYPES:
        problems.append(f"outcome_type={outcome_type!r} is unknown{closest(outcome_type, OUTCOME_TYPES)}; "
                        f"allowed: {', '.join(OUTCOME_TYPES)}")
    if df.columns.duplicated().any():
        dups = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        problems.append(f"column name(s) {dups} appear more than once; give every column a unique name")
    if problems:
        raise InvalidDataError(problems, source=_INFER_SOURCE)


def _pick_one(candidates: list[str], role: str, argument: str, hint: str = "") -> str:
    """The single candidate for a role, or an error telling the user which argument to pass."""
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InvalidDataError(f"could not find the {role}; pass {argument}=\"<column name>\"{hint}",
                               source=_INFER_SOURCE)
    names = ", ".join(repr(c) for c in candidates)
    raise InvalidDataError(f"several columns could be the {role}: {names}; pass {argument}= to choose one",
                           source=_INFER_SOURCE)


def _best_by_score(columns: list[str], score) -> list[str]:
    """The columns sharing the highest positive score (several means the choice is ambiguous)."""
    scores = {c: score(c) for c in columns}
    best = max(scores.values(), default=0)
    return [c for c, s in scores.items() if s == best and s > 0]


def _id_candidates(df: pd.DataFrame) -> list[str]:
    lower = {str(c).lower(): c for c in df.columns}
    for name in _ID_NAMES:
        if name in lower:
            return [lower[name]]
    return [c for c in df.columns if str(c).lower().endswith("_id") or str(c).endswith(("ID", "Id"))]


def _is_binary(s: pd.Series) -> bool:
    """True for a boolean column or a numeric column whose values are all 0 or 1."""
    if pd.api.types.is_bool_dtype(s):
        return True
    if not pd.api.types.is_numeric_dtype(s):
        return False
    values = s.dropna()
    return not values.empty and bool(values.isin([0, 1]).all())


def _numeric_columns(df: pd.DataFrame, *, exclude: set, only: set | None = None) -> list[str]:
    return [c for c in df.columns if c not in exclude and (only is None or c in only)
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def _event_candidates(df: pd.DataFrame, *, exclude: set) -> list[str]:
    return [c for c in df.columns if c not in exclude and _is_binary(df[c])
            and any(w in str(c).lower() for w in _EVENT_WORDS)]


def _time_score(column: str) -> int:
    name = str(column).lower()
    if any(w in name for w in _TIME_WORDS):
        return 2
    return 1 if any(w in name for w in _UNIT_WORDS) else 0


def _visit_score(column: str) -> int:
    name = str(column).lower()
    if name in _VISIT_NAMES:
        return 3
    if "visit" in name or name.endswith("delta"):
        return 2
    return 1 if _time_score(column) else 0


def _unit_from_name(column: str | None) -> str | None:
    name = str(column).lower() if column is not None else ""
    return next((unit for word, unit in _UNIT_WORDS.items() if word in name), None)


def _varying_columns(df: pd.DataFrame, id: str) -> set:
    """Columns whose value changes within at least one patient (missing counts as a value)."""
    per_patient = df.groupby(id, sort=False, dropna=True).nunique(dropna=False)
    return set(per_patient.columns[(per_patient > 1).any()])


def _baseline_roles(df: pd.DataFrame, taken: set, max_categories: int) -> tuple[list[str], list[str]]:
    numeric, categorical = [], []
    for c in df.columns:
        if c in taken:
            continue
        kind = _baseline_kind(df[c], max_categories)
        if kind == "numeric":
            numeric.append(c)
        elif kind == "categorical":
            categorical.append(c)
    return numeric, categorical


def _baseline_kind(s: pd.Series, max_categories: int) -> str | None:
    """'numeric', 'categorical' or None (left out: empty, free text, too many levels)."""
    values = s.dropna()
    if values.empty:
        return None
    levels = values.nunique()
    if pd.api.types.is_bool_dtype(s):
        return "categorical"
    if pd.api.types.is_numeric_dtype(s):
        few_codes = levels <= 5 and is_integer_valued(values)
        return "categorical" if levels <= 2 or few_codes else "numeric"
    return "categorical" if levels <= max_categories else None
