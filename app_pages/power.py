"""Power: simulate the design in a background thread; power curve, operating characteristics (per arm, hybrid,
per look) and the type I error under no effect; a sweep over a small grid."""

from __future__ import annotations

import streamlit as st

from analysis.plots import power_curve_figure
from app_pages import _power_views as pv
from app_pages._run_jobs import start_power, start_sample_size
from app_pages._state import (DEFAULT_SEED, adopt_finished_jobs, current_power_key, form, job_running, need,
                              show_job, sidebar)

ss = st.session_state
sidebar()
st.title("4 · Simulated power")
cohort = need("cohort", "Data", "choose a cohort")
design = need("design", "Design", "set the design")
settings = ss["settings"]
seed = int(ss.get("seed", DEFAULT_SEED))
generator_name = form().get("generator_name", "default")
running = job_running("power_job")

total = 2 * len(settings.n_total) * settings.replicates
st.write(f"{design.effect.describe()}, **{design.endpoint.analysis}** analysis, N = "
         f"{', '.join(map(str, settings.n_total))}: {total:,} simulated trials (half of them with no effect), "
         f"generator **{generator_name}**, seed {seed}.")
c1, c2 = st.columns([1, 3])
c1.button("Run simulation", type="primary", disabled=running or job_running("fit_job"), on_click=start_power,
          args=(cohort, generator_name, design, settings, seed))
if running:
    c2.caption("Running in the background: you may switch pages and come back.")


@st.fragment(run_every=0.5 if running else None)
def progress() -> None:
    show_job("power_job")
    if adopt_finished_jobs():
        st.rerun()


progress()
with st.expander("Sample size for a target power (simulated search)"):
    s1, s2 = st.columns([1, 2])
    target = s1.number_input("Target power", 0.5, 0.99, 0.8, 0.05, key="w_power_target")
    searching = job_running("sample_size_job")
    s2.button("Find N", disabled=searching or running, on_click=start_sample_size,
              args=(cohort, generator_name, design, settings, seed, float(target)))

    @st.fragment(run_every=0.5 if searching else None)
    def sample_size() -> None:
        show_job("sample_size_job")
        job = ss.get("sample_size_job")
        if job is None or job.running or job.result is None:
            return
        r, s = job.result, job.result.search
        if job.key != (*(current_power_key() or ()), float(target)):
            st.warning("This search is for an earlier design, cohort, seed or target; search again to update it.")
        if s.n_recommended is None:
            st.warning(f"No N up to {max(e.n_total for e in s.evaluations)} was shown to reach the target ({s.status}).")
        else:
            lo, hi = r.type1_ci()
            st.success(f"Smallest total N reaching power {r.target:.0%}: **{s.n_recommended}** (Monte Carlo 95 % "
                       f"range {s.n_ci_low}-{s.n_ci_high}); simulated power there {s.power:.3f}; type I error "
                       f"{r.type1_error:.3f} ({lo:.3f}-{hi:.3f}).")
        st.dataframe(s.table(), hide_index=True)
    sample_size()
pv.sweep_section(cohort, generator_name, design, settings, seed, busy=running or job_running("fit_job"))
result = ss.get("power_result")
if result is None:
    if not running:
        st.info("Press **Run simulation**. Start with a few hundred replicates; use 1,000 or more for the "
                "final numbers.")
    st.stop()
if ss.get("power_key") != current_power_key():
    st.warning("These results are from an earlier design, cohort or seed; run the simulation again to update them.")

c1, c2, c3 = st.columns(3)
best = int(result.power.argmax())
c1.metric(f"Power at N = {result.n_total[best]}", f"{result.power[best]:.1%}",
          help=f"95 % MC interval {result.power_ci_low[best]:.1%} - {result.power_ci_high[best]:.1%}")
c2.metric("Type I error (no effect)", f"{result.type1_error:.2%}",
          help=f"95 % MC interval {result.type1_ci_low:.2%} - {result.type1_ci_high:.2%}, "
               f"{len(result.n_total) * result.settings.replicates:,} null replicates")
c3.metric("Run time", f"{result.elapsed_s:.1f} s")
if result.type1_ci_low > result.settings.alpha:
    st.error(f"The simulated type I error {result.type1_error:.2%} exceeds alpha {result.settings.alpha:g} beyond "
             "Monte Carlo error: this analysis does not keep its level on these synthetic data.")
st.plotly_chart(power_curve_figure(result), key="power_curve", theme=None)
pv.show_results(result)
st.caption(f"Type I error pooled over all N: {result.type1_error:.4f} (95 % MC interval "
           f"{result.type1_ci_low:.4f} - {result.type1_ci_high:.4f}).")
st.page_link("app_pages/report.py", label="Next: download the report", icon=":material/arrow_forward:")
