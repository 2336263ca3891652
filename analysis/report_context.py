"""The template context of the review-board report, built from one :class:`~analysis.report_inputs.ReportInputs`.

:func:`build_context` gathers every section's numbers and tables (sections in :data:`analysis.report_text.SECTIONS`
order); figures go through the ``figure`` callable it is given (:class:`analysis.report.FigureMarkup`: an
interactive plotly ``<div>`` each for the HTML report, or a placeholder that :func:`analysis.report_pdf.render_pdf`
replaces by the figure's SVG). Tables are pandas HTML (cells escaped).

The only simulation here is the example trial (:func:`example_trial`): one virtual trial drawn from the generator
with the simulation stream of the run's seed, as :func:`analysis.report_trial.example_trial_context` draws it.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from markupsafe import Markup

from analysis import report_text as text

__all__ = ["frame_html", "recommended_n", "example_trial", "build_context"]

#: what turns a plotly figure (or None) into report markup (see :class:`analysis.report.FigureMarkup`)
Figure = Callable[..., Markup | None]

_VALIDATION_KEYS = ("marginals", "trajectory", "km")
#: figures this module places itself (any other key of ``ReportInputs.figures`` shows with the validation figures)
_BUILT_HERE = ("power_curve", "boundaries", "stopping")
#: wide transposed tables are split into blocks of this many columns (N values or looks)
MAX_TABLE_COLUMNS = 8
#: at most this many sweep cells are listed (the heatmaps show the grid)
MAX_SWEEP_ROWS = 60


def _fmt(v, digits: int = 4) -> str:
    if v is None or isinstance(v, (bool, np.bool_)):
        return "" if v is None else str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if not np.isfinite(x) else f"{x:.{digits}g}"


def frame_html(frame: pd.DataFrame, *, digits: int = 4, classes: str = "table") -> Markup:
    """An escaped HTML table of ``frame`` (no index; numbers to ``digits`` significant digits)."""
    return Markup(frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.{digits}g}", border=0,
                                classes=classes))


def _transposed(frame: pd.DataFrame, heads: list[str], labels: dict, *, skip=()) -> list[Markup]:
    """``frame`` (one row per N or look) as quantity rows x ``heads`` columns, in blocks of MAX_TABLE_COLUMNS."""
    rows = [c for c in frame.columns if c not in skip]
    out = []
    for start in range(0, len(heads), MAX_TABLE_COLUMNS):
        block = slice(start, start + MAX_TABLE_COLUMNS)
        t = pd.DataFrame({"quantity": [labels.get(c, c.replace("_", " ")) for c in rows],
                          **{h: [_fmt(frame[c].iloc[j]) for c in rows]
                             for j, h in list(enumerate(heads))[block]}})
        out.append(frame_html(t, classes="table transposed"))
    return out


def _is_simulated(cohort) -> bool | None:
    """Whether the cohort is a simulated built-in (True), a real/uploaded one (False) or unknown (None)."""
    from cohorts.builtin import available_builtins
    for info in available_builtins():
        if info.name == cohort.name:
            return bool(info.simulated)
    textual = f"{cohort.description} {cohort.source}".lower()
    return True if "not patient data" in textual or "simulated" in textual else None


def recommended_n(inputs) -> dict:
    """The executive summary's recommended total N: the sample-size search's answer when the inputs hold one,
    else the smallest simulated N whose power reaches ``inputs.target_power`` (``source``: ``"search"``,
    ``"curve"``, or ``"none"`` with the best power reached)."""
    r, ss = inputs.result, inputs.sample_size or {}
    n_total = [int(n) for n in r.n_total]
    lo_t1, hi_t1 = r.type1_by_n_ci()
    if ss.get("n_recommended") is not None:
        n = int(ss["n_recommended"])
        target = ss.get("target_power", ss.get("target", inputs.target_power))
        return {"source": "search", "n": n, "target": float(target),
                "power": ss.get("power"), "lo": ss.get("power_ci_low"), "hi": ss.get("power_ci_high"),
                "status": ss.get("status"), "type1": ss.get("type1_error"), "type1_lo": ss.get("type1_error_ci_low"),
                "type1_hi": ss.get("type1_error_ci_high"), "type1_replicates": ss.get("type1_replicates"),
                "index": n_total.index(n) if n in n_total else None}
    target = float(inputs.target_power)
    for i in sorted(range(len(n_total)), key=lambda k: n_total[k]):
        if float(r.power[i]) >= target:
            return {"source": "curve", "n": n_total[i], "target": target, "power": float(r.power[i]),
                    "lo": float(r.power_ci_low[i]), "hi": float(r.power_ci_high[i]), "status": ss.get("status"),
                    "type1": float(r.type1_by_n[i]), "type1_lo": float(lo_t1[i]), "type1_hi": float(hi_t1[i]),
                    "type1_replicates": int(r.settings.replicates), "index": i}
    best = int(np.nanargmax(r.power)) if np.isfinite(np.asarray(r.power, float)).any() else 0
    return {"source": "none", "n": None, "target": target, "best_n": n_total[best],
            "best_power": float(r.power[best]), "status": ss.get("status"), "index": None}


def _expected(result, index) -> list[dict]:
    """Expected patients, events and duration at one N, under the effect and under the null (when simulated)."""
    if index is None or getattr(result, "operating", None) is None:
        return []
    row = result.operating.iloc[index]
    out = []
    for key, label in (("expected_n", "patients"), ("expected_events", "events"), ("expected_months", "months")):
        if key in row.index and np.isfinite(row[key]):
            null = row.get(f"{key}_null", np.nan)
            out.append({"label": label, "value": float(row[key]), "null": float(null) if np.isfinite(null) else None})
    return out


def _type1(result) -> dict:
    n_null = int(result.settings.replicates) * len(result.n_total)
    alpha = float(result.settings.alpha)
    return {"rate": float(result.type1_error), "lo": float(result.type1_ci_low), "hi": float(result.type1_ci_high),
            "replicates": n_null, "rejections": int(round(float(result.type1_error) * n_null)),
            "inflated": float(result.type1_ci_low) > alpha}


def _cohort(inputs) -> dict:
    cohort, design, schema = inputs.cohort, inputs.design, inputs.cohort.schema
    elig = getattr(design, "eligibility", None)
    manifest_cohort = (inputs.manifest or {}).get("cohort") or {}
    return {
        "name": cohort.name, "source": cohort.source or "n/a", "citation": cohort.citation,
        "description": cohort.description, "sha256": cohort.sha256, "n_patients": cohort.n_patients,
        "n_rows": len(cohort.data), "simulated": _is_simulated(cohort), "outcome_type": schema.outcome.type,
        "outcome_columns": ", ".join(schema.outcome.columns), "unit": schema.outcome.unit, "id": schema.id,
        "numeric": ", ".join(schema.numeric) or "none", "categorical": ", ".join(schema.categorical) or "none",
        "schema_toml": schema.to_toml(),
        "criteria": getattr(elig, "criteria", None), "enrich": list(getattr(elig, "enrich", ()) or ()),
        "manifest_sha256": manifest_cohort.get("sha256"),
    }


def _evaluation(frame: pd.DataFrame | None) -> tuple[list[dict], list[str]]:
    """The evaluation summary grouped by section with meets-target marks, and the names of missed targets."""
    if frame is None or len(frame) == 0:
        return [], []
    groups, missed = [], []
    for section, part in frame.groupby("section", sort=False):
        rows = []
        for r in part.itertuples(index=False):
            target = None if pd.isna(r.target) else float(r.target)
            sign = {"lower": "<= ", "higher": ">= "}.get(r.better if isinstance(r.better, str) else "", "")
            meets = None if pd.isna(r.meets_target) else bool(r.meets_target)
            if meets is False:
                missed.append(f"{r.name} = {_fmt(r.value, 3)} (target {sign}{_fmt(target, 3)})")
            rows.append({"name": r.name, "value": _fmt(r.value, 4),
                         "better": r.better if isinstance(r.better, str) else "",
                         "target": "" if target is None else sign + _fmt(target, 3),
                         "mark": {True: "meets", False: "misses", None: "no target"}[meets]})
        groups.append({"section": str(section), "rows": rows, "met": sum(x["mark"] == "meets" for x in rows),
                       "missed": sum(x["mark"] == "misses" for x in rows)})
    return groups, missed


def _generator(inputs, figures: dict, figure: Figure) -> dict:
    gen, card = inputs.generator, inputs.model_card or {}
    params = gen.get_params() if gen is not None and hasattr(gen, "get_params") else card.get("hyperparameters") or {}
    privacy = card.get("privacy") or getattr(gen, "privacy_", None) or {}
    card_rows = [(label, card.get(key)) for key, label in (
        ("seed", "Training seed"), ("training_data_sha256", "Training-data SHA-256"),
        ("n_train_patients", "Training patients"), ("training_seconds", "Training time (s)"),
        ("model_sha256", "Model file SHA-256"), ("card_sha256", "Model card SHA-256"), ("created", "Trained"))
        if card.get(key) is not None]
    if isinstance(privacy, dict) and privacy.get("epsilon") is not None:
        card_rows.append(("Differential privacy", f"epsilon = {_fmt(privacy.get('epsilon'), 4)}, delta = "
                          f"{_fmt(privacy.get('delta'), 3)} ({privacy.get('mechanism', 'DP-SGD')})"))
    groups, missed = _evaluation(inputs.evaluation)
    keyed = lambda keys: [{"key": k, "title": text.FIGURE_TITLES.get(k, k.replace("_", " ")),  # noqa: E731
                           "html": figure(figures[k])} for k in keys if figures.get(k) is not None]
    return {
        "name": getattr(gen, "name", None) or card.get("generator") or "n/a",
        "cls": type(gen).__name__ if gen is not None else card.get("class", "n/a"),
        "description": getattr(gen, "description", "") or card.get("description") or "",
        "params": {k: repr(v) for k, v in params.items()},
        "n_train": getattr(gen, "n_train_", None) or card.get("n_train_patients"),
        "card": card_rows, "fit_notes": list(card.get("fit_notes") or []),
        "evaluation": groups, "missed": missed, "split": inputs.evaluation_split or {},
        "eval_figs": keyed([k for k in figures if k.startswith("eval_")]),
        "validation_figs": keyed([k for k in figures
                                  if k not in _BUILT_HERE and not k.startswith(("eval_", "sweep_"))]),
    }


def _arm_sizes(design, n: int) -> tuple[int, ...]:
    """Patients per arm at total ``n``, as the simulation assigns them (:mod:`trials.enrollment`)."""
    if design.n_treatments == 1:
        nt = min(max(int(round(n * design.treated_fraction)), 1), n - 1)
        return n - nt, nt
    from trials.enrollment import arm_sizes
    return tuple(int(x) for x in arm_sizes(n, design.allocation_shares))


def _design(inputs, figure: Figure) -> dict:
    design, result, settings = inputs.design, inputs.result, inputs.result.settings
    ep, unit = design.endpoint, inputs.cohort.schema.outcome.unit
    hazards = design.dropout_hazards()
    arms = [{"name": a.name, "allocation": f"{a.allocation:g}", "role": "control" if i == 0 else "treatment",
             "effect": "none (control)" if i == 0 else design.effects[i - 1].describe(unit),
             "dropout": 1 - float(np.exp(-hazards[i]))} for i, a in enumerate(design.arms)]
    per_arm = [{"n_total": int(n), "text": " / ".join(f"{k} {a.name}" for k, a in zip(_arm_sizes(design, int(n)),
                                                                                      design.arms))}
               for n in settings.n_total]
    analyses = [ep.analysis]
    if inputs.sweep is not None and "analysis" in inputs.sweep.columns:
        analyses += [a for a in sorted(inputs.sweep["analysis"].unique()) if a != ep.analysis]
    bounds_fig = None
    if getattr(result, "looks", None):
        from analysis.conduct_figures import boundaries_figure
        bounds_fig = figure(boundaries_figure(result.looks[0], sided=getattr(design.looks, "sided", None)))
    effect = design.effect
    return {
        "arms": arms, "per_arm": per_arm, "conduct": [{"label": k, "text": v} for k, v in design.conduct_summary()],
        "allocation": ":".join(f"{a.allocation:g}" for a in design.arms)
                      + " (" + ":".join(a.name for a in design.arms) + ")",
        "analysis": ep.analysis, "analysis_text": text.analysis_description(ep.analysis),
        "analyses": [{"name": a, "text": text.analysis_description(a)} for a in analyses],
        "outcome_type": ep.outcome_type, "events": ep.events,
        "visits": ", ".join(f"{v:g}" for v in ep.visits_months) if ep.visits_months else None,
        "followup": None if ep.followup is None else f"{ep.followup:g}",
        "dropout": design.dropout.per_month, "alpha": settings.alpha, "replicates": settings.replicates,
        "effect": {"kind": effect.kind, "value": f"{effect.value:g}", "text": effect.describe(unit)},
        "boundaries_fig": bounds_fig,
    }


def _operating(inputs, figure: Figure, figures: dict, rec: dict) -> dict:
    r = inputs.result
    lo, hi = r.type1_by_n_ci()
    rows = [{"n_total": int(n), "power": float(r.power[i]), "lo": float(r.power_ci_low[i]),
             "hi": float(r.power_ci_high[i]), "type1": float(r.type1_by_n[i]), "type1_lo": float(lo[i]),
             "type1_hi": float(hi[i]), "recommended": rec.get("index") == i} for i, n in enumerate(r.n_total)]
    heads = [f"N = {int(n)}" for n in r.n_total]
    table = r.table()
    looks, stop_fig = [], None
    if getattr(r, "looks", None):
        for n, t in zip(r.n_total, r.looks):
            labels = [f"look {int(k)}" for k in (t["look"] if "look" in t.columns else range(1, len(t) + 1))]
            looks.append({"n_total": int(n), "tables": _transposed(t, labels, text.LOOK_LABELS, skip=("look",))})
        from analysis.conduct_figures import stopping_figure
        k = rec["index"] if rec.get("index") is not None else len(r.looks) - 1
        stop_fig = {"n_total": int(r.n_total[k]), "html": figure(stopping_figure(
            r.looks[k], title=f"Simulated stopping probabilities per look, N = {int(r.n_total[k])}"))}
    R = int(r.settings.replicates)
    return {
        "rows": rows, "type1": _type1(r), "alpha": float(r.settings.alpha), "replicates": R,
        "power_fig": figure(figures.get("power_curve")),
        "tables": _transposed(table, heads, text.OPERATING_LABELS,
                              skip=("n_total", "replicates", "power_ci_low", "power_ci_high")),
        "has_operating": getattr(r, "operating", None) is not None,
        "looks": looks, "stopping_fig": stop_fig,
        "hw80": text.mc_half_width(0.8, R), "hw_alpha": text.mc_half_width(float(r.settings.alpha), R),
    }


def _sweep(inputs, figure: Figure, alpha: float) -> dict | None:
    t = inputs.sweep
    if t is None:
        return None
    from analysis.conduct_figures import sweep_heatmap, sweep_slice
    from analysis.sweep_grid import GRID_AXES
    summary = inputs.sweep_summary or {}
    alpha = float(summary.get("alpha", alpha))
    x, y, where = sweep_slice(t)
    inflated = (t["type1_ci_low"] > alpha).to_numpy()

    def with_ci(value: str, ci: str) -> list[str]:
        return [f"{_fmt(p, 3)} ({_fmt(lo, 3)} - {_fmt(hi, 3)})"
                for p, lo, hi in zip(t[value], t[f"{ci}_ci_low"], t[f"{ci}_ci_high"])]
    compact = pd.DataFrame({"effect": [_fmt(v) for v in t["effect"]], "N": t["n_total"].astype(int),
                            "dropout / month": [_fmt(v) for v in t["dropout_per_month"]], "analysis": t["analysis"],
                            "power (95 % MC)": with_ci("power", "power"),
                            "type I error (95 % MC)": with_ci("type1_error", "type1"),
                            "type I above alpha": np.where(inflated, "yes", "")})
    return {
        "n_cells": len(t), "shown": min(len(t), MAX_SWEEP_ROWS), "alpha": alpha,
        "table": frame_html(compact.head(MAX_SWEEP_ROWS)), "n_inflated": int(inflated.sum()),
        "axes": [{"axis": a, "levels": ", ".join(_fmt(v) for v in sorted(t[a].unique().tolist()))}
                 for a in GRID_AXES if a in t.columns],
        "replicates": summary.get("replicates", t["replicates"].iloc[0] if "replicates" in t.columns else None),
        "seed": summary.get("seed"), "fixed": ", ".join(f"{a} = {_fmt(v)}" for a, v in where.items()),
        "figs": [figure(sweep_heatmap(t, v, x=x, y=y, where=where or None)) for v in ("power", "type1_error")],
    }


def example_trial(inputs, seed, figure: Figure) -> dict | None:
    """The example-trial section (:func:`analysis.report_trial.example_trial_context`), with its figures made by
    ``figure`` so that they can be static."""
    from analysis.report_trial import example_trial_context
    return example_trial_context(inputs.generator, inputs.design, int(max(inputs.result.n_total)), seed,
                                 float(inputs.result.settings.alpha), figure=figure)


def _scenario_toml(inputs) -> str | None:
    if inputs.scenario_toml:
        return inputs.scenario_toml
    s = inputs.scenario
    if s is None or getattr(s, "text", None):
        return getattr(s, "text", None)
    from trials.scenario import scenario_to_toml
    try:
        return scenario_to_toml(s)
    except (AttributeError, TypeError):  # a scenario-like object the writer cannot serialise: show none
        return None


def _reproducibility(inputs, seed, versions: dict) -> dict:
    m, r = inputs.manifest or {}, inputs.result
    gen_m, card = m.get("generator") or {}, inputs.model_card or {}
    src = getattr(inputs.scenario, "source", None) or "SCENARIO.toml"
    command = m.get("command") or (f"insilico power {src} --seed {seed} --replicates {r.settings.replicates} "
                                   "--report report.html" if inputs.scenario is not None else None)
    hashes = [(label, v) for label, v in (
        ("Cohort data SHA-256", (m.get("cohort") or {}).get("sha256") or inputs.cohort.sha256),
        ("Generator fingerprint SHA-256", gen_m.get("fingerprint_sha256")),
        ("Generator model SHA-256", gen_m.get("model_sha256") or card.get("model_sha256"))) if v]
    return {"seed": seed, "replicates": int(r.settings.replicates),
            "elapsed_s": float(m.get("elapsed_s") or getattr(r, "elapsed_s", 0.0) or 0.0), "started": m.get("started"),
            "finished": m.get("finished"), "command": command, "from_manifest": bool(m.get("command")),
            "reproduce": m.get("reproduce"),
            "platform": m.get("platform") or f"{platform.platform()} ({platform.machine()}), "
                                              f"{sys.implementation.name}",
            "versions": m.get("versions") or versions, "versions_from_manifest": bool(m.get("versions")),
            "hashes": hashes, "scenario_toml": _scenario_toml(inputs),
            "result_json": json.dumps(r.to_json_dict(), indent=2)}


def _figures(inputs) -> dict:
    """The inputs' figures plus the ones missing that can be built: the power curve, and the real-vs-synthetic
    validation figures when the generator can sample."""
    from analysis.plots import power_curve_figure, validation_figures
    figs = {k: v for k, v in inputs.figures.items() if v is not None}
    if "power_curve" not in figs:
        figs = {"power_curve": power_curve_figure(inputs.result), **figs}
    gen = inputs.generator
    if (not any(k in figs for k in _VALIDATION_KEYS) and gen is not None and getattr(gen, "is_fitted", False)
            and hasattr(gen, "sample")):
        figs.update(validation_figures(inputs.cohort, gen, seed=int(inputs.result.seed or 0)))
    return figs


def build_context(inputs, figure: Figure, *, versions: dict) -> dict:
    """Everything ``report.html.j2`` shows, for ``inputs`` (``versions``: package -> version of this build)."""
    r, scenario = inputs.result, inputs.scenario
    seed = r.seed if r.seed is not None else getattr(scenario, "seed", None)
    if seed is None:
        seed = (inputs.manifest or {}).get("seed")
    created = inputs.created or datetime.now(timezone.utc)
    figures = _figures(inputs)
    rec = recommended_n(inputs)
    expected_at = rec["index"] if rec.get("index") is not None else int(np.argmax(r.n_total))
    cohort, gen = _cohort(inputs), _generator(inputs, figures, figure)
    design, operating = _design(inputs, figure), _operating(inputs, figure, figures, rec)
    d = inputs.design
    hybrid = None
    if getattr(d, "hybrid", None) is not None:
        drift = "no drift" if d.hybrid.drift is None else f"drift {d.effect.kind} {d.hybrid.drift:g}"
        hybrid = f"{d.hybrid.synthetic_controls} synthetic controls per trial, {drift} assumed"
    limits = text.limitations(
        cohort_name=cohort["name"], simulated=cohort["simulated"], generator_name=gen["name"],
        evaluated=inputs.evaluation is not None, missed_targets=gen["missed"], type1=operating["type1"],
        alpha=operating["alpha"], replicates=operating["replicates"], hybrid=hybrid,
        has_looks=bool(getattr(r, "looks", None)), has_sweep=inputs.sweep is not None,
        eligibility=d.eligibility.describe() if getattr(d, "eligibility", None) is not None else None,
        outcome_type=d.endpoint.outcome_type)
    return {
        "title": inputs.title, "author": inputs.author, "created": created.isoformat(timespec="seconds"),
        "date": created.date().isoformat(), "version": versions.get("insilico-workbench", "unknown"),
        "sections": text.SECTIONS, "seed": seed, "scenario_title": getattr(scenario, "title", None),
        "recommended": rec, "expected_n": int(r.n_total[expected_at]), "expected": _expected(r, expected_at),
        "cohort": cohort, "generator": gen, "design": design, "operating": operating,
        "sweep": _sweep(inputs, figure, operating["alpha"]), "sweep_command": text.SWEEP_COMMAND,
        "trial": example_trial(inputs, seed, figure), "limitations": limits,
        "repro": _reproducibility(inputs, seed, versions), "synthetic_source": text.SYNTHETIC_TYPE1_SOURCE,
    }
