"""Figures of one trial's outcome (real or simulated), shared by the app and the report (pure: data in,
``go.Figure`` out; no streamlit).

* :func:`km_figure`: Kaplan-Meier curve per arm with its pointwise 95 % log(-log) band (statsmodels
  ``SurvfuncRight``, as :func:`analysis.plots.km_figure`) and the numbers at risk under the plot, as in
  journal figures (a second subplot row sharing the time axis; counts from
  :func:`~analysis.outcome_tables.numbers_at_risk`).
* :func:`trajectory_figure`: mean of a longitudinal value per arm and visit with its 95 % t interval (from
  :func:`~analysis.outcome_tables.trajectory_table`).
* :func:`forest_figure`: the rows of :func:`~analysis.outcome_tables.subgroup_effects` as a forest plot
  (log axis for hazard ratios), with the estimate and interval written beside each line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.outcome_tables import arm_levels, nice_times, numbers_at_risk, trajectory_table
from analysis.plots import _TEMPLATE, _band, _km

__all__ = ["ARM_COLORS", "arm_color", "km_figure", "trajectory_figure", "forest_figure"]

#: one colour per arm in display order (control first, then treated)
ARM_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b")


def arm_color(i: int) -> str:
    return ARM_COLORS[i % len(ARM_COLORS)]


def _arms(data: pd.DataFrame, arm: str, arms: Sequence | None) -> list:
    return list(arms) if arms is not None else arm_levels(data, arm, exactly_two=False)


# ----------------------------------------------------------------------------------------- Kaplan-Meier
def km_figure(data: pd.DataFrame, *, time: str, event: str, arm: str, time_unit: str | None,
              at_risk_times: Sequence[float] | None = None, arms: Sequence | None = None,
              title: str | None = None) -> go.Figure:
    """Kaplan-Meier curves per arm (control first) with 95 % pointwise bands, numbers at risk beneath.

    ``data``: one row per patient; ``event`` 1 = event, 0 = censored. ``at_risk_times`` (default: round
    times up to the last follow-up) are also the x-axis ticks, so each count sits under its tick.
    """
    arms = _arms(data, arm, arms)
    d = pd.DataFrame({"t": pd.to_numeric(data[time], errors="coerce"),
                      "e": pd.to_numeric(data[event], errors="coerce"), "arm": data[arm]}).dropna()
    t_max = float(d["t"].max()) if len(d) else 0.0
    times = np.asarray(at_risk_times if at_risk_times is not None else nice_times(t_max), dtype=float)
    risk = numbers_at_risk(d, time="t", arm="arm", times=times, arms=arms)
    unit = time_unit or "time unit"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.16)
    for i, a in enumerate(arms):
        da = d[d["arm"] == a]
        colour = arm_color(i)
        if len(da):
            t, s, lo, hi = _km(da["t"].to_numpy(float), da["e"].to_numpy(float).astype(int))
            fig.add_traces(_band(t, lo, hi, colour, f"{a} 95% CI", shape="hv", legendgroup=str(a)),
                           rows=1, cols=1)
            fig.add_trace(go.Scatter(
                x=t, y=s, mode="lines", name=f"{a} (n = {len(da)}, {int(da['e'].sum())} events)",
                legendgroup=str(a), line=dict(color=colour, width=2.5, shape="hv"),
                hovertemplate=f"{a}<br>{time} = %{{x:.4g}} {unit}<br>event-free = %{{y:.3f}}<extra></extra>"),
                row=1, col=1)
        fig.add_trace(go.Scatter(
            x=times, y=[str(a)] * len(times), mode="text", text=[str(v) for v in risk.loc[a].to_numpy()],
            textfont=dict(color=colour), showlegend=False, name=f"{a} at risk",
            hovertemplate=f"{a}: %{{text}} at risk at %{{x:.4g}} {unit}<extra></extra>"), row=2, col=1)
    x_max = max(t_max, float(times.max(initial=0.0))) or 1.0
    x_range = [-0.02 * x_max, 1.03 * x_max]
    fig.update_xaxes(tickvals=times, range=x_range, showticklabels=True, title_text=f"{time} ({unit})",
                     row=1, col=1)
    fig.update_xaxes(range=x_range, showticklabels=False, showgrid=False, zeroline=False, row=2, col=1)
    fig.update_yaxes(title_text="event-free probability", range=[0, 1.02], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[str(a) for a in arms][::-1],
                     range=[-0.6, len(arms) - 0.4], showgrid=False, row=2, col=1)
    fig.update_layout(template=_TEMPLATE, title=title or f"Kaplan-Meier: {event} over {time} by {arm}",
                      hovermode="closest", height=520 + 30 * len(arms),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02),
                      annotations=[dict(text="Number at risk", x=0, xref="paper", xanchor="left",
                                        y=1.0, yref="y2 domain", yanchor="bottom", showarrow=False)])
    return fig


# ------------------------------------------------------------------------------------------ trajectory
def trajectory_figure(data: pd.DataFrame, *, id: str, visit: str, value: str, arm: str,
                      arms: Sequence | None = None, visit_unit: str | None = None,
                      title: str | None = None) -> go.Figure:
    """Mean ``value`` per visit and arm with its 95 % t interval (long data: one row per patient visit)."""
    arms = _arms(data, arm, arms)
    table = trajectory_table(data, id=id, visit=visit, value=value, arm=arm, arms=arms)
    unit = f" ({visit_unit})" if visit_unit else ""
    fig = go.Figure()
    for i, a in enumerate(arms):
        g = table[table["arm"] == a]
        colour = arm_color(i)
        ok = g["n"] >= 2
        fig.add_traces(_band(g.loc[ok, visit], g.loc[ok, "ci_low"], g.loc[ok, "ci_high"], colour,
                             f"{a} 95% CI", legendgroup=str(a)))
        fig.add_trace(go.Scatter(
            x=g[visit], y=g["mean"], mode="lines+markers", name=f"{a} mean", legendgroup=str(a),
            line=dict(color=colour, width=2.5),
            customdata=np.column_stack([g["ci_low"], g["ci_high"], g["n"]]),
            hovertemplate=f"{a}<br>{visit} = %{{x}}{unit}<br>mean {value} = %{{y:.2f}}<br>95% CI "
                          "%{customdata[0]:.2f} to %{customdata[1]:.2f}, n = %{customdata[2]}<extra></extra>"))
    visits = np.sort(table[visit].unique())
    if len(visits) <= 12:
        fig.update_xaxes(tickvals=visits)
    fig.update_layout(template=_TEMPLATE, title=title or f"Mean {value} per visit by {arm} (95% t intervals)",
                      xaxis_title=f"{visit}{unit}", yaxis_title=f"mean {value}", hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.3))
    return fig


# ------------------------------------------------------------------------------------------------ forest
def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _log_ticks(values: np.ndarray) -> list[float]:
    """Round ticks (..., 0.25, 0.5, 1, 2, 4, ...) covering ``values`` on a log axis."""
    lo, hi = float(np.min(values)), float(np.max(values))
    k_lo, k_hi = int(np.floor(np.log2(lo))), int(np.ceil(np.log2(hi)))
    step = max(1, (k_hi - k_lo) // 8 + 1)
    return [float(2.0 ** k) for k in range(k_lo, k_hi + 1) if k % step == 0]


def forest_figure(rows: pd.DataFrame, *, ratio: bool | None = None, title: str | None = None,
                  x_title: str | None = None) -> go.Figure:
    """Forest plot of :func:`~analysis.outcome_tables.subgroup_effects` rows, top to bottom in row order.

    ``ratio`` (default: ``rows.attrs["ratio"]``) puts the estimate on a log axis with the no-effect line at 1;
    otherwise the line is at 0. Rows without an estimate show their note instead of a point.
    """
    ratio = bool(rows.attrs.get("ratio", False)) if ratio is None else ratio
    null = 1.0 if ratio else 0.0
    n_rows = len(rows)
    y = np.arange(n_rows)[::-1].astype(float)
    labels = [f"<b>{lab}</b> (n = {n})" if sub == "Overall" else f"{lab} (n = {n})"
              for lab, sub, n in zip(rows["label"], rows["subgroup"], rows["n"])]
    est, lo, hi = (rows[c].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
    ok = np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
    if ratio:
        ok &= (est > 0) & (lo > 0)
    text = [f"{_fmt(e)} ({_fmt(a)} to {_fmt(b)})" if good else "not estimable"
            for e, a, b, good in zip(est, lo, hi, ok)]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.72, 0.28], horizontal_spacing=0.02)
    colour = arm_color(1)
    fig.add_trace(go.Scatter(
        x=est[ok], y=y[ok], mode="markers", name="estimate", showlegend=False,
        marker=dict(symbol="square", size=10, color=colour),
        error_x=dict(type="data", symmetric=False, array=(hi - est)[ok], arrayminus=(est - lo)[ok],
                     color=colour, thickness=2, width=0),
        customdata=np.column_stack([lo[ok], hi[ok], rows["p_value"].to_numpy(float)[ok]]),
        text=[labels[i] for i in np.flatnonzero(ok)],
        hovertemplate="%{text}<br>estimate %{x:.3g} (95% CI %{customdata[0]:.3g} to %{customdata[1]:.3g})"
                      "<br>p = %{customdata[2]:.3g}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[null, null], y=[-0.6, n_rows - 0.4], mode="lines", showlegend=False,
                             line=dict(color="#7f7f7f", dash="dash", width=1), hoverinfo="skip",
                             name="no effect"), row=1, col=1)
    notes = rows["note"].fillna("").to_numpy() if "note" in rows else np.array([""] * n_rows)
    fig.add_trace(go.Scatter(
        x=np.zeros(n_rows), y=y, mode="text", text=text, textposition="middle right", showlegend=False,
        name="estimate (95% CI)", hovertext=[n or t for n, t in zip(notes, text)], hoverinfo="text"),
        row=1, col=2)
    analysis = rows.attrs.get("analysis", "")
    x_title = x_title or ("hazard ratio, treated vs control (log scale)" if ratio
                          else "difference, treated minus control")
    fig.update_xaxes(type="log" if ratio else "linear", title_text=x_title, row=1, col=1)
    if ratio:
        fig.update_xaxes(tickvals=_log_ticks(np.concatenate([lo[ok], hi[ok], [null]])), row=1, col=1)
    fig.update_xaxes(visible=False, range=[0, 1], row=1, col=2)
    fig.update_yaxes(tickvals=y, ticktext=labels, range=[-0.8, n_rows - 0.2], showgrid=False, row=1, col=1)
    fig.update_layout(template=_TEMPLATE, height=140 + 30 * n_rows, hovermode="closest",
                      title=title or f"Treatment effect by subgroup ({analysis}, estimate and 95% CI)",
                      annotations=[dict(text="estimate (95% CI)", x=0.0, xref="x2 domain", y=1.0,
                                        yref="paper", yanchor="bottom", showarrow=False, xanchor="left")])
    return fig
