"""The column-roles editor of an uploaded table (used by the Data page).

Each role is a widget remembered under ``form["schema.<tag>.<name>"]`` (``tag``: the first 10 hex digits of the
upload's SHA-256), with ``name`` one of :data:`ROLE_NAMES`. :func:`preset` fills them from a
:class:`~cohorts.schema.CohortSchema` (a schema TOML upload, or the PRO-ACT importer's schema) before the
editor is drawn.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._state import form, widget
from cohorts.errors import InvalidDataError
from cohorts.schema import OUTCOME_TYPES, TIME_UNITS, CohortSchema

__all__ = ["ROLE_NAMES", "preset", "role_values", "schema_editor"]

ROLE_NAMES = ("id", "outcome_type", "time", "event", "value", "visit", "time_unit", "lower", "upper", "numeric",
              "categorical")
_BOUNDED = ("continuous", "longitudinal")


def _guess(df: pd.DataFrame) -> dict:
    try:
        return CohortSchema.infer(df).to_dict()
    except InvalidDataError:
        cols = [str(c) for c in df.columns]
        return {"id": cols[0], "baseline": {"numeric": [], "categorical": []},
                "outcome": {"type": "continuous", "value": cols[-1]}}


def role_values(schema: CohortSchema) -> dict:
    """The editor's widget values (by role name) that reproduce ``schema``; roles it does not use are None."""
    out = schema.outcome
    return {"id": schema.id, "outcome_type": out.type, "time": out.time, "event": out.event, "value": out.value,
            "visit": out.visit, "time_unit": out.unit, "lower": out.lower, "upper": out.upper,
            "numeric": list(schema.numeric), "categorical": list(schema.categorical)}


def preset(tag: str, schema: CohortSchema) -> None:
    """Make the editor of upload ``tag`` show ``schema`` on its next draw (call before :func:`schema_editor`)."""
    store = form()
    for name, value in role_values(schema).items():   # None: a role the outcome type does not use
        full = f"schema.{tag}.{name}"
        store[full] = value
        st.session_state[f"w_data_{full}"] = value   # overrides the value the browser sends for the widget


def schema_editor(df: pd.DataFrame, tag: str) -> dict:
    """Widgets for every column role, prefilled by :meth:`CohortSchema.infer`; returns the schema dict.

    ``tag`` identifies the uploaded file, so a new file starts from a fresh guess.
    """
    guess = _guess(df)
    cols = [str(c) for c in df.columns]
    g_out = guess["outcome"]

    def w(fn, label, name, default, **kwargs):
        return widget(fn, label, f"schema.{tag}.{name}", default, page="data", **kwargs)

    c1, c2 = st.columns(2)
    pid = w(c1.selectbox, "Patient id column", "id", guess["id"], options=cols)
    otype = w(c2.selectbox, "Outcome type", "outcome_type", g_out["type"], options=list(OUTCOME_TYPES),
              help="tte: time and event columns; longitudinal: one row per visit (visit and value columns)")
    outcome: dict = {"type": otype}
    c1, c2, c3 = st.columns(3)
    if otype == "tte":
        outcome["time"] = w(c1.selectbox, "Time column", "time", g_out.get("time"), options=cols)
        outcome["event"] = w(c2.selectbox, "Event column (1 = event, 0 = censored)", "event",
                             g_out.get("event"), options=cols)
    else:
        outcome["value"] = w(c1.selectbox, "Outcome value column", "value", g_out.get("value"), options=cols)
        if otype == "longitudinal":
            outcome["visit"] = w(c2.selectbox, "Visit time column", "visit", g_out.get("visit"), options=cols)
    if otype in ("tte", "longitudinal"):
        outcome["time_unit"] = w(c3.selectbox, "Time unit", "time_unit", g_out.get("time_unit") or
                                 ("days" if otype == "tte" else "months"), options=list(TIME_UNITS))
    if otype in _BOUNDED:
        b1, b2 = st.columns(2)
        for col, key, label in ((b1, "lower", "Lowest possible value"), (b2, "upper", "Highest possible value")):
            bound = w(col.number_input, f"{label} (optional)", key, g_out.get(key), value=None,
                      help="Bounds of the outcome scale (e.g. ALSFRS-R 0 to 48): synthetic values stay inside")
            if bound is not None:
                outcome[key] = float(bound)
    taken = {pid, *(v for k, v in outcome.items() if k in ("time", "event", "value", "visit"))}
    free = [c for c in cols if c not in taken]
    numeric = w(st.multiselect, "Numeric baseline covariates", "numeric", guess["baseline"]["numeric"],
                options=free)
    categorical = w(st.multiselect, "Categorical baseline covariates", "categorical",
                    guess["baseline"]["categorical"], options=[c for c in free if c not in numeric])
    return {"id": pid, "baseline": {"numeric": list(numeric), "categorical": list(categorical)}, "outcome": outcome}
