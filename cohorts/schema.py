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

__all__ = ["CohortSchema", "OutcomeSpec", "OUTCOME_TYPES", "TIME_UNITS", "DAYS_PER_UNIT"]

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
            except UnicodeDecodeError as exc:
                raise InvalidDataError(f"schema file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                       source=source) from None
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidDataError(f"not valid TOML: {exc}", source=source) from None
        return cls.from_dict(d, source=source)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self.outcome).items() if v is not None}
        return {"id": self.id,
                "baseline": {"numeric": list(self.numeric), "categorical": list(self.categorical)},
                "outcome": out}

    def to_toml(self) -> str:
        """TOML text that :meth:`from_toml` reads back to an equal schema."""
        def lit(v):
            if isinstance(v, str):
                return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if isinstance(v, list):
                return "[" + ", ".join(lit(x) for x in v) + "]"
            return repr(float(v)) if isinstance(v, float) else str(v)
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

        Heuristics: an id column is named like ``*id*`` or is unique integers/strings; a 0/1 column named like
        ``event``/``death``/``status`` with a positive numeric ``time``-like column gives a tte outcome; a repeated
        id with a ``visit``/``month``/``week`` column gives a longitudinal outcome. Remaining columns with few
        distinct values or non-numeric dtype are categorical; the rest numeric.
        """
        cols = list(df.columns)
        lower = {c: str(c).lower() for c in cols}

        def pick(pred):
            return next((c for c in cols if pred(c)), None)

        id = id or pick(lambda c: lower[c] in ("id", "patient_id", "subject_id", "usubjid", "pid", "subject")) \
            or pick(lambda c: lower[c].endswith("_id") or lower[c].endswith("id"))
        if id is None:
            raise InvalidDataError("could not find a patient id column; name it with `id=`", source="schema inference")
        repeated = df[id].duplicated().any()
        visit = visit or (pick(lambda c: lower[c] in ("visit", "month", "months", "week", "weeks", "day",
                                                      "visit_month", "time", "visit_time")) if repeated else None)
        event = event or pick(lambda c: any(w in lower[c] for w in ("event", "death", "died", "status", "censor"))
                              and set(pd.unique(df[c].dropna())) <= {0, 1})
        time = time or pick(lambda c: c not in (event, visit, id) and pd.api.types.is_numeric_dtype(df[c])
                            and any(w in lower[c] for w in ("time", "days", "months", "surv", "futime")))
        if outcome_type is None:
            if repeated and visit is not None:
                outcome_type = "longitudinal"
            elif time is not None and event is not None:
                outcome_type = "tte"
            elif value is not None:
                outcome_type = "binary" if set(pd.unique(df[value].dropna())) <= {0, 1} else "continuous"
            else:
                raise InvalidDataError("could not guess the outcome: pass outcome_type and its columns",
                                       source="schema inference")
        if outcome_type == "longitudinal" and value is None:
            value = pick(lambda c: c not in (id, visit) and pd.api.types.is_numeric_dtype(df[c])
                         and df.groupby(df[id])[c].nunique().max() > 1)
        spec = OutcomeSpec(type=outcome_type,
                           time=time if outcome_type == "tte" else None,
                           event=event if outcome_type == "tte" else None,
                           value=value if outcome_type != "tte" else None,
                           visit=visit if outcome_type == "longitudinal" else None)
        taken = {id, *spec.columns}
        numeric, categorical = [], []
        for c in cols:
            if c in taken:
                continue
            s = df[c]
            if repeated and df.groupby(df[id])[c].nunique(dropna=False).max() > 1:
                continue  # varies within patient: not a baseline covariate
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
                    and s.nunique(dropna=True) > min(max_categories, 10) or \
                    pd.api.types.is_float_dtype(s) and s.nunique(dropna=True) > 2:
                numeric.append(c)
            elif s.nunique(dropna=True) <= max_categories or not pd.api.types.is_numeric_dtype(s):
                if s.nunique(dropna=True) <= max_categories:
                    categorical.append(c)
            else:
                numeric.append(c)
        return cls.from_dict({"id": id, "baseline": {"numeric": numeric, "categorical": categorical},
                              "outcome": {k: v for k, v in vars(spec).items() if v is not None}},
                             source="schema inference")


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


def _is_integer_valued(s: pd.Series) -> bool:
    v = pd.to_numeric(s, errors="coerce").dropna().to_numpy(dtype=float)
    return v.size > 0 and bool(np.all(np.equal(np.floor(v), v)))
