"""Plotly figure builders shared by the app and the report (pure: data in, ``go.Figure`` out).

Every builder takes plain data (a :class:`~analysis.power_result.PowerResult`, DataFrames and a
:class:`~cohorts.schema.CohortSchema`) and returns a new figure; nothing here draws on screen, writes files or
imports streamlit. Colours are fixed per role (real data, synthetic data, power, type I error) so that the same
thing looks the same in the app and in the report.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from cohorts.schema import CohortSchema

__all__ = ["COLORS", "power_curve_figure", "marginals_figure", "trajectory_figure", "km_figure",
           "validation_figures"]

#: one colour per role, used by every figure
COLORS = {
    "real": "#1f77b4",       # blue: historical (real or reference) cohort
    "synthetic": "#ff7f0e",  # orange: synthetic patients from the fitted generator
    "power": "#2ca02c",      # green: power under the assumed effect
    "null": "#d62728",       # red: rejection rate under no effect (type I error)
    "reference": "#7f7f7f",  # grey: reference lines (alpha, 80 % / 90 % power)
}
_TEMPLATE = "plotly_white"


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(x, lo, hi, colour: str, name: str, *, shape: str = "linear", legendgroup: str | None = None,
          showlegend: bool = False) -> list[go.Scatter]:
    """Two traces filling the area between ``lo`` and ``hi``."""
    x = list(x)
    return [
        go.Scatter(x=x, y=list(hi), mode="lines", line=dict(width=0, shape=shape), hoverinfo="skip",
                   showlegend=False, legendgroup=legendgroup, name=f"{name} upper"),
        go.Scatter(x=x, y=list(lo), mode="lines", line=dict(width=0, shape=shape), fill="tonexty",
                   fillcolor=_rgba(colour, 0.2), hoverinfo="skip", showlegend=showlegend,
                   legendgroup=legendgroup, name=name),
    ]


# ---------------------------------------------------------------------------------------------- power curve
def power_curve_figure(result) -> go.Figure:
    """Power against total N with its 95 % Monte Carlo band, and the rejection rate under no effect.

    The null line is the simulated type I error at each N (same design, effect removed), with its exact 95 %
    interval; a dashed line marks the nominal alpha, dotted lines 80 % and 90 % power.
    """
    n = np.asarray(result.n_total, dtype=float)
    reps = int(result.settings.replicates)
    alpha = float(result.settings.alpha)
    power = np.asarray(result.power, dtype=float)
    lo, hi = np.asarray(result.power_ci_low, dtype=float), np.asarray(result.power_ci_high, dtype=float)
    t1 = np.asarray(result.type1_by_n, dtype=float)
    t1_lo, t1_hi = result.type1_by_n_ci()
    effect = result.design.effect.describe()

    fig = go.Figure()
    fig.add_traces(_band(n, lo, hi, COLORS["power"], "power 95% MC interval", legendgroup="power",
                         showlegend=True))
    fig.add_trace(go.Scatter(
        x=n, y=power, mode="lines+markers", name=f"power ({effect})", legendgroup="power",
        line=dict(color=COLORS["power"], width=2.5),
        customdata=np.column_stack([lo, hi]),
        hovertemplate="N = %{x}<br>power = %{y:.3f}<br>95% MC interval %{customdata[0]:.3f}"
                      "-%{customdata[1]:.3f}<extra></extra>"))
    fig.add_traces(_band(n, t1_lo, t1_hi, COLORS["null"], "type I error 95% MC interval", legendgroup="null"))
    fig.add_trace(go.Scatter(
        x=n, y=t1, mode="lines+markers", name="type I error (no effect)", legendgroup="null",
        line=dict(color=COLORS["null"], width=2),
        customdata=np.column_stack([t1_lo, t1_hi]),
        hovertemplate="N = %{x}<br>rejection rate under no effect = %{y:.3f}<br>95% MC interval "
                      "%{customdata[0]:.3f}-%{customdata[1]:.3f}<extra></extra>"))
    fig.add_hline(y=alpha, line=dict(color=COLORS["null"], dash="dash", width=1),
                  annotation_text=f"alpha = {alpha:g}", annotation_position="top left")
    for level in (0.8, 0.9):
        fig.add_hline(y=level, line=dict(color=COLORS["reference"], dash="dot", width=1),
                      annotation_text=f"{level:.0%} power", annotation_position="bottom right")
    fig.update_layout(
        template=_TEMPLATE, title=f"Simulated power vs total sample size ({result.analysis}, "
                                  f"{reps} replicates per N)",
        xaxis_title="total sample size N (patients)", yaxis_title="probability of rejecting H0",
        yaxis=dict(range=[0, 1.02], tickformat=".0%"), hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


# ---------------------------------------------------------------------------------------------- marginals
def _one_row_per_patient(df: pd.DataFrame, schema: CohortSchema) -> pd.DataFrame:
    if schema.id in df.columns and df[schema.id].duplicated().any():
        return df.drop_duplicates(subset=schema.id, keep="first")
    return df


def marginals_figure(real_baseline: pd.DataFrame, synth_baseline: pd.DataFrame, schema: CohortSchema,
                     *, ncols: int = 3, bins: int = 20) -> go.Figure:
    """Real vs synthetic distribution of every baseline covariate (and a continuous/binary outcome).

    Numeric columns: overlaid histograms on shared bins, as a share of patients; categorical columns: grouped
    bars of the share in each category. Long (one row per visit) frames are reduced to one row per patient.
    """
    real = _one_row_per_patient(real_baseline, schema)
    synth = _one_row_per_patient(synth_baseline, schema)
    numeric = [c for c in schema.numeric if c in real.columns and c in synth.columns]
    categorical = [c for c in schema.categorical if c in real.columns and c in synth.columns]
    if schema.outcome.type in ("continuous", "binary") and schema.outcome.value in real.columns \
            and schema.outcome.value in synth.columns:
        (numeric if schema.outcome.type == "continuous" else categorical).append(schema.outcome.value)
    cols = numeric + categorical
    if not cols:
        fig = go.Figure()
        fig.update_layout(template=_TEMPLATE, title="No baseline covariates to compare")
        return fig
    ncols = max(1, min(ncols, len(cols)))
    nrows = math.ceil(len(cols) / ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=cols,
                        vertical_spacing=min(0.12, 0.9 / max(nrows, 1)), horizontal_spacing=0.08)
    for i, col in enumerate(cols):
        r, c = i // ncols + 1, i % ncols + 1
        first = i == 0
        if col in numeric:
            rv = pd.to_numeric(real[col], errors="coerce").dropna().to_numpy(float)
            sv = pd.to_numeric(synth[col], errors="coerce").dropna().to_numpy(float)
            both = np.concatenate([rv, sv])
            edges = np.histogram_bin_edges(both if both.size else [0.0, 1.0], bins=bins)
            for label, v in (("real", rv), ("synthetic", sv)):
                counts, _ = np.histogram(v, bins=edges)
                share = counts / max(v.size, 1)
                mids = (edges[:-1] + edges[1:]) / 2
                fig.add_trace(go.Bar(
                    x=mids, y=share, width=np.diff(edges), name=label, legendgroup=label, showlegend=first,
                    marker=dict(color=_rgba(COLORS[label], 0.55), line=dict(width=0)),
                    customdata=np.column_stack([edges[:-1], edges[1:], counts]),
                    hovertemplate=f"{label}<br>{col} in [%{{customdata[0]:.3g}}, %{{customdata[1]:.3g}})"
                                  "<br>%{y:.1%} of patients (%{customdata[2]})<extra></extra>"),
                    row=r, col=c)
        else:
            rs = real[col].astype("string").fillna("(missing)")
            ss = synth[col].astype("string").fillna("(missing)")
            cats = sorted(set(rs) | set(ss))
            for label, s, offset in (("real", rs, -0.4), ("synthetic", ss, 0.0)):
                share = s.value_counts(normalize=True).reindex(cats, fill_value=0.0)
                fig.add_trace(go.Bar(
                    x=cats, y=share.to_numpy(), name=label, legendgroup=label, showlegend=first,
                    width=0.4, offset=offset, marker=dict(color=COLORS[label]),
                    hovertemplate=f"{label}<br>{col} = %{{x}}<br>%{{y:.1%}} of patients<extra></extra>"),
                    row=r, col=c)
        fig.update_yaxes(tickformat=".0%", row=r, col=c)
    fig.update_layout(template=_TEMPLATE, barmode="overlay", bargap=0.05,
                      title=f"Baseline covariates: real (n = {len(real)}) vs synthetic (n = {len(synth)}), "
                            "share of patients",
                      height=max(320, 260 * nrows) + 40, margin=dict(t=130),
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0))
    return fig


# --------------------------------------------------------------------------------------------- trajectory
def _visit_grid(v: pd.Series, max_visits: int = 25) -> pd.Series:
    """Visit times as they are when few; rounded to a grid when the schedule is irregular."""
    v = pd.to_numeric(v, errors="coerce")
    if v.nunique() <= max_visits:
        return v
    span = float(v.max() - v.min()) or 1.0
    step = 10 ** math.floor(math.log10(span / max_visits))
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= max_visits:
            step *= mult
            break
    return (v / step).round() * step


def trajectory_figure(real_long: pd.DataFrame, synth_long: pd.DataFrame, schema: CohortSchema, *,
                      spaghetti: int = 0, min_patients: int = 5) -> go.Figure:
    """Mean outcome per visit with a +-1 SD band, real vs synthetic (longitudinal outcome).

    ``spaghetti`` adds the individual trajectories of that many patients of each source (the first ids, so the
    figure is deterministic). Visits with fewer than ``min_patients`` values are left out of the mean lines.
    """
    out = schema.outcome
    if out.type != "longitudinal":
        raise ValueError(f"trajectory_figure needs a longitudinal outcome, the schema's is {out.type!r}")
    unit = out.unit or "visit unit"
    fig = go.Figure()
    for label, df in (("real", real_long), ("synthetic", synth_long)):
        d = pd.DataFrame({"id": df[schema.id], "visit": _visit_grid(df[out.visit]),
                          "y": pd.to_numeric(df[out.value], errors="coerce")}).dropna()
        if spaghetti > 0:
            ids = pd.unique(d["id"])[:spaghetti]
            for j, pid in enumerate(ids):
                p = d[d["id"] == pid].sort_values("visit")
                fig.add_trace(go.Scatter(
                    x=p["visit"], y=p["y"], mode="lines", name=f"{label} patients", legendgroup=f"{label}-ind",
                    showlegend=j == 0, opacity=0.35, line=dict(color=COLORS[label], width=1),
                    hovertemplate=f"{label} patient {pid}<br>{out.visit} = %{{x}} {unit}<br>"
                                  f"{out.value} = %{{y}}<extra></extra>"))
        g = d.groupby("visit")["y"].agg(["mean", "std", "count"]).reset_index()
        g = g[g["count"] >= min(min_patients, int(g["count"].max()) if len(g) else 0)]
        sd = g["std"].fillna(0.0)
        fig.add_traces(_band(g["visit"], g["mean"] - sd, g["mean"] + sd, COLORS[label], f"{label} ±1 SD",
                             legendgroup=label, showlegend=True))
        fig.add_trace(go.Scatter(
            x=g["visit"], y=g["mean"], mode="lines+markers", name=f"{label} mean", legendgroup=label,
            line=dict(color=COLORS[label], width=2.5),
            customdata=np.column_stack([sd, g["count"]]),
            hovertemplate=f"{label}<br>{out.visit} = %{{x}} {unit}<br>mean {out.value} = %{{y:.2f}}"
                          "<br>SD %{customdata[0]:.2f}, n = %{customdata[1]}<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, title=f"Mean {out.value} per visit (±1 SD): real vs synthetic",
                      xaxis_title=f"{out.visit} ({unit})", yaxis_title=out.value, hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


# ----------------------------------------------------------------------------------------- Kaplan-Meier
def _km(time: np.ndarray, event: np.ndarray, level: float = 0.95):
    """Kaplan-Meier steps starting at (0, 1) with a pointwise log(-log) interval."""
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(time, event)
    t = np.concatenate([[0.0], sf.surv_times])
    s = np.concatenate([[1.0], sf.surv_prob])
    se = np.concatenate([[0.0], sf.surv_prob_se])
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.log(-np.log(s))
        se_ll = se / (s * np.abs(np.log(s)))
        lo = np.exp(-np.exp(ll + z * se_ll))
        hi = np.exp(-np.exp(ll - z * se_ll))
    lo = np.where(np.isfinite(lo), lo, np.where(s >= 1, 1.0, 0.0))
    hi = np.where(np.isfinite(hi), hi, np.where(s >= 1, 1.0, s))
    # extend the last step to the last follow-up time
    tmax = float(np.max(time)) if len(time) else 0.0
    if tmax > t[-1]:
        t, s, lo, hi = (np.append(a, a[-1]) for a in (t, s, lo, hi))
        t[-1] = tmax
    return t, s, lo, hi


def km_figure(real: pd.DataFrame, synth: pd.DataFrame, schema: CohortSchema) -> go.Figure:
    """Kaplan-Meier curves of the real and synthetic cohorts (tte outcome), with a 95 % band for the real one."""
    out = schema.outcome
    if out.type != "tte":
        raise ValueError(f"km_figure needs a tte outcome, the schema's is {out.type!r}")
    unit = out.unit or "time unit"
    fig = go.Figure()
    for label, df in (("real", real), ("synthetic", synth)):
        d = _one_row_per_patient(df, schema)
        d = pd.DataFrame({"t": pd.to_numeric(d[out.time], errors="coerce"),
                          "e": pd.to_numeric(d[out.event], errors="coerce")}).dropna()
        t, s, lo, hi = _km(d["t"].to_numpy(float), d["e"].to_numpy(float).astype(int))
        if label == "real":
            fig.add_traces(_band(t, lo, hi, COLORS[label], "real 95% pointwise CI", shape="hv",
                                 legendgroup=label, showlegend=True))
        fig.add_trace(go.Scatter(
            x=t, y=s, mode="lines", name=f"{label} (n = {len(d)}, {int(d['e'].sum())} events)",
            legendgroup=label, line=dict(color=COLORS[label], width=2.5, shape="hv"),
            hovertemplate=f"{label}<br>{out.time} = %{{x:.4g}} {unit}<br>survival = %{{y:.3f}}<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, title=f"Kaplan-Meier: real vs synthetic ({out.event} over {out.time})",
                      xaxis_title=f"{out.time} ({unit})", yaxis_title="event-free probability",
                      yaxis=dict(range=[0, 1.02], tickformat=".0%"), hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


# ---------------------------------------------------------------------------------------- convenience
def validation_figures(cohort, generator, *, seed: int, n: int | None = None,
                       synthetic: pd.DataFrame | None = None, spaghetti: int = 5) -> dict[str, go.Figure]:
    """The generator-validation figures for a cohort and its fitted generator.

    Draws ``n`` synthetic patients (default: as many as the cohort) with ``numpy.random.default_rng(seed)``
    unless ``synthetic`` is given, and returns ``{"marginals": ..., "trajectory" | "km": ...}``.
    """
    schema = cohort.schema
    if synthetic is None:
        synthetic = generator.sample(n or cohort.n_patients, rng=np.random.default_rng(seed))
    figs = {"marginals": marginals_figure(cohort.data, synthetic, schema)}
    if schema.outcome.type == "longitudinal":
        figs["trajectory"] = trajectory_figure(cohort.data, synthetic, schema, spaghetti=spaghetti)
    elif schema.outcome.type == "tte":
        figs["km"] = km_figure(cohort.data, synthetic, schema)
    return figs
