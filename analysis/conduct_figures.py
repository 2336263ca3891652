"""Figures of a trial's conduct, shared by the app and the report (plotly; pure: data in, ``go.Figure`` out; no
streamlit).

* :func:`boundaries_figure`: group-sequential efficacy (and futility) boundaries on the Z scale against the
  information fraction, from a :class:`~analysis.gs_boundaries.Boundaries` or a look table
  (:func:`analysis.power_summary.look_table`, or ``Boundaries.summary()``). A two-sided design rejects when
  ``|Z_k| >= c_k``, so its boundary is drawn on both sides; non-finite boundaries (a look with nothing left to
  spend) are left out of the line.
* :func:`stopping_figure`: the simulated probability of stopping at each look, for efficacy (and futility), under
  the assumed effect and under no effect, with the cumulative efficacy stopping (the power and the type I error
  at the last look).
* :func:`sweep_heatmap`: one value of a sweep table (:class:`analysis.sweep.SweepResult` ``table``: columns
  ``effect, n_total, dropout_per_month, analysis`` and the results) as a heatmap over two chosen axes; the other
  axes must be fixed (a single value in the table, or chosen with ``where``).

Every trace carries exactly the input numbers (the tests compare them); colours follow
:data:`analysis.plots.COLORS` (power green, no effect red).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from analysis.gs_boundaries import Boundaries
from analysis.plots import _TEMPLATE, COLORS
from analysis.sweep_grid import GRID_AXES
from cohorts.errors import InvalidDataError

__all__ = ["sweep_slice", "boundaries_figure", "stopping_figure", "sweep_heatmap", "FUTILITY_COLOR", "AXIS_LABELS"]

#: colour of futility boundaries and futility stopping
FUTILITY_COLOR = "#9467bd"
#: axis titles of the sweep axes
AXIS_LABELS = {"effect": "effect", "n_total": "total sample size N", "dropout_per_month": "dropout per month",
               "analysis": "analysis"}


def _finite_or_none(values) -> list:
    return [float(v) if v is not None and np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _look_frame(bounds) -> tuple[pd.DataFrame, int | None]:
    """The look table of ``bounds`` and its number of sides (``None`` when it cannot be told)."""
    if isinstance(bounds, Boundaries):
        return bounds.summary(), int(bounds.design.sided)
    if not isinstance(bounds, pd.DataFrame):
        raise InvalidDataError(f"boundaries: expected a Boundaries object or a look table (DataFrame), got "
                               f"{type(bounds).__name__}")
    missing = [c for c in ("information_fraction", "efficacy_z") if c not in bounds.columns]
    if missing:
        raise InvalidDataError(f"look table: missing column(s) {', '.join(missing)}; pass "
                               "analysis.power_summary.look_table(...) or Boundaries.summary()")
    if len(bounds) == 0:
        raise InvalidDataError("look table: has no rows; give at least one look")
    sided = None
    if "nominal_p" in bounds.columns:
        c = bounds["efficacy_z"].to_numpy(float)
        p = bounds["nominal_p"].to_numpy(float)
        ok = np.isfinite(c) & np.isfinite(p)
        if ok.any():
            sided = 2 if np.allclose(p[ok], 2 * stats.norm.sf(c[ok]), rtol=1e-6, atol=1e-12) else 1
    return bounds.reset_index(drop=True), sided


def boundaries_figure(bounds, *, sided: int | None = None, title: str | None = None) -> go.Figure:
    """Efficacy (and futility) boundaries on the Z scale by information fraction (see the module docstring).

    ``bounds``: a :class:`~analysis.gs_boundaries.Boundaries` or a look table with ``information_fraction`` and
    ``efficacy_z`` (``futility_z``, ``nominal_p``, ``alpha_spent`` optional). ``sided``: 1 or 2; by default from
    the boundaries' design, or told from the table's nominal p-values (two-sided: ``2 (1 - Phi(c))``), else 1.
    """
    table, found = _look_frame(bounds)
    sided = int(sided or found or 1)
    if sided not in (1, 2):
        raise InvalidDataError(f"boundaries_figure: sided must be 1 or 2, got {sided!r}")
    t = table["information_fraction"].to_numpy(float)
    c = table["efficacy_z"].to_numpy(float)
    extra = np.column_stack([table[k].to_numpy(float) if k in table.columns else np.full(len(t), np.nan)
                             for k in ("nominal_p", "alpha_spent")])
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=t.tolist(), y=_finite_or_none(c), mode="lines+markers", name="efficacy: reject H0",
        line=dict(color=COLORS["power"], width=2.5), marker=dict(size=9), customdata=extra,
        hovertemplate="information %{x:.3g}<br>efficacy Z = %{y:.3f}<br>nominal p %{customdata[0]:.4g}<br>"
                      "cumulative alpha spent %{customdata[1]:.4g}<extra></extra>"))
    if sided == 2:
        fig.add_trace(go.Scatter(
            x=t.tolist(), y=_finite_or_none(-c), mode="lines+markers", name="efficacy (lower side): reject H0",
            line=dict(color=COLORS["power"], width=2.5, dash="dash"), marker=dict(size=9),
            hovertemplate="information %{x:.3g}<br>lower efficacy Z = %{y:.3f}<extra></extra>"))
    if "futility_z" in table.columns and np.isfinite(table["futility_z"].to_numpy(float)).any():
        fig.add_trace(go.Scatter(
            x=t.tolist(), y=_finite_or_none(table["futility_z"]), mode="lines+markers",
            name="futility: stop (non-binding)", line=dict(color=FUTILITY_COLOR, width=2.5),
            marker=dict(size=9, symbol="square"),
            hovertemplate="information %{x:.3g}<br>futility Z = %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color=COLORS["reference"], width=1))
    fig.update_layout(
        template=_TEMPLATE, title=title or f"Group-sequential boundaries ({len(t)} looks, {sided}-sided)",
        xaxis=dict(title="information fraction", range=[0, 1.05]),
        yaxis_title="Z statistic (positive favours treatment)", hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


def _look_labels(table: pd.DataFrame) -> list[str]:
    looks = table["look"].tolist() if "look" in table.columns else list(range(1, len(table) + 1))
    return [f"look {int(k)} (t = {f:.2g})" for k, f in zip(looks, table["information_fraction"])]


def stopping_figure(look_table: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Per look: probability of stopping for efficacy (and futility) under the assumed effect and under no effect
    (grouped bars), and the cumulative efficacy stopping (lines); from :func:`analysis.power_summary.look_table`."""
    table, _ = _look_frame(look_table)
    need = ["p_efficacy", "p_efficacy_null"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InvalidDataError(f"look table: missing column(s) {', '.join(missing)}; pass the simulated look table "
                               "of a power result (PowerResult.looks[i])")
    x = _look_labels(table)
    fig = go.Figure()
    bars = [("p_efficacy", "efficacy, assumed effect", COLORS["power"], ""),
            ("p_efficacy_null", "efficacy, no effect", COLORS["null"], "")]
    futility = [k for k in ("p_futility", "p_futility_null") if k in table.columns]
    has_futility = bool(futility) and (
        ("futility_z" in table.columns and np.isfinite(table["futility_z"].to_numpy(float)).any())
        or any(table[k].to_numpy(float).sum() > 0 for k in futility))
    if has_futility:
        bars += [("p_futility", "futility, assumed effect", COLORS["power"], "/"),
                 ("p_futility_null", "futility, no effect", COLORS["null"], "/")]
    for col, name, colour, pattern in bars:
        if col not in table.columns:
            continue
        fig.add_trace(go.Bar(x=x, y=table[col].to_numpy(float).tolist(), name=name, marker_color=colour,
                             marker_pattern_shape=pattern, opacity=0.85,
                             hovertemplate="%{x}<br>" + name + ": %{y:.3f}<extra></extra>"))
    for col, name, colour in (("cumulative_efficacy", "cumulative efficacy, assumed effect", COLORS["power"]),
                              ("cumulative_efficacy_null", "cumulative efficacy, no effect", COLORS["null"])):
        if col in table.columns:
            fig.add_trace(go.Scatter(x=x, y=table[col].to_numpy(float).tolist(), mode="lines+markers", name=name,
                                     line=dict(color=colour, dash="dot", width=2),
                                     hovertemplate="%{x}<br>" + name + ": %{y:.3f}<extra></extra>"))
    fig.update_layout(
        template=_TEMPLATE, barmode="group", title=title or "Simulated stopping probabilities per look",
        yaxis=dict(title="probability", range=[0, 1.02], tickformat=".0%"), xaxis_title="look",
        legend=dict(orientation="h", yanchor="bottom", y=-0.4))
    return fig


def _axis_text(axis: str, v) -> str:
    if axis == "analysis":
        return str(v)
    if axis == "n_total":
        return str(int(v))
    return f"{float(v):g}"


def _default_axes(table: pd.DataFrame, x: str | None, y: str | None) -> tuple[str, str]:
    varying = [a for a in GRID_AXES if table[a].nunique() > 1]
    order = varying + [a for a in GRID_AXES if a not in varying]
    if x is None:
        x = "n_total" if "n_total" in varying or not varying else varying[0]
        if y is not None and x == y:
            x = next(a for a in order if a != y)
    if y is None:
        y = next(a for a in order if a != x)
    return x, y


def sweep_slice(table: pd.DataFrame) -> tuple[str, str, dict]:
    """The default view of a sweep table: ``(x, y, where)`` with N across (when it varies), the next varying axis
    down, and every other varying axis fixed at its smallest value."""
    x, y = _default_axes(table, None, None)
    where = {a: min(table[a].unique().tolist()) for a in GRID_AXES if a not in (x, y) and table[a].nunique() > 1}
    return x, y, where


def sweep_heatmap(sweep_table: pd.DataFrame, value: str = "power", *, x: str | None = None, y: str | None = None,
                  where: Mapping | None = None, title: str | None = None) -> go.Figure:
    """``value`` (a column of the sweep table, e.g. ``power`` or ``type1_error``) over axes ``x`` and ``y`` (two of
    ``effect, n_total, dropout_per_month, analysis``; default: ``n_total`` across and the next varying axis down).

    ``where``: ``{axis: value}`` fixing the other axes; the rows left must hold one cell per ``(x, y)``, otherwise
    :class:`~cohorts.errors.InvalidDataError` names the axis still to fix. Cells missing from the grid are empty.
    """
    if not isinstance(sweep_table, pd.DataFrame):
        raise InvalidDataError(f"sweep_heatmap: expected the sweep table (DataFrame), got {type(sweep_table).__name__}")
    missing = [c for c in (*GRID_AXES, value) if c not in sweep_table.columns]
    if missing:
        raise InvalidDataError(f"sweep table: missing column(s) {', '.join(missing)}; pass SweepResult.table")
    x, y = _default_axes(sweep_table, x, y)
    for name, axis in (("x", x), ("y", y)):
        if axis not in GRID_AXES:
            raise InvalidDataError(f"sweep_heatmap: {name} = {axis!r} is not a sweep axis; choose one of "
                                   f"{', '.join(GRID_AXES)}")
    if x == y:
        raise InvalidDataError(f"sweep_heatmap: x and y are both {x!r}; choose two different axes")
    t = sweep_table
    for axis, v in dict(where or {}).items():
        if axis not in GRID_AXES:
            raise InvalidDataError(f"sweep_heatmap: where[{axis!r}] is not a sweep axis; choose among "
                                   f"{', '.join(GRID_AXES)}")
        t = t[t[axis] == v]
    if t.empty:
        raise InvalidDataError(f"sweep_heatmap: no cell of the sweep matches where = {dict(where or {})}")
    if t.duplicated(subset=[x, y]).any():
        loose = [a for a in GRID_AXES if a not in (x, y) and t[a].nunique() > 1]
        raise InvalidDataError(f"sweep_heatmap: the sweep also varies {', '.join(loose)}; fix it with where = "
                               f"{{{loose[0]!r}: one of {sorted(t[loose[0]].unique().tolist())}}}")
    xs, ys = sorted(t[x].unique().tolist()), sorted(t[y].unique().tolist())
    grid = t.set_index([y, x])
    z = [[float(grid.at[(yv, xv), value]) if (yv, xv) in grid.index else None for xv in xs] for yv in ys]
    has_ci = f"{value}_ci_low" in t.columns and f"{value}_ci_high" in t.columns
    hover = f"{AXIS_LABELS[x]} %{{x}}<br>{AXIS_LABELS[y]} %{{y}}<br>{value} = %{{z:.3f}}"
    custom = None
    if has_ci:
        custom = [[[float(grid.at[(yv, xv), f"{value}_ci_low"]), float(grid.at[(yv, xv), f"{value}_ci_high"])]
                   if (yv, xv) in grid.index else [None, None] for xv in xs] for yv in ys]
        hover += "<br>95% MC interval %{customdata[0]:.3f}-%{customdata[1]:.3f}"
    flat = [v for row in z for v in row if v is not None and np.isfinite(v)]
    scale = dict(colorscale="Viridis", zmin=0.0, zmax=1.0) if value == "power" else (
        dict(colorscale="Reds", zmin=0.0, zmax=max([0.1, *flat])) if value == "type1_error" else
        dict(colorscale="Viridis"))
    fig = go.Figure(go.Heatmap(
        x=[_axis_text(x, v) for v in xs], y=[_axis_text(y, v) for v in ys], z=z, customdata=custom,
        texttemplate="%{z:.2f}", hovertemplate=hover + "<extra></extra>", colorbar=dict(title=value), **scale))
    fixed = {a: t[a].iloc[0] for a in GRID_AXES if a not in (x, y)}
    subtitle = ", ".join(f"{AXIS_LABELS[a]} {_axis_text(a, v)}" for a, v in fixed.items())
    fig.update_layout(template=_TEMPLATE, title=title or f"Simulated {value.replace('_', ' ')} ({subtitle})",
                      xaxis=dict(title=AXIS_LABELS[x], type="category"),
                      yaxis=dict(title=AXIS_LABELS[y], type="category"))
    return fig
