"""Compare generator families on one cohort: each trained on the same training patients and scored against
the same held-out patients (the table behind the ``auto`` family, the app's comparison and the docs)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cohorts.schema import CohortSchema

__all__ = ["compare_families", "score_row", "COMPARISON_COLUMNS"]

#: columns of the comparison table, in order
COMPARISON_COLUMNS = ("family", "detection_auc", "marginal_distance", "association_difference", "outcome_distance",
                      "exact_copy_rate", "membership_auc", "utility_ratio", "training_seconds")


def score_row(name: str, report, seconds: float) -> dict:
    """One row of the comparison table from an :class:`~cohorts.evaluate.EvaluationReport`.

    ``outcome_distance`` is the Kaplan-Meier sup distance (tte), the mean |standardised mean difference| of the
    per-visit means (longitudinal), or the outcome's KS / proportion difference (continuous / binary).
    """
    f, p = report.fidelity, report.privacy
    outcome_distance = np.nan
    if f.km is not None:
        outcome_distance = f.km.sup_distance
    elif f.trajectory is not None:
        outcome_distance = f.trajectory.mean_abs_smd
    elif f.outcome is not None:
        outcome_distance = getattr(f.outcome, "statistic", np.nan)
    return {"family": name, "detection_auc": f.detection_auc,
            "marginal_distance": float(f.marginals["statistic"].mean()) if len(f.marginals) else np.nan,
            "association_difference": f.association_mean_abs_difference,
            "outcome_distance": outcome_distance, "exact_copy_rate": p.exact_copy_rate,
            "membership_auc": p.membership_auc, "utility_ratio": report.utility.ratio,
            "training_seconds": seconds}


def compare_families(train: pd.DataFrame, holdout: pd.DataFrame, schema: CohortSchema, families, *,
                     rng: np.random.Generator, params: dict | None = None,
                     progress: Callable[[float, str], None] | None = None):
    """Fit each family on ``train``, evaluate it against ``holdout``.

    Returns ``(table, generators, reports)``: the comparison table sorted best first (lowest detection AUC,
    then lowest marginal distance), and the fitted generators and evaluation reports by family name. Each
    family gets its own child of ``rng`` (fit stream, evaluation stream), so adding a family does not change
    the others' numbers.
    """
    from cohorts.evaluate import evaluate_generator
    from cohorts.generators.base import get_generator

    families = list(families)
    params = params or {}
    rows, gens, reports = [], {}, {}
    for i, (name, child) in enumerate(zip(families, rng.spawn(len(families)))):
        if progress is not None:
            progress(i / len(families), f"training and evaluating {name}")
        fit_rng, eval_rng = child.spawn(2)
        gen = get_generator(name, **params.get(name, {})).fit(train, schema, rng=fit_rng)
        report = evaluate_generator(gen, train, holdout, schema, rng=eval_rng)
        gens[name], reports[name] = gen, report
        rows.append(score_row(name, report, gen.training_seconds_))
    if progress is not None:
        progress(1.0, "comparison done")
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    table = table.sort_values(["detection_auc", "marginal_distance"], kind="stable", na_position="last")
    return table.reset_index(drop=True), gens, reports
