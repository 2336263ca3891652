"""The words of the review-board report: section headings, one line per analysis, labels of the result tables,
and the limitations generated from a report's inputs.

Nothing here renders or computes a statistic; :mod:`analysis.report_context` decides what applies and calls
:func:`limitations` with the facts it found.
"""

from __future__ import annotations

import math

__all__ = ["SECTIONS", "ANALYSIS_DESCRIPTIONS", "analysis_description", "OPERATING_LABELS", "LOOK_LABELS",
           "FIGURE_TITLES", "SWEEP_COMMAND", "SYNTHETIC_TYPE1_SOURCE", "mc_half_width", "limitations"]

#: (section id, heading) in report order; the ids are stable anchors (tests, the browser test, links)
SECTIONS = (
    ("executive-summary", "Executive summary"),
    ("provenance", "Data provenance"),
    ("generator", "Generator"),
    ("design", "Design"),
    ("operating", "Operating characteristics"),
    ("sensitivity", "Sensitivity grid"),
    ("example-trial", "Outcome of one example trial"),
    ("limitations", "Limitations"),
    ("reproducibility", "Reproducibility"),
)

#: one line per analysis: every name of :data:`analysis.estimators.BATCHED` (a test checks it), and the
#: estimators not (yet) selectable as a design's analysis
ANALYSIS_DESCRIPTIONS = {
    "slope": "per-patient least-squares slope of the outcome over the visits, compared between arms with a "
             "Welch two-sample t-test",
    "ancova": "change from baseline at the last visit, ANCOVA on arm adjusted for the baseline value "
              "(completers)",
    "mmrm": "mixed model for repeated measures of the change from baseline (visit x arm, visit x baseline, "
            "unstructured covariance, REML), treatment contrast at the last visit with Satterthwaite degrees of "
            "freedom (valid under missing at random)",
    "random_slope": "linear mixed model with correlated random intercept and slope per patient (REML), "
                    "difference in mean slope between arms with Satterthwaite degrees of freedom",
    "logrank": "log-rank test of the time-to-event outcome, with the Peto (score) hazard ratio",
    "cox": "Cox proportional-hazards model on arm (Efron ties), Wald test of the hazard ratio",
    "ttest": "Welch two-sample t-test of the outcome",
    "proportions": "two-sample z-test of proportions (pooled variance), risk difference with a Wald interval",
    "risk_difference": "risk difference with the Newcombe hybrid score interval, pooled z-test",
    "risk_ratio": "risk ratio with the log (Katz) interval, Wald z-test on the log risk ratio",
    "logistic": "logistic regression of the outcome on arm, Wald test of the odds ratio",
    # estimators available to analyses of real or simulated trials, not (yet) a design's analysis
    "ancova_adjusted": "ANCOVA of the outcome on arm and baseline covariates (complete cases)",
    "cox_adjusted": "Cox model on arm and baseline covariates, optionally stratified, Wald test",
    "logrank_stratified": "stratified log-rank test, with the stratified Peto hazard ratio",
    "rmst": "difference in restricted mean survival time up to a horizon (Kaplan-Meier), z-test",
    "cafs": "Combined Assessment of Function and Survival (ranks on survival, then on functional change), "
            "Finkelstein-Schoenfeld test",
    "procova": "PROCOVA: ANCOVA adjusted for a prognostic score trained on historical controls",
}

#: labels of the rows of the (transposed) operating-characteristics table; other columns keep their name
OPERATING_LABELS = {
    "power": "power (assumed effect)",
    "analytic_power": "closed-form power (cross-check)",
    "type1_error": "type I error (no effect)",
    "mean_estimate": "mean estimate",
    "estimand": "estimand (the analysis on one very large trial)",
    "estimand_se": "estimand, Monte Carlo error",
    "bias": "bias (mean estimate - estimand)",
    "bias_se": "bias, Monte Carlo standard error",
    "coverage": "CI coverage of the estimand",
    "coverage_null": "CI coverage of no effect, under the null",
    "expected_n": "expected patients at the analysis",
    "expected_n_null": "expected patients, under the null",
    "expected_events": "expected events at the analysis",
    "expected_events_null": "expected events, under the null",
    "expected_months": "expected duration (months)",
    "expected_months_null": "expected duration, under the null (months)",
    "power_all_arms": "power, every treatment significant",
    "power_randomized_only": "power, randomized patients only",
    "type1_randomized_only": "type I error, randomized patients only",
    "bias_randomized_only": "bias, randomized patients only",
    "bias_randomized_only_se": "bias, randomized only, MC standard error",
    "bias_null": "bias under the null",
    "bias_null_randomized_only": "bias under the null, randomized only",
}

#: labels of the rows of a (transposed) group-sequential look table
LOOK_LABELS = {
    "information_fraction": "information fraction",
    "efficacy_z": "efficacy boundary (Z)",
    "futility_z": "futility boundary (Z)",
    "nominal_p": "nominal p-value at the boundary",
    "alpha_spent": "cumulative alpha spent",
    "beta_spent": "cumulative beta spent",
    "p_efficacy": "P(stop for efficacy), assumed effect",
    "p_futility": "P(stop for futility), assumed effect",
    "cumulative_efficacy": "cumulative P(efficacy), assumed effect",
    "p_efficacy_null": "P(stop for efficacy), no effect",
    "p_futility_null": "P(stop for futility), no effect",
    "cumulative_efficacy_null": "cumulative P(efficacy), no effect",
    "enrolled": "mean patients enrolled",
    "month": "mean calendar month",
    "events": "mean events observed",
}

#: titles of the figures the report knows by name (others are titled from their key)
FIGURE_TITLES = {
    "power_curve": "Power curve", "marginals": "Baseline covariates: real vs synthetic",
    "trajectory": "Outcome trajectories: real vs synthetic", "km": "Kaplan-Meier: real vs synthetic",
    "eval_marginals": "Marginal distance per covariate (synthetic vs training)",
    "eval_associations": "Association matrices (real, synthetic, difference)",
    "eval_trajectory": "Per-visit mean and SD (held-out vs synthetic)", "eval_slopes": "Individual slopes",
    "eval_km": "Kaplan-Meier (held-out vs synthetic)", "eval_dcr": "Distance to the closest training record",
    "eval_utility": "Utility: train on synthetic, test on real",
}
#: the command that runs a sensitivity grid (said when a report has none)
SWEEP_COMMAND = "insilico sweep SCENARIO.toml --grid GRID.toml --out DIR"
#: analysing synthetic data as if it were real inflates the type I error
SYNTHETIC_TYPE1_SOURCE = "arXiv 2312.07837"


def analysis_description(name: str) -> str:
    """The one-line description of analysis ``name`` (the name itself for an unknown one)."""
    return ANALYSIS_DESCRIPTIONS.get(name, f"{name} (no description registered)")


def mc_half_width(rate: float, replicates: int) -> float:
    """Half-width of the normal-approximation 95 % Monte Carlo interval of a rejection rate ``rate`` estimated
    from ``replicates`` trials: ``1.96 sqrt(rate (1 - rate) / replicates)``."""
    if replicates <= 0 or not math.isfinite(rate):
        return float("nan")
    return 1.96 * math.sqrt(max(rate * (1 - rate), 0.0) / replicates)


def limitations(*, cohort_name: str, simulated: bool | None, generator_name: str, evaluated: bool,
                missed_targets: list[str], type1: dict, alpha: float, replicates: int, hybrid: str | None,
                has_looks: bool, eligibility: str | None, has_sweep: bool, outcome_type: str) -> list[dict]:
    """The limitations of one report, each ``{"title": .., "text": ..}`` (plain text; the template escapes it).

    ``type1``: ``{"rate", "lo", "hi", "inflated"}`` of the pooled null replicates; ``hybrid``: the hybrid
    control described in words, or ``None``; ``eligibility``: the design's criteria in words, or ``None``.
    """
    out = []
    if simulated:
        where = (f"The historical cohort {cohort_name!r} was itself simulated from published summary figures, "
                 "not patient data: the numbers describe the design under that model only.")
    elif simulated is False:
        where = (f"The generator learned from the patient-level cohort {cohort_name!r}; the future trial's "
                 "population may differ from it (era, standard of care, eligibility).")
    else:
        where = (f"The generator learned from the supplied cohort {cohort_name!r}, whose origin this report "
                 "cannot verify.")
    out.append({"title": "Simulated trials, not patients",
                "text": "Every trial in this report is simulated from the fitted generator "
                        f"{generator_name!r}; operating characteristics are only as good as the generator's "
                        f"resemblance to the future trial population. {where}"})
    if not evaluated:
        out.append({"title": "Generator fidelity not assessed here",
                    "text": "No held-out evaluation of the generator (fidelity, utility, privacy) was supplied "
                            "with this run; see the Generator section for the real-vs-synthetic figures."})
    elif missed_targets:
        out.append({"title": "Generator fidelity targets missed",
                    "text": f"{len(missed_targets)} evaluation target(s) were missed on held-out patients: "
                            + "; ".join(missed_targets) + ". Features the generator reproduces poorly can bias "
                            "power and type I error in either direction."})
    if type1.get("inflated"):
        out.append({"title": "Type I error inflated",
                    "text": f"The simulated type I error {type1['rate']:.4f} (95 % MC interval {type1['lo']:.4f} - "
                            f"{type1['hi']:.4f}) exceeds alpha = {alpha:g} beyond Monte Carlo error: the analysis "
                            "does not keep its level on data from this generator, and power is overstated."})
    hw80, hw_alpha = mc_half_width(0.8, replicates), mc_half_width(alpha, replicates)
    out.append({"title": "Monte Carlo precision",
                "text": f"With {replicates:,} replicates per N and scenario, a power near 80 % is known to about "
                        f"+-{hw80:.3f} and a type I error near {alpha:g} to about +-{hw_alpha:.4f} (95 % Monte "
                        "Carlo half-widths); differences between sizes smaller than that are noise. More "
                        "replicates narrow them as 1/sqrt(replicates)."})
    out.append({"title": "Synthetic data are not evidence",
                "text": "Analysing synthetic patients as if they were real inflates the type I error "
                        f"({SYNTHETIC_TYPE1_SOURCE}). Here synthetic patients only simulate how the design behaves; "
                        "the null scenario is always simulated beside the assumed effect to show the error rate "
                        "the analysis actually has on generated data. No efficacy claim can rest on them."})
    if hybrid:
        out.append({"title": "Hybrid control and drift",
                    "text": f"Synthetic controls enter the analysis ({hybrid}). If today's patients differ from "
                            "the historical ones (drift), the hybrid comparison is biased and its type I error "
                            "grows; the randomized-only comparison is reported beside it. Simulate plausible "
                            "drifts before relying on the hybrid design."})
    if has_looks:
        out.append({"title": "Estimates after early stopping",
                    "text": "Estimates, intervals and p-values of a group-sequential trial are those of the look "
                            "where it stopped, without adjustment for the stopping rule: their bias and coverage "
                            "are what a naive analysis would show."})
    if eligibility:
        out.append({"title": "Eligibility and enrichment",
                    "text": f"The trial draws patients as the generator would produce them, then applies "
                            f"'{eligibility}'. Covariate regions rare in the historical cohort are extrapolated "
                            "by the generator."})
    if not has_sweep:
        out.append({"title": "No sensitivity grid",
                    "text": "Results hold at the assumed effect, dropout and analysis only; no grid over these "
                            f"nuisance parameters was run (`{SWEEP_COMMAND}`)."})
    model = {"longitudinal": "trajectories follow the generator's outcome model; the effect slows each patient's "
                             "decline by a fixed fraction",
             "tte": "event times follow the generator's survival model; the effect multiplies the hazard",
             "continuous": "outcomes follow the generator's outcome model; the effect shifts the mean",
             "binary": "outcomes follow the generator's outcome model; the effect changes the odds or risk"}
    out.append({"title": "What the model does not capture",
                "text": f"In these simulations {model.get(outcome_type, 'outcomes follow the generator')}, "
                        "dropout follows the stated hazard, and every patient adheres to the assigned arm. Site "
                        "effects, protocol deviations, intercurrent events, rescue medication, measurement drift "
                        "and covariates the cohort does not record are not modelled."})
    return out
