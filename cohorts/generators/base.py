"""The :class:`CohortGenerator` contract and the generator registry.

Contract (scikit-learn / lifelines style):

* ``__init__`` only stores keyword hyperparameters;
* ``fit(data, schema, *, rng) -> self`` validates, learns, and sets attributes ending in ``_``
  (``schema_``, ``n_train_`` ...);
* ``sample(n, *, rng, conditions=None) -> DataFrame`` returns ``n`` synthetic patients in the schema's own
  format (one row per patient, or one row per visit for a longitudinal outcome), with fresh ids ``S000001`` ...;
* ``draw(n, *, rng, conditions=None) -> PatientDraw`` returns the same patients as baseline covariates plus
  latent outcome pieces, so that a trial can realize control and treated (counterfactual) outcomes;
* ``conditions`` (eligibility criteria, enrichment, target marginals) restrict or reweight who is drawn; the
  base class applies them to ``_draw`` batches through :func:`cohorts.conditional.draw_conditionally`, so every
  family supports them the same way;
* sampling before ``fit`` raises :class:`~cohorts.errors.NotFittedError`; the same ``rng`` seed gives an
  identical result; sampling never changes the fitted model.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd

from cohorts.errors import NotFittedError, UnknownNameError
from cohorts.generators.latent import PatientDraw
from cohorts.schema import CohortSchema

__all__ = ["CohortGenerator", "register", "get_generator", "available_generators", "REGISTRY"]

REGISTRY: dict[str, type["CohortGenerator"]] = {}


def register(cls: type["CohortGenerator"]) -> type["CohortGenerator"]:
    """Class decorator: add a generator to the registry under ``cls.name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    REGISTRY[cls.name] = cls
    return cls


def available_generators() -> list[str]:
    return sorted(REGISTRY)


def get_generator(name: str, **hyperparameters) -> "CohortGenerator":
    """A new, unfitted generator by registry name (``"default"`` ...)."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise UnknownNameError("generator", name, REGISTRY) from None
    return cls(**hyperparameters)


class CohortGenerator(ABC):
    """Learns a cohort's joint distribution and samples synthetic patients from it."""

    name: ClassVar[str] = ""
    #: one-line description for the UI and the report
    description: ClassVar[str] = ""

    def fit(self, data: pd.DataFrame, schema: CohortSchema, *, rng: np.random.Generator,
            progress=None) -> "CohortGenerator":
        """Learn from ``data`` (validated against ``schema``); ``progress(fraction, message)`` is called during
        long training (neural families), never required."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed))")
        start = time.perf_counter()
        self._fit(data, schema, rng=rng, progress=progress)
        self.training_seconds_ = time.perf_counter() - start
        self.schema_ = schema
        self.n_train_ = int(data[schema.id].nunique())
        from cohorts.generators.disclosure import unique_record_hashes
        self.unique_record_hashes_ = unique_record_hashes(data, schema)
        return self

    @abstractmethod
    def _fit(self, data: pd.DataFrame, schema: CohortSchema, *, rng: np.random.Generator, progress=None) -> None: ...

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "schema_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(data, schema, rng=...) first")

    def draw(self, n: int, *, rng: np.random.Generator, conditions=None) -> PatientDraw:
        self._check_fitted()
        if conditions is None:
            return self._draw(int(n), rng=rng)
        from cohorts.conditional import draw_conditionally
        return draw_conditionally(self, int(n), rng=rng, conditions=conditions)

    @abstractmethod
    def _draw(self, n: int, *, rng: np.random.Generator) -> PatientDraw: ...

    def sample(self, n: int, *, rng: np.random.Generator, conditions=None,
               redraw_replicated_uniques: bool = True) -> pd.DataFrame:
        """Synthetic patients in the schema's format; ``frame.attrs`` holds the draw's ``info``.

        Synthetic patients identical to a training patient whose record is unique in the training data are
        redrawn (see :mod:`cohorts.generators.disclosure`); ``frame.attrs`` counts them
        (``replicated_uniques_redrawn``, ``replicated_uniques_left``). Pass ``redraw_replicated_uniques=False``
        to keep the raw draw.
        """
        draw = self.draw(n, rng=rng, conditions=conditions)
        frame = self._realize(draw, rng=rng)
        info = dict(draw.info)
        if redraw_replicated_uniques:
            from cohorts.generators.disclosure import redraw_replicated_uniques as redraw
            frame, info["replicated_uniques_redrawn"], info["replicated_uniques_left"] = redraw(
                self, frame, rng=rng, conditions=conditions)
        frame.attrs.update(info)
        return frame

    @abstractmethod
    def _realize(self, draw: PatientDraw, *, rng: np.random.Generator) -> pd.DataFrame:
        """Observed data in the schema's format for drawn patients (control outcomes, the data's follow-up)."""

    def baseline_frame(self, draw: PatientDraw) -> pd.DataFrame:
        """What eligibility criteria see: baseline covariates plus, for a longitudinal outcome, the outcome
        column holding each patient's true value at the first visit (e.g. baseline ALSFRS-R)."""
        frame = draw.baseline.reset_index(drop=True).copy()
        o = self.schema_.outcome
        if o.type == "longitudinal" and o.value not in frame.columns:
            start = np.asarray(draw.outcome.start, dtype=float)
            if draw.outcome.integer:
                start = np.rint(start)
            frame[o.value] = np.clip(start, draw.outcome.lower, draw.outcome.upper)
        return frame

    def get_params(self) -> dict:
        """Hyperparameters as given to ``__init__`` (for the model card and the report)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}
