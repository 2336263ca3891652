"""How many patients eligibility criteria let in, before any simulation: the live acceptance rate of the Design
page, on the historical patients and on patients drawn from the trained generator.

The frame the criteria see is the one simulation uses (:func:`trials.simulate.eligibility_columns`): baseline
covariates, plus for a longitudinal outcome each patient's value at the first visit (e.g. baseline ALSFRS-R).
A patient with a missing value in a criterion is not eligible (as in the simulation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohorts.criteria import parse_criteria
from trials.simulate import eligibility_columns

__all__ = ["EligibilityPreview", "cohort_eligibility_frame", "synthetic_eligibility_frame", "preview_eligibility"]


@dataclass(frozen=True)
class EligibilityPreview:
    """``n_eligible`` of ``n`` patients of ``source`` meet the criteria; ``clause_rates``: each top-level ``and``
    clause with its pass rate, most restrictive first; ``hints``: text values that never occur (likely typos)."""

    source: str
    n: int
    n_eligible: int
    clause_rates: tuple[tuple[str, float], ...]
    hints: tuple[str, ...]

    @property
    def rate(self) -> float:
        return self.n_eligible / self.n if self.n else float("nan")

    def sentence(self) -> str:
        return f"{self.rate:.1%} of {self.n:,} {self.source} ({self.n_eligible:,}) meet the criteria"


def cohort_eligibility_frame(cohort) -> pd.DataFrame:
    """One row per historical patient with the columns criteria see (the first visit's outcome value for a
    longitudinal cohort)."""
    schema = cohort.schema
    o = schema.outcome
    data = cohort.data
    if o.type == "longitudinal":
        data = data.sort_values([schema.id, o.visit], kind="stable")
    first = data.drop_duplicates(subset=schema.id, keep="first")
    return first[list(eligibility_columns(schema))].reset_index(drop=True)


def synthetic_eligibility_frame(generator, n: int, *, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` patients drawn from ``generator`` (no conditions), as criteria see them."""
    return generator.baseline_frame(generator.draw(int(n), rng=rng))


def preview_eligibility(criteria: str, frame: pd.DataFrame, source: str) -> EligibilityPreview:
    """The acceptance of ``criteria`` (whitelist-parsed; an invalid text raises ``CriteriaError``) on
    ``frame``."""
    crit = parse_criteria(criteria)
    eligible = crit.evaluate(frame)
    return EligibilityPreview(source=source, n=len(frame), n_eligible=int(np.sum(eligible)),
                              clause_rates=tuple(crit.pass_rates(frame)) if len(crit.clauses()) > 1 else (),
                              hints=tuple(crit.value_hints(frame)))
