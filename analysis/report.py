"""The self-contained HTML report of a simulation study.

:func:`build_html_report` renders ``templates/report.html.j2`` (jinja2, autoescaped) into ONE HTML string
that works offline: plotly.js is inlined once in the head, and each figure is a ``<div>`` produced by
``fig.to_html(full_html=False, include_plotlyjs=False)``. Sections follow what a review board expects of a
simulation report (FDA adaptive-design guidance 2019, ACE item 24b): design, assumptions, data provenance,
results with Monte Carlo precision and the simulated type I error, generator validation, reproducibility
(seed, replicates, scenario file verbatim, software versions, input hash).
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
from markupsafe import Markup

from analysis.report_trial import example_trial_context
from cohorts.provenance import PACKAGES
from cohorts.provenance import package_versions as _package_versions

__all__ = ["build_html_report", "package_versions", "REPORT_PACKAGES", "ANALYSIS_DESCRIPTIONS"]

#: distributions whose versions the report lists
REPORT_PACKAGES = PACKAGES

#: one sentence per analysis method, for the design section
ANALYSIS_DESCRIPTIONS = {
    "slope": "per-patient least-squares slope of the outcome over the visits, compared between arms with a "
             "Welch two-sample t-test",
    "ancova": "change from baseline at the last visit, ANCOVA on arm adjusted for the baseline value "
              "(completers)",
    "logrank": "log-rank test of the time-to-event outcome",
    "cox": "Cox proportional-hazards model on arm (Efron ties), Wald test",
    "ttest": "Welch two-sample t-test of the outcome",
    "proportions": "two-sample z-test of proportions (pooled variance)",
}

_TEMPLATES = Path(__file__).parent / "templates"
_FIGURE_TITLES = {
    "power_curve": "Power curve",
    "marginals": "Baseline covariates: real vs synthetic",
    "trajectory": "Outcome trajectories: real vs synthetic",
    "km": "Kaplan-Meier: real vs synthetic",
}


def package_versions() -> dict[str, str]:
    """Versions of python and the scientific stack; ``"not installed"`` for a missing distribution."""
    return _package_versions(REPORT_PACKAGES)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2", "html.j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x, d=1: "n/a" if x is None or not np.isfinite(x) else f"{100 * float(x):.{d}f} %"
    env.filters["num"] = lambda x, d=3: "n/a" if x is None or not np.isfinite(x) else f"{float(x):.{d}f}"
    return env


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs
    # a literal "</script>" inside the bundle would end the tag early; escape it the way browsers accept
    return get_plotlyjs().replace("</script>", "<\\/script>")


def _split_scenario(scenario_or_design):
    """(design, scenario or None, scenario TOML or None)."""
    if hasattr(scenario_or_design, "design") and hasattr(scenario_or_design, "cohort"):
        scenario = scenario_or_design
        toml = getattr(scenario, "text", None)
        if not toml:
            try:
                from trials.scenario import scenario_to_toml
                toml = scenario_to_toml(scenario)
            except Exception:  # noqa: BLE001 - the report must still render without the TOML
                toml = None
        return scenario.design, scenario, toml
    return scenario_or_design, None, None


def _is_simulated(cohort) -> bool | None:
    """Whether the cohort is a simulated built-in (True), a real/uploaded one (False) or unknown (None)."""
    try:
        from cohorts.builtin import available_builtins
        for info in available_builtins():
            if info.name == cohort.name:
                return bool(info.simulated)
    except Exception:  # noqa: BLE001 - registry absent or failing: fall back to the description
        pass
    text = f"{cohort.description} {cohort.source}".lower()
    if "not patient data" in text or "simulated" in text:
        return True
    return None


def conduct_rows(design) -> list[dict]:
    """How the trial is run, one labelled line each (:meth:`~trials.design.TrialDesign.conduct_summary`)."""
    return [{"label": k, "text": v} for k, v in design.conduct_summary()]


def _design_rows(design, settings) -> dict:
    ep = design.endpoint
    frac = design.treated_fraction
    arms = [{"name": a.name, "allocation": f"{a.allocation:g}",
             "role": "control" if i == 0 else "treatment",
             "effect": a.effect.describe() if a.effect is not None and not a.effect.is_null else "none"}
            for i, a in enumerate(design.arms)]
    per_arm = []
    for n in settings.n_total:
        if design.n_treatments == 1:
            nt = min(max(int(round(n * frac)), 1), n - 1)
            sizes = (n - nt, nt)
        else:
            from trials.enrollment import arm_sizes
            sizes = tuple(int(x) for x in arm_sizes(n, design.allocation_shares))
        per_arm.append({"n_total": n, "text": " / ".join(f"{k} {a.name}" for k, a in zip(sizes, design.arms))})
    return {
        "arms": arms,
        "allocation": ":".join(f"{a.allocation:g}" for a in design.arms)
                      + " (" + ":".join(a.name for a in design.arms) + ")",
        "conduct": conduct_rows(design),
        "per_arm": per_arm,
        "analysis": ep.analysis,
        "analysis_text": ANALYSIS_DESCRIPTIONS.get(ep.analysis, ep.analysis),
        "outcome_type": ep.outcome_type,
        "visits": ", ".join(f"{v:g}" for v in ep.visits_months) if ep.visits_months else None,
        "followup": None if ep.followup is None else f"{ep.followup:g}",
        "dropout": design.dropout.per_month,
        "alpha": settings.alpha,
        "replicates": settings.replicates,
    }


def _frame_html(frame) -> Markup:
    return Markup(frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0,
                                classes="table"))


def _operating_html(result) -> Markup | None:
    """Bias, coverage, expected size / events / duration, analytic power and the design-specific columns."""
    if getattr(result, "operating", None) is None:
        return None
    frame = result.table().drop(columns=["power_ci_low", "power_ci_high", "replicates"], errors="ignore")
    return _frame_html(frame)


def _figure_html(figures: dict) -> list[dict]:
    out = []
    for key, fig in figures.items():
        if fig is None:
            continue
        div = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False},
                          default_height="480px")
        out.append({"key": key, "title": _FIGURE_TITLES.get(key, key.replace("_", " ")), "html": Markup(div)})
    return out


def _default_figures(cohort, generator, result) -> dict:
    from analysis.plots import power_curve_figure, validation_figures
    figs = {"power_curve": power_curve_figure(result)}
    if generator is not None and getattr(generator, "is_fitted", True):
        figs.update(validation_figures(cohort, generator, seed=int(result.seed or 0)))
    return figs


def build_html_report(*, title: str, cohort, generator, scenario_or_design, result, figures: dict | None = None,
                      created: datetime | None = None) -> str:
    """One self-contained HTML document describing a simulation study and its results.

    ``scenario_or_design``: a :class:`~trials.scenario.Scenario` (its TOML is then reproduced verbatim) or a
    bare :class:`~trials.design.TrialDesign`. ``figures``: name -> plotly figure; ``"power_curve"`` goes in the
    results section, every other figure in the generator-validation section. When ``None``, the power curve and
    the validation figures (synthetic sample drawn with ``result.seed``) are built here.
    """
    design, scenario, scenario_toml = _split_scenario(scenario_or_design)
    settings = result.settings
    created = created or datetime.now(timezone.utc)
    if figures is None:
        figures = _default_figures(cohort, generator, result)
    figures = dict(figures)
    power_fig = figures.pop("power_curve", None)

    reps = int(settings.replicates)
    rows = []
    for i, n in enumerate(result.n_total):
        rows.append({"n_total": int(n), "power": float(result.power[i]),
                     "lo": float(result.power_ci_low[i]), "hi": float(result.power_ci_high[i]),
                     "type1": float(result.type1_by_n[i])})
    n_null = reps * len(result.n_total)
    type1 = {"rate": float(result.type1_error), "lo": float(result.type1_ci_low), "hi": float(result.type1_ci_high),
             "replicates": n_null, "rejections": int(round(float(result.type1_error) * n_null)),
             "inflated": float(result.type1_ci_low) > float(settings.alpha)}

    gen_params = {}
    if generator is not None and hasattr(generator, "get_params"):
        gen_params = {k: repr(v) for k, v in generator.get_params().items()}
    generator_info = {
        "name": getattr(generator, "name", type(generator).__name__) if generator is not None else "n/a",
        "cls": type(generator).__name__ if generator is not None else "n/a",
        "description": getattr(generator, "description", "") or "",
        "params": gen_params,
        "n_train": getattr(generator, "n_train_", None),
    }
    schema = cohort.schema
    cohort_info = {
        "name": cohort.name, "source": cohort.source or "n/a", "citation": cohort.citation,
        "description": cohort.description, "sha256": cohort.sha256, "n_patients": cohort.n_patients,
        "n_rows": len(cohort.data), "simulated": _is_simulated(cohort),
        "outcome_type": schema.outcome.type, "outcome_columns": ", ".join(schema.outcome.columns),
        "unit": schema.outcome.unit, "id": schema.id,
        "numeric": ", ".join(schema.numeric) or "none", "categorical": ", ".join(schema.categorical) or "none",
        "schema_toml": schema.to_toml(),
    }
    effect = design.effect
    seed = result.seed if result.seed is not None else getattr(scenario, "seed", None)
    ctx = {
        "title": title,
        "created": created.isoformat(timespec="seconds"),
        "plotlyjs": Markup(_plotlyjs()),
        "design": _design_rows(design, settings),
        "effect": {"kind": effect.kind, "value": f"{effect.value:g}", "text": effect.describe()},
        "generator": generator_info,
        "cohort": cohort_info,
        "rows": rows,
        "type1": type1,
        "alpha": float(settings.alpha),
        "replicates": reps,
        "elapsed_s": float(getattr(result, "elapsed_s", 0.0) or 0.0),
        "power_fig": _figure_html({"power_curve": power_fig})[0] if power_fig is not None else None,
        "validation_figs": _figure_html(figures),
        "seed": seed,
        "scenario_toml": scenario_toml,
        "scenario_title": getattr(scenario, "title", None),
        "versions": package_versions(),
        "platform": f"{platform.platform()} ({platform.machine()}), {sys.implementation.name}",
        "result_json": json.dumps(result.to_json_dict(), indent=2),
        "trial": example_trial_context(generator, design, int(max(result.n_total)), seed, float(settings.alpha)),
        "operating": _operating_html(result),
        "look_tables": [] if getattr(result, "looks", None) is None else [
            {"n_total": int(n), "html": _frame_html(t)} for n, t in zip(result.n_total, result.looks)],
    }
    return _env().get_template("report.html.j2").render(**ctx)
