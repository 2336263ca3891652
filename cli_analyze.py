"""``insilico analyze``: one real (or exported simulated) trial dataset, one analysis, one JSON object.

::

    insilico analyze DATA --endpoint tte|continuous|binary|longitudinal --arm COL --treated VALUE
        [--control VALUE] [--time COL --event COL] [--value COL] [--baseline COL] [--id COL --visit COL]
        [--covariates A,B] [--strata COL] [--method NAME] [--horizon T] [--alpha 0.05] [--json]

Methods per endpoint (the first is the default; ``--baseline``/``--covariates``/``--strata`` adjust where the
method allows):

* tte: ``cox`` (Efron ties; covariates and strata), ``logrank`` (stratified with ``--strata``), ``rmst``
  (``--horizon``);
* continuous: ``ttest`` (Welch; the default without covariates) or ``ancova`` (the default with
  ``--baseline``/``--covariates``);
* binary: ``risk_difference`` (Newcombe CI), ``risk_ratio``, ``logistic`` (odds ratio; covariates);
* longitudinal: ``mmrm`` (Satterthwaite df), ``random_slope``, ``slope`` (per-patient OLS slopes), ``ancova``
  (change from baseline at the last visit).

JSON keys: ``method``, ``estimate`` (hazard ratio treated vs control for tte except rmst; odds or risk ratio
for logistic / risk_ratio; difference treated minus control otherwise), ``ci_low``, ``ci_high``, ``p_value``,
``n_per_arm`` (arm value -> patients analysed), ``arms``, ``alpha``, ``details``; for tte also
``logrank_p``, ``events_per_arm`` and ``median_per_arm`` (Kaplan-Meier median, null when not reached) with
``median_ci_per_arm``. Missing numbers are ``null``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError, InvalidScenarioError

__all__ = ["add_analyze_command", "analyze", "match_value", "METHODS"]

#: endpoint -> accepted methods (the first is the default without covariates)
METHODS = {
    "tte": ("cox", "logrank", "rmst"),
    "continuous": ("ttest", "ancova"),
    "binary": ("risk_difference", "risk_ratio", "logistic"),
    "longitudinal": ("mmrm", "random_slope", "slope", "ancova"),
}
_NEEDS = {"tte": ("time", "event"), "continuous": ("value",), "binary": ("value",),
          "longitudinal": ("id", "visit", "value")}


def match_value(column: pd.Series, text: str, flag: str):
    """The value of ``column`` written ``text`` on the command line (numbers compare as numbers)."""
    values = pd.unique(column.dropna())
    for v in values:
        if str(v) == text:
            return v
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        for v in values:
            if isinstance(v, (int, float, np.integer, np.floating)) and float(v) == number:
                return v
    shown = ", ".join(sorted(map(str, values))[:12])
    raise InvalidDataError(f"{flag} {text!r}: no row of column {column.name!r} has that value; values are "
                           f"{shown}")


def _arms(data: pd.DataFrame, args) -> tuple[pd.DataFrame, object, object]:
    if args.arm not in data.columns:
        raise InvalidDataError(f"--arm {args.arm!r}: no such column; columns are {', '.join(map(str, data.columns))}")
    col = data[args.arm]
    treated = match_value(col, args.treated, "--treated")
    if args.control is not None:
        control = match_value(col, args.control, "--control")
        if control == treated:
            raise InvalidDataError("--control and --treated name the same arm; give two different values")
        return data[col.isin([treated, control])].reset_index(drop=True), treated, control
    others = [v for v in pd.unique(col.dropna()) if v != treated]
    if len(others) != 1:
        raise InvalidDataError(
            f"column {args.arm!r} has {len(others)} values besides the treated value {treated!r} "
            f"({', '.join(sorted(map(str, others))[:12]) or 'none'}); name the control arm with --control VALUE "
            "(other rows are then left out)")
    return data, treated, others[0]


def _columns(data: pd.DataFrame, args) -> None:
    needed = [(f"--{k}", getattr(args, k)) for k in _NEEDS[args.endpoint]]
    missing = [flag for flag, v in needed if v is None]
    if missing:
        raise InvalidDataError(f"--endpoint {args.endpoint} needs {' and '.join(missing)}: name the column(s)")
    named = needed + [("--baseline", args.baseline), ("--strata", args.strata)] + [
        ("--covariates", c) for c in args.covariates]
    absent = [f"{flag} {c!r}" for flag, c in named if c is not None and c not in data.columns]
    if absent:
        raise InvalidDataError(f"{'; '.join(absent)}: no such column; columns are "
                               f"{', '.join(map(str, data.columns))}")


def _method(args) -> str:
    accepted = METHODS[args.endpoint]
    if args.method is None:
        if args.endpoint == "continuous" and (args.baseline or args.covariates):
            return "ancova"
        return accepted[0]
    if args.method not in accepted:
        raise InvalidScenarioError(f"--method {args.method!r} is not available for --endpoint {args.endpoint}; "
                                   f"choose one of {', '.join(accepted)}")
    return args.method


def _unsupported(args, method: str, *, covariates=False, strata=False, baseline=False) -> None:
    flags = [("--covariates", bool(args.covariates), covariates), ("--strata", args.strata is not None, strata),
             ("--baseline", args.baseline is not None, baseline)]
    bad = [flag for flag, given, ok in flags if given and not ok]
    if bad:
        raise InvalidScenarioError(f"{', '.join(bad)} cannot be used with method {method!r} "
                                   f"(--endpoint {args.endpoint}); drop it or choose another --method")


def _run(data: pd.DataFrame, args, method: str, treated):
    from analysis import estimators as E
    kw = dict(arm=args.arm, treated_value=treated, alpha=args.alpha)
    cov = list(args.covariates)
    if args.endpoint == "tte":
        tk = dict(time=args.time, event=args.event, **kw)
        if method == "cox":
            _unsupported(args, method, covariates=True, strata=True)
            return E.cox_adjusted_test(data, covariates=cov, strata=args.strata, **tk)
        if method == "logrank":
            _unsupported(args, method, strata=True)
            return (E.logrank_stratified_test(data, strata=args.strata, **tk) if args.strata
                    else E.logrank_test(data, **tk))
        _unsupported(args, method)
        if args.horizon is None:
            raise InvalidScenarioError("--method rmst needs --horizon T (in the time column's unit)")
        return E.rmst_test(data, tau=args.horizon, **tk)
    if args.endpoint == "continuous":
        if method == "ttest":
            _unsupported(args, method)
            return E.ttest_test(data, value=args.value, **kw)
        _unsupported(args, method, covariates=True, baseline=True)
        return E.ancova_adjusted_test(data, outcome=args.value, covariates=[args.baseline, *cov] if args.baseline
                                      else cov, **kw)
    if args.endpoint == "binary":
        if method == "logistic":
            _unsupported(args, method, covariates=True, baseline=True)
            return E.logistic_test(data, outcome=args.value,
                                   covariates=[args.baseline, *cov] if args.baseline else cov, **kw)
        _unsupported(args, method)
        fn = E.risk_difference_test if method == "risk_difference" else E.risk_ratio_test
        return fn(data, outcome=args.value, **kw)
    _unsupported(args, method)
    lk = dict(id=args.id, visit=args.visit, value=args.value, **kw)
    return {"mmrm": E.mmrm_test, "random_slope": E.random_slope_test, "slope": E.slope_test,
            "ancova": E.ancova_test}[method](data, **lk)


def _num(x):
    """JSON-safe number: NaN and infinities -> None."""
    if x is None:
        return None
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    return f if math.isfinite(f) else None


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (str, type(None))):
        return v
    return _num(v)


def analyze(data: pd.DataFrame, args) -> dict:
    """The JSON object of ``insilico analyze`` for already-read ``data`` and parsed ``args``."""
    _columns(data, args)
    data, treated, control = _arms(data, args)
    method = _method(args)
    res = _run(data, args, method, treated)
    labels = [str(control), str(treated)]
    out = {"method": res.method, "method_name": method, "endpoint": args.endpoint,
           "arms": {"control": labels[0], "treated": labels[1]},
           "estimate": _num(res.estimate), "ci_low": _num(res.ci_low), "ci_high": _num(res.ci_high),
           "p_value": _num(res.p_value), "statistic": _num(res.statistic), "alpha": args.alpha,
           "n_per_arm": dict(zip(labels, map(int, res.n_per_arm)))}
    if args.endpoint == "tte":
        from analysis import estimators as E
        tk = dict(time=args.time, event=args.event, arm=args.arm, treated_value=treated, alpha=args.alpha)
        lr = (E.logrank_stratified_test(data, strata=args.strata, **tk) if args.strata
              else E.logrank_test(data, **tk))
        out["logrank_p"] = _num(lr.p_value)
        ev = lr.details.get("events")
        out["events_per_arm"] = dict(zip(labels, map(int, ev))) if ev is not None else None
        km = E.km_summary(data, time=args.time, event=args.event, arm=args.arm, alpha=args.alpha)
        km = km.set_index(km["arm"].map(str))
        out["median_per_arm"] = {a: _num(km.loc[a, "median"]) if a in km.index else None for a in labels}
        out["median_ci_per_arm"] = {a: [_num(km.loc[a, "ci_low"]), _num(km.loc[a, "ci_high"])]
                                    if a in km.index else None for a in labels}
        out["median_method"] = km.attrs.get("method")
    out["details"] = _jsonable(res.details)
    return out


def _cmd_analyze(args) -> int:
    from cohorts.io import read_table
    args.covariates = [c.strip() for c in (args.covariates or "").split(",") if c.strip()]
    if not 0 < args.alpha < 1:
        raise InvalidScenarioError(f"--alpha {args.alpha}: give a level between 0 and 1, e.g. 0.05")
    data = read_table(args.data)
    out = analyze(data, args)
    if args.json:
        print(json.dumps(out, allow_nan=False))
        return 0
    lo, hi = out["ci_low"], out["ci_high"]
    fmt = (lambda v: "NA" if v is None else f"{v:.4g}")
    print(f"{out['method']}\n{out['arms']['treated']} vs {out['arms']['control']}: estimate {fmt(out['estimate'])} "
          f"({int((1 - args.alpha) * 100)}% CI {fmt(lo)} to {fmt(hi)}), p = {fmt(out['p_value'])}")
    print("patients per arm: " + ", ".join(f"{k} {v}" for k, v in out["n_per_arm"].items()))
    if args.endpoint == "tte":
        print(f"log-rank p = {fmt(out['logrank_p'])}; events per arm: "
              + ", ".join(f"{k} {v}" for k, v in (out["events_per_arm"] or {}).items())
              + "; median per arm: " + ", ".join(f"{k} {fmt(v)}" for k, v in out["median_per_arm"].items()))
    return 0


def add_analyze_command(sub) -> None:
    a = sub.add_parser("analyze", help="analyse one trial dataset (CSV, Parquet or SAS XPT); --json for one "
                                       "JSON object")
    a.add_argument("data", help="the trial data file")
    a.add_argument("--endpoint", required=True, choices=sorted(METHODS))
    a.add_argument("--arm", required=True, help="the arm column")
    a.add_argument("--treated", required=True, help="the arm column's value of the treated arm")
    a.add_argument("--control", help="the control arm's value (needed when the arm column has other values; "
                                     "their rows are left out)")
    a.add_argument("--time", help="tte: the follow-up time column")
    a.add_argument("--event", help="tte: the event indicator column (1 = event, 0 = censored)")
    a.add_argument("--value", help="continuous/binary/longitudinal: the outcome column")
    a.add_argument("--baseline", help="continuous/binary: a baseline covariate column (ANCOVA / logistic)")
    a.add_argument("--id", help="longitudinal: the patient id column")
    a.add_argument("--visit", help="longitudinal: the visit time column (the smallest time is the baseline)")
    a.add_argument("--covariates", help="comma-separated covariate columns (cox, ancova, logistic)")
    a.add_argument("--strata", help="tte: a stratification column (cox, logrank)")
    a.add_argument("--method", help="the analysis (default per endpoint); see `insilico analyze --help`")
    a.add_argument("--horizon", type=float, help="tte rmst: the horizon, in the time column's unit")
    a.add_argument("--alpha", type=float, default=0.05, help="two-sided level of the CIs and the test (0.05)")
    a.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    a.set_defaults(func=_cmd_analyze)
    a.epilog = "methods: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in METHODS.items())
