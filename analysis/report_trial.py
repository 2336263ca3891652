"""The report's "outcome of one example trial" section: one virtual trial simulated from the fitted generator and
the design (the same figures and tables as the app's Outcome page, :mod:`analysis.outcome_view`).

The trial has the largest total N of the power settings and is simulated from the report's seed with the
simulation stream of :func:`analysis.workflow.seed_streams` (as the Outcome page does for that seed), so the
example is reproducible from the seed alone.
"""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

__all__ = ["example_trial_context"]

#: at most this many categorical covariates get subgroup rows in the forest plot
MAX_SUBGROUPS = 3


def _fig(fig) -> Markup | None:
    if fig is None:
        return None
    return Markup(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False},
                              default_height="480px"))


def _table(frame: pd.DataFrame) -> Markup:
    return Markup(frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3g}", border=0,
                                classes="table"))


def example_trial_context(generator, design, n_total: int, seed: int | None, alpha: float, *,
                          figure=None) -> dict | None:
    """Template context of the example-trial section, or ``None`` without a fitted generator or a seed.

    ``figure``: plotly figure (or None) -> markup; default: an interactive plotly ``<div>`` (the PDF passes a
    static-SVG one)."""
    figure = figure or _fig
    if (generator is None or not getattr(generator, "is_fitted", True) or seed is None
            or not hasattr(generator, "draw")):
        return None
    from analysis.estimators import SINGLE
    from analysis.outcome_view import forest_figure, simulate_one_trial, subgroup_effects
    from analysis.workflow import seed_streams

    _, rng = seed_streams(int(seed))
    trial = simulate_one_trial(generator, design, int(n_total), rng=rng)
    analysis = design.endpoint.analysis
    kwargs = trial.analysis_kwargs(analysis)
    res = SINGLE[analysis](trial.data, alpha=alpha, **kwargs)
    primary = pd.DataFrame([{"analysis": res.method, "estimate": res.estimate, "CI low": res.ci_low,
                             "CI high": res.ci_high, "p-value": res.p_value,
                             f"n {trial.control}": res.n_per_arm[0], f"n {trial.treated}": res.n_per_arm[1]}])
    subgroups = list(trial.categorical[:MAX_SUBGROUPS])
    forest = None
    if subgroups:
        rows = subgroup_effects(trial.data, analysis=analysis, subgroups=subgroups, alpha=alpha, **kwargs)
        forest = forest_figure(rows, title=f"Treatment effect by subgroup ({analysis})")
    return {"source": trial.source, "n_total": int(n_total), "seed": int(seed),
            "table_one": _table(trial.table_one()), "primary": _table(primary),
            "outcome_fig": figure(trial.outcome_figure()), "forest_fig": figure(forest),
            "subgroups": ", ".join(subgroups)}
