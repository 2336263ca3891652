"""A validated historical cohort: data plus its schema and provenance."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from cohorts.schema import CohortSchema

__all__ = ["Cohort", "frame_sha256"]


def frame_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a frame's canonical CSV (column order and values; index dropped)."""
    return hashlib.sha256(df.to_csv(index=False, lineterminator="\n").encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Cohort:
    """Historical patients with their column roles.

    ``data`` is validated against ``schema`` (see :func:`cohorts.io.validate`): one row per patient, or one row
    per visit for a longitudinal outcome (baseline covariates repeated on every row of a patient).
    ``sha256`` identifies the source bytes (the file as read) so a report can name exactly what was used.
    """

    name: str
    schema: CohortSchema
    data: pd.DataFrame = field(repr=False)
    source: str = ""
    citation: str = ""
    description: str = ""
    sha256: str = ""

    def __post_init__(self):
        if not self.sha256:
            object.__setattr__(self, "sha256", frame_sha256(self.data))

    @property
    def n_patients(self) -> int:
        return int(self.data[self.schema.id].nunique())

    def baseline(self) -> pd.DataFrame:
        """One row per patient: id and baseline covariates (first row of each patient)."""
        cols = [self.schema.id, *self.schema.baseline]
        return self.data[cols].drop_duplicates(subset=self.schema.id, keep="first").reset_index(drop=True)
