"""What the Generator page draws: hyperparameter form, training results, evaluation summary and figures,
comparison table and chart, save / load. Logic and jobs live in :mod:`app_pages._generator_jobs`."""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.plots import COLORS
from app_pages._generator_jobs import (adopt_generator_jobs, changed_params, generator_download, hyperparameters,
                                       load_upload, parse_optional)
from app_pages._state import adopt_finished_jobs, job_running, show_error, show_job, widget

PAGE = "generator"
ss = st.session_state

#: comparison table: column -> (label, help)
COMPARISON_HELP = {
    "family": ("family", "generator family, best first (lowest detection AUC, then marginal distance)"),
    "detection_auc": ("detection AUC", "a classifier tries to tell held-out real patients from synthetic ones: "
                      "0.5 = indistinguishable, 1 = trivially told apart (target <= 0.6)"),
    "marginal_distance": ("marginal distance", "mean over baseline columns of the KS (numeric) or total-variation "
                          "(categorical) distance, synthetic vs real; 0 = identical"),
    "association_difference": ("association diff.", "mean |difference| of the pairwise association matrices"),
    "outcome_distance": ("outcome distance", "Kaplan-Meier sup distance (time to event), mean |SMD| of the visit "
                         "means (longitudinal), or the outcome's KS / proportion difference"),
    "exact_copy_rate": ("exact-copy rate", "share of synthetic patients identical to a training patient "
                        "(lower is better; compare with the held-out patients' own rate)"),
    "membership_auc": ("membership AUC", "membership-inference attack telling training from held-out patients by "
                       "their distance to the synthetic data: 0.5 = no leakage"),
    "utility_ratio": ("utility TSTR/TRTR", "a model trained on synthetic data, tested on held-out real patients, "
                      "relative to one trained on real data: 1 = as useful"),
    "training_seconds": ("training s", "training time in seconds"),
}


def poll(job_key: str) -> None:
    """The job's progress bar, refreshed every half second while it runs; a full rerun once it finishes.

    Each call sits in its own container: a fragment's id comes from its function and its container, so three
    calls in one container would share one id (and one timer)."""
    @st.fragment(run_every=0.5 if job_running(job_key) else None)
    def _poll() -> None:
        show_job(job_key)
        if adopt_finished_jobs() | adopt_generator_jobs():
            st.rerun()
    with st.container():
        _poll()


def hyperparameter_form(name: str) -> tuple[dict, bool]:
    """Widgets for the family's editable hyperparameters; returns (those changed from the defaults, all valid)."""
    specs = hyperparameters(name)
    if not specs:
        return {}, True
    values, problems = {}, []
    with st.expander(f"Hyperparameters of {name} (optional; the defaults work well)"):
        cols = st.columns(3)
        for i, (k, (kind, default)) in enumerate(specs.items()):
            col, label, key = cols[i % 3], k.replace("_", " "), f"hp_{name}_{k}"
            if default is None:
                text = widget(col.text_input, f"{label} (optional)", key, "", page=PAGE,
                              placeholder="automatic", help=f"{kind.__name__}; leave blank for the family's choice")
                try:
                    values[k] = parse_optional(text, kind)
                except ValueError:
                    what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "valid")
                    problems.append(f"{label}: {text!r} is not {what}; leave it blank for automatic")
            elif kind is bool:
                values[k] = widget(col.checkbox, label, key, default, page=PAGE)
            elif kind is int:
                values[k] = int(widget(col.number_input, label, key, default, page=PAGE, step=1))
            elif kind is float:
                values[k] = float(widget(col.number_input, label, key, default, page=PAGE, format="%g"))
            else:
                values[k] = widget(col.text_input, label, key, default, page=PAGE)
        changed = changed_params(name, values)
        for problem in problems:
            st.error(problem)
        st.caption("Changed: " + ", ".join(f"`{k} = {v!r}`" for k, v in changed.items()) if changed
                   else "All defaults.")
    return changed, not problems


def show_generator(gen, seed: int) -> None:
    """What training produced: size, time, hyperparameters, notes, privacy budget, auto's choice."""
    card = ss.get("generator_card")
    how = f"loaded from **{card.get('uploaded_file', 'a file')}**" if card else "trained"
    secs = getattr(gen, "training_seconds_", None)
    st.success(f"Generator **{gen.name}** {how}: {gen.n_train_:,} training patients, seed {seed}"
               + (f", {secs:.1f} s of training." if secs is not None else "."))
    params = gen.get_params()
    if params:
        st.caption("Hyperparameters: " + ", ".join(f"`{k} = {v!r}`" for k, v in params.items()))
    notes = list(getattr(gen, "fit_notes_", []) or [])
    if notes:
        st.caption("Fit notes:  \n" + "  \n".join(f"- {n}" for n in notes))
    privacy = getattr(gen, "privacy_", None)
    if privacy:
        st.info(f"Differential privacy: ε = {privacy.get('epsilon', float('nan')):.3g}, "
                f"δ = {privacy.get('delta', float('nan')):.3g} ({privacy.get('mechanism', '')}; "
                f"private part: {privacy.get('private_part', '?')}).")
        with st.expander("Privacy budget details"):
            st.json(privacy)
    scores = getattr(gen, "scores_", None)
    if isinstance(scores, pd.DataFrame):
        st.write(f"**auto** selected **{getattr(gen, 'selected_', '?')}** (lowest held-out detection AUC), then "
                 "refitted it on all patients. Candidates:")
        comparison_table(scores, key="auto_scores")


def _highlight(value) -> str:
    if value is True:
        return "background-color: rgba(44, 160, 44, 0.25)"
    if value is False:
        return "background-color: rgba(214, 39, 40, 0.25)"
    return ""


def show_evaluation(run, current_key) -> None:
    if run.key != current_key:
        st.warning(f"This evaluation is of **{run.key[1]}** (seed {run.key[2]}"
                   + (", other hyperparameters" if run.key[3] else "") + ") or another cohort; evaluate again to "
                   "update it.")
    summary = run.report.summary()
    met = summary["meets_target"].dropna()
    st.write(f"**{run.report.generator}** trained on {run.n_train:,} patients, scored against {run.n_holdout:,} "
             f"held-out patients: {int(met.sum())} of {len(met)} targets met.")
    st.dataframe(summary.style.map(_highlight, subset=["meets_target"]), hide_index=True, width="stretch",
                 column_config={"value": st.column_config.NumberColumn(format="%.4f"),
                                "target": st.column_config.NumberColumn(format="%.4f"),
                                "meets_target": st.column_config.CheckboxColumn("meets target")})
    for note in run.report.notes:
        st.caption(note)


def figure_tabs(validation: dict | None, run) -> None:
    """One tab per figure: real vs synthetic of the session's generator, then the evaluation's figures."""
    titles = {"marginals": "Baseline covariates", "trajectory": "Trajectories", "km": "Kaplan-Meier"}
    eval_titles = {"marginals": "Marginal distances", "associations": "Associations", "km": "KM difference",
                   "trajectory": "Visit means", "slopes": "Slopes", "dcr": "Privacy (DCR)", "utility": "Utility"}
    figs = [(titles.get(k, k), f"fig_{k}", f) for k, f in (validation or {}).items()]
    if run is not None:
        figs += [(f"Held-out: {eval_titles.get(k, k)}", f"eval_fig_{k}", f) for k, f in run.figures.items()]
    if not figs:
        return
    for tab, (_, key, fig) in zip(st.tabs([t for t, _, _ in figs]), figs):
        with tab:
            st.plotly_chart(fig, key=key, theme=None)


def comparison_table(table: pd.DataFrame, *, key: str) -> None:
    config = {c: (st.column_config.TextColumn(label, help=help) if c == "family" else
                  st.column_config.NumberColumn(label, help=help, format="%.3f"))
              for c, (label, help) in COMPARISON_HELP.items() if c in table.columns}
    st.dataframe(table, hide_index=True, width="stretch", column_config=config, key=key)


def detection_chart(table: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Bar(x=table["family"], y=table["detection_auc"], marker=dict(color=COLORS["synthetic"]),
                           hovertemplate="%{x}<br>detection AUC %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0.5, line=dict(color=COLORS["reference"], dash="dash", width=1),
                  annotation_text="0.5 = indistinguishable", annotation_position="bottom right")
    fig.update_layout(template="plotly_white", title="Detection AUC per family (lower is better)",
                      xaxis_title="family", yaxis_title="detection AUC", yaxis=dict(range=[0, 1]), height=360)
    return fig


def save_load(cohort, gen) -> None:
    """Download the session's generator; load one from a zip (it becomes the session's generator)."""
    c1, c2 = st.columns(2)
    with c1:
        if gen is None:
            st.info("Train a generator (or load one) to download it.")
        else:
            data, card = generator_download(cohort, gen)
            meta = ss["generator_meta"]
            st.download_button("Download generator", data=data, file_name=f"generator-{meta[1]}-seed{meta[2]}.zip",
                               mime="application/zip", on_click="ignore", icon=":material/download:",
                               help="A zip of the directory `insilico train` writes: model.pkl and model_card.json "
                                    "(family, hyperparameters, seed, data SHA-256, schema, package versions, "
                                    "metrics of the last evaluation)")
            with st.expander("Model card (JSON)"):
                st.code(json.dumps(card, indent=2), language="json")
    with c2:
        st.file_uploader("Load generator (.zip)", type=["zip"], key="w_generator_upload", on_change=load_upload,
                         args=(cohort, "w_generator_upload"), max_upload_size=500)
        st.caption(":warning: Loading runs the code saved in the file (pickle): load only generators from "
                   "sources you trust. The file is checked (hashes, package versions, column roles) first.")
        if ss.get("load_error") is not None:
            show_error(ss["load_error"])
        elif ss.get("generator_card") is not None and ss.get("w_generator_upload") is not None:
            card = ss["generator_card"]
            if card.get("training_data_sha256") != cohort.sha256:
                st.warning("Loaded, but it was trained on other data (its data SHA-256 differs from this cohort's); "
                           "a scenario file from this session re-trains on this cohort.")
            with st.expander("Loaded model card (JSON)"):
                st.code(json.dumps({k: v for k, v in card.items() if k != "uploaded_file"}, indent=2),
                        language="json")
