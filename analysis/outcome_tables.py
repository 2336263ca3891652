"""Tables of one trial's outcome (real or simulated): Table 1, numbers at risk, mean trajectories, subgroups.

Pure functions: a patient-level DataFrame in, a DataFrame out (shared by the app and the report).

* :func:`table_one`: baseline characteristics by arm with an overall column (the ``tableone`` package,
  Pollard et al., JAMIA Open 2018) and the standardized mean difference per variable. Continuous:
  ``SMD = (m1 - m0) / sqrt((s1^2 + s0^2) / 2)`` (sample SDs, ddof 1; signed, treated minus control);
  categorical: the Yang & Dalton (2012) multinomial SMD, which for a binary variable is
  ``|p1 - p0| / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2)`` (non-negative, as R tableone). Checked against these
  closed forms and against pandas counts and means.
* :func:`numbers_at_risk`: patients with ``time >= t`` per arm (the row under a Kaplan-Meier plot).
* :func:`trajectory_table`: n, mean, SD and the 95 % t interval ``mean -/+ t_{0.975, n-1} sd / sqrt(n)`` of a
  longitudinal value per arm and visit. Checked against pandas and ``scipy.stats.t.interval``.
* :func:`subgroup_effects`: the registered single-dataset estimator
  (:data:`analysis.estimators.SINGLE`) overall and within each level of each subgroup column; a level with too
  few patients gives NaN and a note, never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.estimators import RATIO_ANALYSES, null_estimate
from cohorts.errors import InvalidDataError, UnknownNameError

__all__ = ["table_one", "numbers_at_risk", "nice_times", "trajectory_table", "subgroup_effects",
           "arm_levels", "RATIO_ANALYSES"]

#: a numeric subgroup column with more distinct values than this is split at its median
MAX_LEVELS = 5


def _require(data: pd.DataFrame, columns) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InvalidDataError([f"column {c!r} not found; available columns: {', '.join(map(str, data.columns))}"
                                for c in missing])


def arm_levels(data: pd.DataFrame, arm: str, treated_value=None, *, exactly_two: bool = True) -> list:
    """The arm values in display order: control(s) first, ``treated_value`` last.

    Without ``treated_value`` the sorted distinct values are used (the last one is taken as treated).
    """
    _require(data, [arm])
    values = pd.unique(data[arm].dropna())
    try:
        levels = sorted(values.tolist())
    except TypeError:
        levels = sorted(values.tolist(), key=str)
    if exactly_two and len(levels) != 2:
        raise InvalidDataError(f"column {arm!r}: two arms are needed, found {len(levels)}: "
                               f"{[str(v) for v in levels]}; filter the data to two arms first")
    if treated_value is not None:
        if treated_value not in levels:
            raise InvalidDataError(f"column {arm!r}: treated_value {treated_value!r} does not occur; values are "
                                   f"{[str(v) for v in levels]}")
        levels = [v for v in levels if v != treated_value] + [treated_value]
    return levels


# -------------------------------------------------------------------------------------------- Table 1
def table_one(data: pd.DataFrame, *, arm: str, columns: Sequence[str], categorical: Sequence[str] | None = None,
              nonnormal: Sequence[str] | None = None, treated_value=None, decimals: int = 1) -> pd.DataFrame:
    """Table 1: baseline characteristics by arm (control, treated), an overall column and the SMD.

    ``data`` has one row per patient. ``categorical`` defaults to the non-numeric (or boolean) ``columns``;
    ``nonnormal`` continuous columns show median [Q1, Q3] instead of mean (SD). Rows with a missing arm are
    left out. Returns one row per table line with columns ``variable`` (label with the statistic shown),
    ``level`` (category, '' for continuous), ``column`` (the data column), ``Missing``, ``Overall``, one column
    per arm (control first) holding formatted text, and ``SMD`` (float, on each variable's first line).
    """
    from tableone import TableOne

    columns = list(columns)
    _require(data, [arm, *columns])
    if arm in columns:
        raise InvalidDataError(f"column {arm!r} is the arm; leave it out of columns")
    control, treated = arm_levels(data, arm, treated_value)
    if categorical is None:
        categorical = [c for c in columns if not pd.api.types.is_numeric_dtype(data[c])
                       or pd.api.types.is_bool_dtype(data[c])]
    categorical = [c for c in categorical if c in columns]
    nonnormal = [c for c in (nonnormal or []) if c in columns and c not in categorical]
    bad = [c for c in columns if c not in categorical and not pd.api.types.is_numeric_dtype(data[c])]
    if bad:
        raise InvalidDataError(f"columns {bad} are not numeric; list them in categorical")
    # string arm labels so that tableone's column order and SMD direction follow (control, treated)
    names = (str(control), str(treated))
    frame = data.loc[data[arm].notna(), columns].copy()
    frame["__arm__"] = data.loc[data[arm].notna(), arm].map({control: names[0], treated: names[1]})
    for c in categorical:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), "(missing)").astype(str)
    with warnings.catch_warnings():  # tableone 0.9.6 uses indexing pandas 3 deprecates (Pandas4Warning)
        warnings.simplefilter("ignore")
        t = TableOne(frame, columns=columns, categorical=list(categorical), nonnormal=nonnormal,
                     groupby="__arm__", order={"__arm__": list(names)}, smd=True, pval=False, overall=True,
                     missing=True, decimals=decimals)
    table = t.tableone.copy()
    table.columns = [c[1] if isinstance(c, tuple) else c for c in table.columns]
    smd_col = [c for c in table.columns if str(c).startswith("SMD")]
    table = table.drop(columns=smd_col)
    smd = t.smd_table.iloc[:, 0].astype(float)
    if t.smd_table.columns[0] != f"SMD ({names[0]},{names[1]})":  # defensive: direction is (b - a)
        raise RuntimeError(f"tableone SMD column {t.smd_table.columns[0]!r} is not (control,treated)")

    label_of = {}
    for c in columns:
        for lab in table.index.get_level_values(0).unique():
            if lab == c or str(lab).startswith(f"{c}, "):
                label_of[lab] = c
    out = table.reset_index()
    out.columns = ["variable", "level", *table.columns]
    out["column"] = out["variable"].map(label_of).fillna("")
    first = ~out["variable"].duplicated()
    out["SMD"] = np.where(first & (out["column"] != ""), out["column"].map(smd).astype(float), np.nan)
    out = out[["variable", "level", "column", "Missing", "Overall", names[0], names[1], "SMD"]]
    text = ["variable", "level", "Missing", "Overall", names[0], names[1]]
    out[text] = out[text].fillna("").astype(str)   # one type per column (Arrow, the app's tables)
    out.attrs.update({"arm": arm, "control": control, "treated": treated})
    return out


# -------------------------------------------------------------------------------------- numbers at risk
def nice_times(t_max: float, k: int = 6) -> np.ndarray:
    """About ``k`` round time points from 0 to ``t_max`` (step 1, 2, 2.5 or 5 times a power of ten)."""
    if not (t_max > 0 and math.isfinite(t_max)):
        return np.array([0.0])
    raw = t_max / max(k - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return np.arange(0.0, t_max + 1e-9 * step, step)


def numbers_at_risk(data: pd.DataFrame, *, time: str, arm: str, times: Sequence[float] | None = None,
                    arms: Sequence | None = None) -> pd.DataFrame:
    """Patients at risk (``time >= t``) per arm (rows) at each of ``times`` (columns).

    ``times`` defaults to :func:`nice_times` up to the largest time; ``arms`` (row order) to the sorted arm
    values. Rows with a missing time or arm are not counted.
    """
    _require(data, [time, arm])
    t = pd.to_numeric(data[time], errors="coerce")
    if times is None:
        times = nice_times(float(t.max()) if t.notna().any() else 0.0)
    arms = list(arms) if arms is not None else arm_levels(data, arm, exactly_two=False)
    grid = np.asarray(times, dtype=float)
    rows = []
    for a in arms:
        ta = t[(data[arm] == a).to_numpy()].dropna().to_numpy(float)
        rows.append((ta[None, :] >= grid[:, None]).sum(axis=1))
    out = pd.DataFrame(rows, index=pd.Index(arms, name=arm), columns=pd.Index(grid, name=time))
    return out


# -------------------------------------------------------------------------------------- trajectories
def trajectory_table(data: pd.DataFrame, *, id: str, visit: str, value: str, arm: str,
                     arms: Sequence | None = None, level: float = 0.95) -> pd.DataFrame:
    """Per arm and visit: ``n`` (patients with a value), ``mean``, ``sd`` (ddof 1), ``se`` and the ``level``
    t interval ``ci_low``, ``ci_high`` (NaN where n < 2). Long data: one row per patient visit."""
    _require(data, [id, visit, value, arm])
    d = pd.DataFrame({"id": data[id], "arm": data[arm], "visit": pd.to_numeric(data[visit], errors="coerce"),
                      "y": pd.to_numeric(data[value], errors="coerce")}).dropna(subset=["id", "arm", "visit"])
    dup = d.duplicated(["id", "visit"])
    if dup.any():
        first = d[dup].iloc[0]
        raise InvalidDataError(f"columns {id!r}/{visit!r}: {int(dup.sum())} duplicated patient-visit rows "
                               f"(e.g. {id}={first['id']!r}, {visit}={first['visit']!r}); keep one row per visit")
    arms = list(arms) if arms is not None else arm_levels(data, arm, exactly_two=False)
    d = d.dropna(subset=["y"])
    rows = []
    for a in arms:
        g = d[d["arm"] == a].groupby("visit")["y"].agg(["count", "mean", "std"]).reset_index()
        g.insert(0, "arm", a)
        rows.append(g)
    out = pd.concat(rows, ignore_index=True).rename(columns={"count": "n", "std": "sd"})
    n = out["n"].to_numpy(float)
    with np.errstate(all="ignore"):
        se = out["sd"].to_numpy(float) / np.sqrt(n)
        q = stats.t.ppf(0.5 + level / 2, n - 1)
    ok = n >= 2
    out["se"] = np.where(ok, se, np.nan)
    out["ci_low"] = np.where(ok, out["mean"] - q * se, np.nan)
    out["ci_high"] = np.where(ok, out["mean"] + q * se, np.nan)
    out["n"] = out["n"].astype(int)
    return out.rename(columns={"visit": visit})


# ---------------------------------------------------------------------------------------- subgroups
def _levels(data: pd.DataFrame, column: str, spec, id_col: str | None):
    """``[(level label, row mask)]`` for one subgroup column."""
    col = data[column]
    if id_col is not None:
        varies = data.groupby(id_col, sort=False)[column].nunique(dropna=False) > 1
        if varies.any():
            raise InvalidDataError(f"subgroup column {column!r} changes within patients "
                                   f"{varies.index[varies][:5].tolist()}; use a baseline covariate")
    if isinstance(spec, (list, tuple)):
        return [(v, (col == v).to_numpy()) for v in spec]
    values = pd.unique(col.dropna())
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and len(values) > MAX_LEVELS:
        x = pd.to_numeric(col, errors="coerce")
        base = x.groupby(data[id_col]).first() if id_col is not None else x
        m = float(base.median())
        return [(f"<= {m:.4g}", (x <= m).to_numpy()), (f"> {m:.4g}", (x > m).to_numpy())]
    try:
        values = sorted(values.tolist())
    except TypeError:
        values = sorted(values.tolist(), key=str)
    return [(v, (col == v).to_numpy()) for v in values]


def subgroup_effects(data: pd.DataFrame, *, analysis: str, subgroups: Mapping[str, Sequence | str] | Sequence[str],
                     min_per_arm: int = 2, **analysis_kwargs) -> pd.DataFrame:
    """Treatment effect overall and within each level of each subgroup, with the registered estimator.

    ``analysis`` names an entry of :data:`analysis.estimators.SINGLE`; ``analysis_kwargs`` are its keywords
    (columns, ``arm``, ``treated_value``, ``alpha`` ...). ``subgroups`` maps a label to a column name (every
    level of that column; a numeric column with more than :data:`MAX_LEVELS` values is split at its median
    over patients) or to a list of levels of the column named by the label; a plain list of column names is
    also accepted. A level with fewer than ``min_per_arm`` patients in an arm, or where the estimator rejects
    the subset, gives NaN and a ``note``.

    Returns one row per level (the first row is ``Overall``): ``subgroup``, ``level``, ``label``, ``n``
    (patients in the subset), ``n_control``, ``n_treated`` (analysable), ``estimate``, ``ci_low``,
    ``ci_high``, ``p_value``, ``note``. ``attrs``: ``analysis``, ``method``, ``ratio`` (estimate is a ratio),
    ``null_value``.
    """
    from analysis.estimators import SINGLE

    try:
        fn = SINGLE[analysis]
    except KeyError:
        raise UnknownNameError("analysis", analysis, SINGLE) from None
    if "arm" not in analysis_kwargs or "treated_value" not in analysis_kwargs:
        raise TypeError("subgroup_effects needs the estimator's arm= and treated_value= keywords")
    arm, treated_value = analysis_kwargs["arm"], analysis_kwargs["treated_value"]
    id_col = analysis_kwargs.get("id")
    if not isinstance(subgroups, Mapping):
        subgroups = {c: c for c in subgroups}
    specs = {label: (spec, spec) if isinstance(spec, str) else (label, list(spec))
             for label, spec in subgroups.items()}
    _require(data, [arm, *(col for col, _ in specs.values())])

    def patients(mask) -> tuple[int, int, int]:
        sub = data[mask]
        is_t = (sub[arm] == treated_value).to_numpy() & sub[arm].notna().to_numpy()
        is_c = ~is_t & sub[arm].notna().to_numpy()
        if id_col is None:
            return int(is_c.sum()), int(is_t.sum()), len(sub)
        ids = sub[id_col]
        return int(ids[is_c].nunique()), int(ids[is_t].nunique()), int(ids.nunique())

    method = ""
    rows = []

    def one(subgroup, level, label, mask):
        nonlocal method
        n0, n1, n = patients(mask)
        row = {"subgroup": subgroup, "level": level, "label": label, "n": n, "n_control": n0, "n_treated": n1,
               "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "note": ""}
        if min(n0, n1) < min_per_arm:
            row["note"] = (f"too few patients: {n0} control, {n1} treated (at least {min_per_arm} per arm "
                           "needed)")
        else:
            try:
                res = fn(data[mask], **analysis_kwargs)
            except InvalidDataError as exc:
                row["note"] = f"not estimable: {exc}"
            else:
                method = method or res.method
                row.update(n_control=res.n_per_arm[0], n_treated=res.n_per_arm[1], estimate=res.estimate,
                           ci_low=res.ci_low, ci_high=res.ci_high, p_value=res.p_value)
                if not np.isfinite(res.estimate):
                    row["note"] = "not estimable in this subgroup (too few patients or events, or no variation)"
        rows.append(row)

    one("Overall", "", "Overall", np.ones(len(data), dtype=bool))
    for label, (column, spec) in specs.items():
        for level, mask in _levels(data, column, spec if not isinstance(spec, str) else None, id_col):
            one(label, level, f"{label}: {level}", mask)
    out = pd.DataFrame(rows)
    ratio = analysis in RATIO_ANALYSES
    out.attrs.update({"analysis": analysis, "method": method, "ratio": ratio, "null_value": null_estimate(analysis)})
    return out
