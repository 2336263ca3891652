"""One trial (real, or one simulated replicate) as patient-level DataFrames, and its outcome view.

:class:`OneTrial` holds what the tables and figures of :mod:`analysis.outcome_tables` and
:mod:`analysis.outcome_figures` take: ``patients`` (one row per patient: id, arm, baseline covariates and, for
a time-to-event, continuous or binary endpoint, the outcome) and ``data`` (what the estimator reads: the long
frame, one row per observed visit, for a longitudinal endpoint; else ``patients``), with column names from
the cohort's schema so that the same code serves real and simulated trials.

* :func:`trial_frames`: one replicate of a :class:`~trials.batch.TrialBatch` (plus the baseline covariates of
  its patients) -> :class:`OneTrial`;
* :func:`simulate_one_trial`: one virtual trial from a fitted generator and a design with
  :func:`trials.simulate.simulate_trials` (``replicates = 1``), keeping the baseline covariates of the drawn
  patients (a :class:`~trials.batch.TrialBatch` does not carry them);
* :func:`cohort_trial`: a real trial already in a cohort (an arm column among its covariates).

The tables and figures are re-exported here, so ``from analysis.outcome_view import ...`` is the one import
of the app's Outcome page and of the report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.outcome_figures import ARM_COLORS, forest_figure, km_figure, trajectory_figure
from analysis.outcome_tables import (RATIO_ANALYSES, arm_levels, nice_times, numbers_at_risk, subgroup_effects,
                                     table_one, trajectory_table)
from cohorts.errors import InvalidDataError
from cohorts.schema import CohortSchema, OutcomeSpec
from trials.batch import TrialBatch
from trials.design import ANALYSIS_OUTCOME, TrialDesign
from trials.simulate import months_to_unit, simulate_trials

__all__ = ["OneTrial", "trial_frames", "simulate_one_trial", "cohort_trial", "table_one", "numbers_at_risk",
           "nice_times", "trajectory_table", "subgroup_effects", "km_figure", "trajectory_figure", "forest_figure",
           "arm_levels", "ARM_COLORS", "RATIO_ANALYSES"]


@dataclass(frozen=True, eq=False)
class OneTrial:
    """One two-arm trial as DataFrames (see the module docstring); ``source`` says where it came from."""

    source: str
    patients: pd.DataFrame
    data: pd.DataFrame
    outcome: OutcomeSpec
    id: str
    arm: str
    control: object
    treated: object
    covariates: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def arms(self) -> list:
        return [self.control, self.treated]

    @property
    def time_unit(self) -> str | None:
        return self.outcome.unit

    def analyses(self) -> list[str]:
        """The registered analyses for this trial's outcome type."""
        return [a for a, o in ANALYSIS_OUTCOME.items() if o == self.outcome.type]

    def analysis_kwargs(self, analysis: str) -> dict:
        """Keywords of :data:`analysis.estimators.SINGLE` ``[analysis]`` for :attr:`data`."""
        if ANALYSIS_OUTCOME.get(analysis) != self.outcome.type:
            raise InvalidDataError(f"analysis {analysis!r} does not suit a {self.outcome.type} outcome; "
                                   f"choose one of {self.analyses()}")
        o = self.outcome
        kw = {"arm": self.arm, "treated_value": self.treated}
        if o.type == "longitudinal":
            kw.update(id=self.id, visit=o.visit, value=o.value)
        elif o.type == "tte":
            kw.update(time=o.time, event=o.event)
        else:
            kw.update(value=o.value)
        return kw

    def table_one(self, **kwargs) -> pd.DataFrame:
        """Table 1 of the baseline covariates by arm."""
        return table_one(self.patients, arm=self.arm, columns=list(self.covariates),
                         categorical=[c for c in self.categorical if c in self.covariates],
                         treated_value=self.treated, **kwargs)

    def outcome_figure(self):
        """Kaplan-Meier (tte) or mean trajectory (longitudinal) figure; ``None`` for other outcomes."""
        o = self.outcome
        if o.type == "tte":
            return km_figure(self.patients, time=o.time, event=o.event, arm=self.arm, time_unit=o.unit,
                             arms=self.arms)
        if o.type == "longitudinal":
            return trajectory_figure(self.data, id=self.id, visit=o.visit, value=o.value, arm=self.arm,
                                     arms=self.arms, visit_unit=o.unit)
        return None


def _arm_column(schema: CohortSchema) -> str:
    return next(name for name in ("arm", "trial_arm", "randomized_arm", "arm_") if name not in schema.columns)


def trial_frames(batch: TrialBatch, *, schema: CohortSchema, design: TrialDesign,
                 baseline: pd.DataFrame | None = None, replicate: int = 0, source: str = "simulated trial",
                 id_prefix: str = "V") -> OneTrial:
    """Replicate ``replicate`` of ``batch`` as a :class:`OneTrial` in the cohort's column names.

    ``baseline`` (one row per patient, in the batch's patient order; e.g. ``PatientDraw.baseline``) adds the
    baseline covariates. The arm column is ``arm`` (``trial_arm`` if the cohort has an ``arm`` column) holding
    the design's arm names. Longitudinal: visit times are converted from the batch's months to the cohort's
    visit unit, the long frame keeps observed visits only (rows after dropout are absent, as in real data),
    and ``<value>_baseline`` (the value at the first scheduled visit) joins the covariates.
    """
    if not 0 <= replicate < batch.replicates:
        raise IndexError(f"replicate {replicate} out of range: the batch has {batch.replicates}")
    o = schema.outcome
    if batch.outcome_type != o.type:
        raise InvalidDataError(f"the batch is {batch.outcome_type!r} but the cohort's outcome is {o.type!r}")
    n = batch.n_total
    arm = _arm_column(schema)
    treated = np.asarray(batch.treated[replicate], dtype=bool)
    if batch.arm is not None:
        names = np.array([a.name for a in design.arms], dtype=object)[np.asarray(batch.arm[replicate], dtype=int)]
    else:
        names = np.where(treated, design.treatment.name, design.control.name)
    patients = pd.DataFrame({schema.id: [f"{id_prefix}{i + 1:05d}" for i in range(n)], arm: names})
    covariates: list[str] = []
    if baseline is not None:
        if len(baseline) != n:
            raise InvalidDataError(f"baseline has {len(baseline)} rows, the trial {n} patients")
        covariates = [c for c in schema.baseline if c in baseline.columns]
        patients = pd.concat([patients, baseline[covariates].reset_index(drop=True)], axis=1)
    categorical = tuple(c for c in schema.categorical if c in covariates)
    if o.type == "tte":
        patients[o.time] = np.asarray(batch.time[replicate], dtype=float)
        patients[o.event] = np.asarray(batch.event[replicate]).astype(int)
        data = patients
    elif o.type in ("continuous", "binary"):
        y = np.asarray(batch.y[replicate], dtype=float)
        patients[o.value] = y.astype(int) if o.type == "binary" and not np.isnan(y).any() else y
        data = patients
    else:
        y = np.asarray(batch.y[replicate], dtype=float)                 # (N, V)
        visits = months_to_unit(batch.visit_times, o.unit)
        base_col = f"{o.value}_baseline"
        if base_col not in patients.columns:
            patients[base_col] = y[:, 0]
            covariates = [*covariates, base_col]
        long = patients.loc[np.repeat(np.arange(n), len(visits))].reset_index(drop=True)
        long[o.visit] = np.tile(np.asarray(visits, dtype=float), n)
        long[o.value] = y.ravel()
        data = long[long[o.value].notna()].reset_index(drop=True)
    return OneTrial(source, patients, data, o, schema.id, arm, design.control.name, design.treatment.name,
                    tuple(covariates), categorical)


def simulate_one_trial(generator, design: TrialDesign, n_total: int, *, rng: np.random.Generator,
                       source: str | None = None) -> OneTrial:
    """One virtual trial of ``n_total`` patients: :func:`~trials.simulate.simulate_trials` with one replicate,
    plus the baseline covariates of the patients it drew (their order is the batch's patient order)."""
    batch, draw = simulate_trials(generator, design, n_total, 1, rng=rng, return_draw=True)
    batch = batch.randomized()          # a hybrid design's synthetic controls are not trial patients
    trial = trial_frames(batch, schema=generator.schema_, design=design, baseline=draw.baseline,
                         source=source or f"one simulated trial of {n_total} patients")
    if design.n_treatments > 1:         # the views compare two arms: the control and the first treatment
        keep = {design.control.name, design.treatment.name}
        others = ", ".join(a.name for a in design.treatments[1:])
        trial = dataclasses.replace(
            trial, source=f"{trial.source}; {design.control.name} vs {design.treatment.name} ({others} not shown)",
            patients=trial.patients[trial.patients[trial.arm].isin(keep)].reset_index(drop=True),
            data=trial.data[trial.data[trial.arm].isin(keep)].reset_index(drop=True))
    return trial


def cohort_trial(cohort, *, arm: str, treated_value) -> OneTrial:
    """A real two-arm trial held in ``cohort``: ``arm`` is one of its covariates (e.g. ``Treatment`` in the
    VA lung trial) and leaves the covariate list. Longitudinal: ``<value>_baseline`` is each patient's value at
    the earliest visit in the data (NaN if missed)."""
    s = cohort.schema
    data = cohort.data
    if arm not in data.columns:
        raise InvalidDataError(f"arm column {arm!r} not found; columns are {list(data.columns)}")
    control, treated = arm_levels(data, arm, treated_value)
    covariates = [c for c in s.baseline if c != arm]
    patients = data.drop_duplicates(subset=s.id, keep="first")[[s.id, arm, *covariates]].reset_index(drop=True)
    o = s.outcome
    if o.type in ("tte", "continuous", "binary"):
        cols = [c for c in o.columns if c not in patients.columns]
        patients = patients.merge(data.drop_duplicates(subset=s.id)[[s.id, *cols]], on=s.id, how="left")
        frame = patients
    else:
        frame = data
        base_col = f"{o.value}_baseline"
        if base_col not in patients.columns:
            t = pd.to_numeric(data[o.visit], errors="coerce")
            first = data[t == t.min()].drop_duplicates(subset=s.id).set_index(s.id)[o.value]
            patients[base_col] = patients[s.id].map(first).astype(float)
            covariates.append(base_col)
    return OneTrial(f"{cohort.name} (real data)", patients, frame, o, s.id, arm, control, treated,
                    tuple(covariates), tuple(c for c in s.categorical if c in covariates))
