"""Power page helpers: the operating-characteristics table, per-arm power (multi-arm), hybrid vs randomized-only,
the per-look table with the boundaries and stopping figures (group-sequential), and the in-app sweep (a background
job over a small grid, shown as a heatmap).

The table builders are pure (a :class:`~analysis.power_result.PowerResult` in, a DataFrame out); the ``show_*``
functions render them. Figures come from :mod:`analysis.conduct_figures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app_pages._design_conduct import EFFECT_INPUTS, numbers
from app_pages._run_jobs import start_sweep
from app_pages._state import generator_meta, job_running, show_error, show_job, widget

P = "power"
_OC_COLUMNS = ("estimand", "mean_estimate", "coverage", "expected_n", "expected_events", "expected_months")


def _pm(mean, se) -> list[str]:
    return [("" if not np.isfinite(m) else f"{m:+.4g} ± {s:.2g}" if np.isfinite(s) else f"{m:+.4g}")
            for m, s in zip(np.asarray(mean, float), np.asarray(se, float))]


def operating_table(result) -> pd.DataFrame:
    """Per N: power with its 95 % MC interval, the analytic cross-check, type I error with its interval, the
    estimand, bias ± its MC standard error, coverage, expected N / events / months (columns that are empty for
    this design left out)."""
    t = result.table()
    lo, hi = result.type1_by_n_ci()
    out = t[["n_total", "power", "power_ci_low", "power_ci_high"]].copy()
    if "analytic_power" in t and np.isfinite(t["analytic_power"].to_numpy(float)).any():
        out["analytic_power"] = t["analytic_power"]
    out["type1_error"], out["type1_ci_low"], out["type1_ci_high"] = t["type1_error"], lo, hi
    if "bias" in t:
        out["bias ± se"] = _pm(t["bias"], t["bias_se"])
    for c in _OC_COLUMNS:
        if c in t and np.isfinite(t[c].to_numpy(float)).any():
            out[c] = t[c]
    return out


def arm_table(result) -> pd.DataFrame | None:
    """Multi-arm designs: per N, each treatment's power and type I error (after the multiplicity adjustment),
    the power to show any arm (the trial's power) and all arms; ``None`` for two-arm designs."""
    op = result.operating
    if op is None or "power_arm_1" not in op:
        return None
    out = pd.DataFrame({"n_total": list(result.n_total)})
    for j, arm in enumerate(result.design.treatments, start=1):
        out[f"power: {arm.name}"] = op[f"power_arm_{j}"].to_numpy(float)
        out[f"type I error: {arm.name}"] = op[f"type1_arm_{j}"].to_numpy(float)
    out["power: any arm"] = np.asarray(result.power, float)
    out["power: all arms"] = op["power_all_arms"].to_numpy(float)
    return out


def hybrid_table(result) -> pd.DataFrame | None:
    """Hybrid control: per N, the hybrid comparison (randomized + synthetic controls) beside the randomized-only
    one: power, type I error, bias ± se under the effect, bias under no effect; ``None`` without synthetic
    controls."""
    op = result.operating
    if op is None or "power_randomized_only" not in op:
        return None
    return pd.DataFrame({
        "n_total": list(result.n_total),
        "power: hybrid": np.asarray(result.power, float),
        "power: randomized only": op["power_randomized_only"].to_numpy(float),
        "type I error: hybrid": np.asarray(result.type1_by_n, float),
        "type I error: randomized only": op["type1_randomized_only"].to_numpy(float),
        "bias ± se: hybrid": _pm(op["bias"], op["bias_se"]),
        "bias ± se: randomized only": _pm(op["bias_randomized_only"], op["bias_randomized_only_se"]),
        "bias under no effect: hybrid": op["bias_null"].to_numpy(float),
        "bias under no effect: randomized only": op["bias_null_randomized_only"].to_numpy(float)})


def look_display(table: pd.DataFrame) -> pd.DataFrame:
    """A simulated look table without its empty columns (no futility: no futility bounds or beta spent)."""
    return table.dropna(axis=1, how="all")


def _config() -> dict:
    num = st.column_config.NumberColumn
    cfg = {"n_total": num("total N"), "power": num("power", format="%.3f"),
           "power_ci_low": num("95% MC low", format="%.3f"), "power_ci_high": num("95% MC high", format="%.3f"),
           "analytic_power": num("analytic power", format="%.3f", help="Closed form with the estimand's inputs"),
           "type1_error": num("type I error", format="%.3f"),
           "type1_ci_low": num("type I 95% low", format="%.3f"), "type1_ci_high": num("type I 95% high", format="%.3f"),
           "estimand": num("estimand", format="%.4g", help="The effect a very large trial of this design estimates"),
           "mean_estimate": num("mean estimate", format="%.4g"),
           "coverage": num("CI coverage", format="%.3f", help="Share of 95 % CIs containing the estimand"),
           "expected_n": num("expected N", format="%.1f"), "expected_events": num("expected events", format="%.1f"),
           "expected_months": num("expected months", format="%.1f", help="Calendar months to the analysis")}
    return cfg


def show_results(result) -> None:
    """Operating characteristics, then per-arm, hybrid and per-look views where the design has them."""
    st.subheader("Operating characteristics")
    st.dataframe(operating_table(result), hide_index=True, column_config=_config(), key="oc_table")
    st.caption(f"{result.settings.replicates:,} replicates per N under the effect and as many under no effect; "
               "intervals are exact (Clopper-Pearson) 95 % Monte Carlo intervals; bias ± its Monte Carlo standard "
               "error; coverage of the estimand by the analysis' confidence interval.")
    arms = arm_table(result)
    if arms is not None:
        st.subheader(f"Per treatment arm ({result.design.multiplicity} adjustment)")
        st.dataframe(arms, hide_index=True, key="arm_table")
    hybrid = hybrid_table(result)
    if hybrid is not None:
        st.subheader("Hybrid control vs randomized only")
        st.dataframe(hybrid, hide_index=True, key="hybrid_table")
        st.caption("The same simulated trials analysed with the synthetic controls counted as controls, and without "
                   "them; drift between today's and the historical patients biases only the hybrid comparison.")
    if result.looks:
        show_looks(result)
    with st.expander("All columns (for audit)"):
        st.dataframe(result.table(), hide_index=True, key="full_table")


def show_looks(result) -> None:
    from analysis.conduct_figures import boundaries_figure, stopping_figure
    st.subheader("Interim looks")
    ns = list(result.n_total)
    n = widget(st.selectbox, "Looks at total N", "looks_n", ns[-1], page=P, options=ns)
    table = result.looks[ns.index(n)]
    st.dataframe(look_display(table), hide_index=True, key="look_table")
    st.caption(result.design.looks.describe() + ". p_efficacy / p_futility: probability of stopping at that look "
               "under the effect (\"_null\": under no effect); enrolled, events and month: means at the look.")
    c1, c2 = st.columns(2)
    c1.plotly_chart(boundaries_figure(table), key="look_boundaries", theme=None)
    c2.plotly_chart(stopping_figure(table), key="look_stopping", theme=None)


# -------------------------------------------------------------------------------------------------- sweep
def cohort_ref(cohort, generator_name: str):
    """The scenario's cohort reference (as the Report page writes it)."""
    from trials.scenario import CohortRef
    params = tuple(sorted(st.session_state.get("generator_params", {}).items()))
    if cohort.source and cohort.source.startswith("builtin:"):
        return CohortRef(builtin=cohort.source.removeprefix("builtin:"), generator=generator_name, params=params)
    stem = Path(cohort.source or cohort.name).stem
    return CohortRef(data=Path(cohort.source or f"{cohort.name}.csv"), schema=Path(f"{stem}.schema.toml"),
                     generator=generator_name, params=params)


def sweep_caveats(design) -> list[str]:
    """What a sweep cell does not keep of ``design`` (:meth:`analysis.sweep_grid.SweepCell.design`)."""
    out = []
    if design.n_treatments > 1:
        out.append("the effect axis sets the first treatment arm's effect; the other arms keep theirs")
    if any(a.dropout_per_month is not None for a in design.arms):
        out.append("each arm's own dropout overrides the dropout axis")
    return out


def _grid(design, settings, seed: int, cohort, generator_name: str, otype: str):
    """The grid widgets -> ``(scenario, grid)`` (:func:`analysis.sweep_grid.parse_grid` validates)."""
    from analysis.sweep_grid import parse_grid
    from trials.design import ANALYSIS_OUTCOME, PowerSettings
    from trials.scenario import Scenario
    kind = design.effect.kind
    label, _, _, factor, _, _ = EFFECT_INPUTS[kind]
    c1, c2, c3, c4 = st.columns(4)
    effects = widget(c1.text_input, f"Effects: {label}", "sweep_effects", f"{design.effect.value * factor:g}",
                     page=P, help="Comma separated, on the Design page's scale.")
    ns = widget(c2.text_input, "Total sample sizes N", "sweep_n", ", ".join(map(str, settings.n_total)), page=P)
    timed = otype in ("longitudinal", "tte")
    drops = widget(c3.text_input, "Dropout per month (%)", "sweep_dropout", f"{design.dropout.per_month * 100:g}",
                   page=P, disabled=not timed, help="Longitudinal and time-to-event endpoints only.")
    fits = [a for a, o in ANALYSIS_OUTCOME.items() if o == otype]
    with c4:  # st.multiselect itself: the widget helper recognises multiselects by identity
        analyses = widget(st.multiselect, "Analyses", "sweep_analyses", [design.endpoint.analysis], page=P,
                          options=fits)
    reps = int(widget(c1.number_input, "Replicates per cell", "sweep_replicates", min(200, settings.replicates),
                      page=P, min_value=10, max_value=100_000, step=50,
                      help="Each cell simulates this many trials under the effect and as many under no effect."))
    table = {"effect": [v / factor for v in numbers(effects, "grid.effect", example="15, 25, 35")],
             "n_total": list(numbers(ns, "grid.n_total", int, example="120, 240")),
             "dropout_per_month": [v / 100 for v in numbers(drops, "grid.dropout_per_month", example="1, 3")]
             if timed else [], "analysis": list(analyses)}
    scenario = Scenario(title="app sweep", seed=int(seed), cohort=cohort_ref(cohort, generator_name), design=design,
                        power=PowerSettings(settings.n_total, reps, settings.alpha))
    return scenario, parse_grid({"grid": {k: v for k, v in table.items() if v}}, scenario)


def sweep_section(cohort, generator_name: str, design, settings, seed: int, busy: bool) -> None:
    """The "Sweep" expander: grid inputs, a background run, the table and its heatmap."""
    from cohorts.errors import WorkbenchError
    with st.expander("Sweep: power over a grid of effects, sizes, dropout and analyses"):
        try:
            scenario, grid = _grid(design, settings, seed, cohort, generator_name, cohort.schema.outcome.type)
        except WorkbenchError as exc:
            show_error(exc)
            scenario = grid = None
        running = job_running("sweep_job")
        if grid is not None:
            st.caption(f"{grid.n_cells} cells x 2 x {scenario.power.replicates} replicates = "
                       f"{2 * grid.n_cells * scenario.power.replicates:,} simulated trials, seed {seed}."
                       + ("".join(f" Note: {c}." for c in sweep_caveats(design))))
        st.button("Run sweep", disabled=grid is None or running or busy, on_click=start_sweep,
                  args=(cohort, generator_name, scenario, grid), key="w_power_sweep_run")

        @st.fragment(run_every=0.5 if running else None)
        def sweep_progress() -> None:
            show_job("sweep_job")
            job = st.session_state.get("sweep_job")
            if job is not None and not job.running and job.result is not None:
                if grid is None or job.key != (*generator_meta(cohort, generator_name, seed), scenario.design,
                                               scenario.power, grid):
                    st.warning("This sweep is for an earlier design, grid, cohort or seed; run it again to update it.")
                show_sweep(job.result)
        sweep_progress()


def show_sweep(result) -> None:
    """The sweep table and a heatmap over two chosen axes (other varying axes fixed by a choice each)."""
    from analysis.conduct_figures import AXIS_LABELS, sweep_heatmap
    from analysis.sweep_grid import GRID_AXES
    from cohorts.errors import WorkbenchError
    t = result.table
    st.dataframe(t.drop(columns=["seconds"]), hide_index=True, key="sweep_table")
    varying = [a for a in GRID_AXES if t[a].nunique() > 1] or ["n_total"]
    axes = varying + [a for a in GRID_AXES if a not in varying]
    c1, c2, c3 = st.columns(3)
    value = widget(c1.selectbox, "Colour", "sweep_value", "power", page=P,
                   options=["power", "type1_error", "mean_estimate"])
    x = widget(c2.selectbox, "Across", "sweep_x", axes[0], page=P, options=list(GRID_AXES), format_func=AXIS_LABELS.get)
    ys = [a for a in axes if a != x]
    y = widget(c3.selectbox, "Down", "sweep_y", ys[0], page=P, options=ys, format_func=AXIS_LABELS.get)
    where = {}
    for a in (a for a in varying if a not in (x, y)):
        where[a] = widget(st.selectbox, f"At {AXIS_LABELS[a]}", f"sweep_at_{a}", t[a].iloc[0], page=P,
                          options=sorted(t[a].unique().tolist()))
    try:
        st.plotly_chart(sweep_heatmap(t, value, x=x, y=y, where=where), key="sweep_heatmap", theme=None)
    except WorkbenchError as exc:
        show_error(exc)
