"""The ``auto`` family: train candidate families, keep the one whose synthetic patients are hardest to tell
from held-out real patients.

Method. Patients are split (by id) into a training part and a validation part (``validation_fraction``).
Each candidate family is fitted on the training part and scored by :func:`cohorts.evaluate.evaluate_generator`
against the validation part; the score is the detection AUC (5-fold cross-validated classifier separating
validation rows from synthetic rows; 0.5 = indistinguishable), ties broken by the mean marginal distance. The
winner is then refitted on ALL patients, so nothing is wasted. ``scores_`` holds every candidate's metrics
(detection AUC, marginal distance, association difference, Kaplan-Meier or trajectory distance, exact-copy
rate, membership-inference AUC, training time) for the comparison table in the app and the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError, InvalidScenarioError
from cohorts.generators.base import REGISTRY, CohortGenerator, get_generator, register
from cohorts.generators.latent import PatientDraw
from cohorts.schema import CohortSchema

__all__ = ["AutoGenerator", "DEFAULT_CANDIDATES"]

DEFAULT_CANDIDATES = ("copula", "cart", "tvae", "ctgan")


@register
class AutoGenerator(CohortGenerator):
    """Fits each candidate family, keeps the best by held-out detection AUC, refits it on all data."""

    name = "auto"
    description = ("automatic choice: each candidate family trained on 70 % of patients, scored by detection AUC "
                   "on the other 30 %, the best refitted on all patients")

    def __init__(self, *, candidates: tuple[str, ...] = DEFAULT_CANDIDATES, validation_fraction: float = 0.3,
                 candidate_params: dict | None = None):
        self.candidates = tuple(candidates)
        self.validation_fraction = validation_fraction
        self.candidate_params = dict(candidate_params or {})

    def _fit(self, data: pd.DataFrame, schema: CohortSchema, *, rng: np.random.Generator, progress=None) -> None:
        from cohorts.evaluate import split_train_holdout

        bad = [c for c in self.candidates if c not in REGISTRY or c == self.name]
        if bad or not self.candidates:
            raise InvalidScenarioError(f"auto.candidates: {bad or 'empty'} are not generator families; choose "
                                       f"from {', '.join(sorted(set(REGISTRY) - {self.name}))}")
        if not 0 < self.validation_fraction < 1:
            raise InvalidScenarioError(f"auto.validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if data[schema.id].nunique() < 20:
            raise InvalidDataError("auto needs at least 20 patients to hold some out for validation; "
                                   "choose a family directly")
        from cohorts.compare import compare_families

        split_rng, compare_rng, refit_rng = rng.spawn(3)
        train, valid = split_train_holdout(data, schema, holdout_fraction=self.validation_fraction, rng=split_rng)
        k = len(self.candidates)
        step = None if progress is None else (lambda f, m: progress(f * k / (k + 1), f"auto: {m}"))
        self.scores_, _, _ = compare_families(train, valid, schema, self.candidates, rng=compare_rng,
                                              params=self.candidate_params, progress=step)
        self.selected_ = str(self.scores_["family"].iloc[0])
        if progress is not None:
            progress(k / (k + 1), f"auto: refitting {self.selected_} on all patients")
        self.chosen_ = get_generator(self.selected_, **self.candidate_params.get(self.selected_, {})).fit(
            data, schema, rng=refit_rng)
        self.fit_notes_ = [f"auto selected {self.selected_} (held-out detection AUC "
                           f"{self.scores_['detection_auc'].iloc[0]:.3f})"] + list(getattr(self.chosen_, "fit_notes_", []))
        self.privacy_ = getattr(self.chosen_, "privacy_", None)
        if progress is not None:
            progress(1.0, f"auto: {self.selected_} selected")

    def _draw(self, n: int, *, rng: np.random.Generator) -> PatientDraw:
        return self.chosen_._draw(n, rng=rng)

    def _realize(self, draw: PatientDraw, *, rng: np.random.Generator) -> pd.DataFrame:
        return self.chosen_._realize(draw, rng=rng)

    def baseline_frame(self, draw: PatientDraw) -> pd.DataFrame:
        return self.chosen_.baseline_frame(draw)
