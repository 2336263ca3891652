"""The figures a run directory keeps (``figures/NAME.json``) and the report shows.

* ``power_curve`` (power runs): :func:`analysis.plots.power_curve_figure`;
* ``marginals``, ``trajectory`` or ``km``: real vs synthetic patients of the fitted generator
  (:func:`analysis.plots.validation_figures`, drawn with ``default_rng(seed)``);
* ``eval_<name>``: the evaluation figures of the family scored on held-out patients
  (:func:`analysis.evaluation_plots.fidelity_figures`), when it was evaluated;
* ``sweep_power`` and ``sweep_type1`` (sweeps): :func:`analysis.conduct_figures.sweep_heatmap`.
"""

from __future__ import annotations

__all__ = ["run_figures"]


def run_figures(cohort, generator, *, seed: int, power_result=None, evaluation=None, sweep_table=None) -> dict:
    from analysis.plots import power_curve_figure, validation_figures
    figs = {}
    if power_result is not None:
        figs["power_curve"] = power_curve_figure(power_result)
    figs.update(validation_figures(cohort, generator, seed=int(seed)))
    if evaluation is not None:
        from analysis.evaluation_plots import fidelity_figures
        figs.update({f"eval_{k}": v for k, v in fidelity_figures(evaluation.report).items()})
    if sweep_table is not None:
        figs.update(sweep_figures(sweep_table))
    return figs


def sweep_figures(table) -> dict:
    """Power and type I error heatmaps over N and the next varying axis, the other axes at their first value."""
    from analysis.conduct_figures import sweep_heatmap, sweep_slice
    x, y, where = sweep_slice(table)
    note = "" if not where else " (" + ", ".join(f"{a} = {v}" for a, v in where.items()) + ")"
    return {"sweep_power": sweep_heatmap(table, "power", x=x, y=y, where=where, title="Power" + note),
            "sweep_type1": sweep_heatmap(table, "type1_error", x=x, y=y, where=where,
                                         title="Type I error (no effect)" + note)}
