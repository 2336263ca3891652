"""Plotly figures of a generator evaluation report (pure: report in, ``go.Figure`` out).

Shared by the app and the HTML report; colours and template are those of :mod:`analysis.plots` (real data
blue, synthetic data orange, reference lines grey). Nothing here computes a metric: every number drawn is read
from the :class:`~cohorts.evaluate.EvaluationReport`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from analysis.plots import _TEMPLATE, COLORS, _band, _rgba

__all__ = ["fidelity_figures", "marginal_distance_figure", "association_figure", "km_comparison_figure",
           "trajectory_comparison_figure", "slope_figure", "dcr_figure", "utility_figure"]

_LEGEND = dict(orientation="h", yanchor="bottom", y=-0.35)


def marginal_distance_figure(report) -> go.Figure:
    """Per baseline column: KS (numeric) or total-variation (categorical) distance, synthetic vs training rows.

    Dashed line: the conventional 0.1 target; crosses: the 5 % two-sample KS sampling-noise level of each
    numeric column (a KS bar below its cross is within noise).
    """
    m = report.fidelity.marginals
    fig = go.Figure()
    for metric, colour, label in (("KS", COLORS["synthetic"], "KS statistic (numeric)"),
                                  ("TV", COLORS["real"], "total-variation distance (categorical)")):
        part = m[m["metric"] == metric]
        if len(part):
            fig.add_trace(go.Bar(
                x=part["column"], y=part["statistic"], name=label, marker=dict(color=colour),
                customdata=np.column_stack([part["missing_real"], part["missing_synthetic"]]),
                hovertemplate=f"%{{x}}<br>{metric} = %{{y:.3f}}<br>missing: real %{{customdata[0]:.1%}}, "
                              "synthetic %{customdata[1]:.1%}<extra></extra>"))
    ks = m[m["metric"] == "KS"]
    if len(ks):
        fig.add_trace(go.Scatter(x=ks["column"], y=ks["noise_5pct"], mode="markers", name="KS 5% noise level",
                                 marker=dict(symbol="x", size=11, color=COLORS["reference"]),
                                 hovertemplate="%{x}<br>5% sampling-noise level %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0.1, line=dict(color=COLORS["reference"], dash="dash", width=1),
                  annotation_text="target 0.1", annotation_position="top left")
    fig.update_layout(template=_TEMPLATE, title="Baseline marginals: distance synthetic vs real (training rows)",
                      xaxis_title="baseline column", yaxis_title="distance (0 = identical)",
                      yaxis=dict(rangemode="tozero"), legend=_LEGEND)
    return fig


def association_figure(report) -> go.Figure:
    """Heatmap of synthetic minus real pairwise associations (Spearman / Cramér's V / correlation ratio)."""
    f = report.fidelity
    d, r, s = f.association_difference, f.association_real, f.association_synthetic
    labels = [str(c) for c in d.columns]
    fig = go.Figure(go.Heatmap(
        z=d.to_numpy(), x=labels, y=labels, zmin=-1, zmax=1, zmid=0, colorscale="RdBu_r",
        colorbar=dict(title="synthetic - real"),
        customdata=np.dstack([r.to_numpy(), s.to_numpy()]),
        hovertemplate="%{y} x %{x}<br>real %{customdata[0]:.3f}, synthetic %{customdata[1]:.3f}"
                      "<br>difference %{z:.3f}<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, yaxis=dict(autorange="reversed"),
                      title=f"Association differences (mean |difference| = {f.association_mean_abs_difference:.3f})")
    return fig


def km_comparison_figure(report) -> go.Figure:
    """Kaplan-Meier curves of training and synthetic rows; dotted line at the end of the common follow-up."""
    km = report.fidelity.km
    if km is None:
        raise ValueError(f"the report has no Kaplan-Meier comparison (outcome type {report.outcome_type!r})")
    fig = go.Figure()
    for label, t, s in (("real", km.time_real, km.surv_real), ("synthetic", km.time_synthetic, km.surv_synthetic)):
        fig.add_trace(go.Scatter(x=t, y=s, mode="lines", name=label, line=dict(color=COLORS[label], width=2.5,
                                                                             shape="hv"),
                                 hovertemplate=f"{label}<br>t = %{{x:.4g}}<br>survival %{{y:.3f}}<extra></extra>"))
    fig.add_vline(x=km.followup, line=dict(color=COLORS["reference"], dash="dot", width=1),
                  annotation_text="end of common follow-up", annotation_position="top right")
    fig.update_layout(template=_TEMPLATE, xaxis_title="time", yaxis_title="event-free probability",
                      yaxis=dict(range=[0, 1.02], tickformat=".0%"), legend=_LEGEND,
                      title=f"Kaplan-Meier: sup |difference| {km.sup_distance:.3f}, "
                            f"mean |difference| {km.mean_abs_difference:.3f}")
    return fig


def trajectory_comparison_figure(report) -> go.Figure:
    """Mean ± 1 SD of the longitudinal outcome per visit, training vs synthetic rows."""
    tr = report.fidelity.trajectory
    if tr is None:
        raise ValueError(f"the report has no trajectory comparison (outcome type {report.outcome_type!r})")
    v = tr.per_visit
    fig = go.Figure()
    for label in ("real", "synthetic"):
        g = v[v[f"n_{label}"] > 0]
        mean, sd = g[f"mean_{label}"].to_numpy(float), np.nan_to_num(g[f"sd_{label}"].to_numpy(float))
        fig.add_traces(_band(g["visit"], mean - sd, mean + sd, COLORS[label], f"{label} ±1 SD", legendgroup=label,
                             showlegend=True))
        fig.add_trace(go.Scatter(x=g["visit"], y=mean, mode="lines+markers", name=f"{label} mean",
                                 legendgroup=label, line=dict(color=COLORS[label], width=2.5),
                                 customdata=np.column_stack([sd, g[f"n_{label}"]]),
                                 hovertemplate=f"{label}<br>visit %{{x}}<br>mean %{{y:.3f}}<br>SD "
                                               "%{customdata[0]:.3f}, n = %{customdata[1]}<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, xaxis_title="visit time", yaxis_title="outcome", legend=_LEGEND,
                      title=f"Mean per visit ±1 SD (mean |SMD| {tr.mean_abs_smd:.3f})")
    return fig


def _overlay(fig: go.Figure, series: list[tuple[str, np.ndarray, str]], bins: int) -> np.ndarray:
    """Overlaid histograms (share of each sample) on shared bin edges; returns the edges."""
    both = np.concatenate([v for _, v, _ in series]) if series else np.array([])
    edges = np.histogram_bin_edges(both if both.size else [0.0, 1.0], bins=bins)
    for name, v, colour in series:
        counts, _ = np.histogram(v, bins=edges)
        fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts / max(v.size, 1), width=np.diff(edges),
                             name=f"{name} (n = {v.size})", marker=dict(color=_rgba(colour, 0.55), line=dict(width=0)),
                             customdata=np.column_stack([edges[:-1], edges[1:], counts]),
                             hovertemplate=f"{name}<br>[%{{customdata[0]:.3g}}, %{{customdata[1]:.3g}})<br>"
                                           "%{y:.1%} (%{customdata[2]})<extra></extra>"))
    fig.update_layout(barmode="overlay", bargap=0.02)
    return edges


def slope_figure(report, *, bins: int = 30) -> go.Figure:
    """Distribution of individual OLS slopes, training vs synthetic patients (share of patients)."""
    tr = report.fidelity.trajectory
    if tr is None:
        raise ValueError(f"the report has no slope comparison (outcome type {report.outcome_type!r})")
    fig = go.Figure()
    _overlay(fig, [("real", tr.slopes_real, COLORS["real"]), ("synthetic", tr.slopes_synthetic, COLORS["synthetic"])],
             bins)
    fig.update_layout(template=_TEMPLATE, xaxis_title="individual OLS slope (outcome per visit-time unit)",
                      yaxis_title="share of patients", yaxis=dict(tickformat=".0%"), legend=_LEGEND,
                      title=f"Individual slopes: KS {tr.slope_ks:.3f}; mean real {tr.slope_mean_real:.3g}, "
                            f"synthetic {tr.slope_mean_synthetic:.3g}")
    return fig


def dcr_figure(report, *, bins: int = 30) -> go.Figure:
    """Distance to the closest training record: synthetic vs holdout patients, with the holdout 5th percentile."""
    p = report.privacy
    fig = go.Figure()
    _overlay(fig, [("holdout", p.dcr_holdout, COLORS["real"]), ("synthetic", p.dcr_synthetic, COLORS["synthetic"])],
             bins)
    if np.isfinite(p.dcr_holdout_p5):
        fig.add_vline(x=p.dcr_holdout_p5, line=dict(color=COLORS["null"], dash="dash", width=1),
                      annotation_text="holdout 5th percentile", annotation_position="top right")
    fig.update_layout(template=_TEMPLATE, xaxis_title="Gower distance to the closest training patient",
                      yaxis_title="share of patients", yaxis=dict(tickformat=".0%"), legend=_LEGEND,
                      title=f"Distance to closest record: {p.share_closer_than_holdout_p5:.1%} of synthetic "
                            f"patients closer than the holdout 5th percentile; membership AUC "
                            f"{p.membership_auc:.3f}")
    return fig


def utility_figure(report) -> go.Figure:
    """Holdout score of the outcome model trained on real (TRTR) vs synthetic (TSTR) patients."""
    u = report.utility
    fig = go.Figure(go.Bar(x=["train real, test real", "train synthetic, test real"], y=[u.real, u.synthetic],
                           marker=dict(color=[COLORS["real"], COLORS["synthetic"]]),
                           hovertemplate="%{x}<br>" + u.metric + " = %{y:.3f}<extra></extra>"))
    fig.update_layout(template=_TEMPLATE, yaxis_title=u.metric, showlegend=False,
                      title=f"Utility on the holdout: {u.metric}, ratio TSTR / TRTR = {u.ratio:.3f}")
    return fig


def fidelity_figures(report) -> dict[str, go.Figure]:
    """Every figure of a report: ``marginals``, ``associations``, then ``km`` (tte) or ``trajectory`` and
    ``slopes`` (longitudinal), then ``dcr`` and ``utility``."""
    figs = {"marginals": marginal_distance_figure(report), "associations": association_figure(report)}
    if report.fidelity.km is not None:
        figs["km"] = km_comparison_figure(report)
    if report.fidelity.trajectory is not None:
        figs["trajectory"] = trajectory_comparison_figure(report)
        figs["slopes"] = slope_figure(report)
    figs["dcr"] = dcr_figure(report)
    figs["utility"] = utility_figure(report)
    return figs
