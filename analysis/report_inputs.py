"""Everything a review-board report shows, gathered in one frozen object.

The report builders (:func:`analysis.report.build_html_report`, :func:`analysis.report_pdf.build_pdf_report`)
render a :class:`ReportInputs` and compute nothing heavy themselves, except one example trial drawn from the
generator with the run's seed. A :class:`ReportInputs` comes either from a live run (the app, ``insilico power
--report``) or from a run directory on disk (:func:`analysis.run_dir.report_inputs`), so the report of a run
directory shows exactly the numbers the run produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

__all__ = ["ReportInputs", "DEFAULT_TARGET_POWER"]

#: the power the executive summary's recommended N must reach when the run did no sample-size search
DEFAULT_TARGET_POWER = 0.8


@dataclass(frozen=True, eq=False)
class ReportInputs:
    """The inputs of one report.

    * ``cohort``: :class:`~cohorts.cohort.Cohort` the generator was trained on (provenance, schema, SHA-256).
    * ``generator``: the fitted generator, or ``None`` when it is not available (the example trial and the
      validation figures are then omitted with a note).
    * ``scenario``: the :class:`~trials.scenario.Scenario` (its TOML is reproduced verbatim from
      ``scenario_toml``), or ``None`` for a bare design (``design`` is then used alone).
    * ``result``: the :class:`~analysis.power_result.PowerResult` (power curve, null scenario, operating
      characteristics, looks).
    * ``figures``: name -> plotly figure. ``"power_curve"`` goes to the results; ``"marginals"``,
      ``"trajectory"``, ``"km"`` (real vs synthetic of the fitted generator) and the evaluation figures
      (``"eval_<name>"``, from :func:`analysis.evaluation_plots.fidelity_figures`) to the generator section.
      Missing figures are built from the generator where possible.
    * ``evaluation``: :meth:`cohorts.evaluate.EvaluationReport.summary` of the generator family fitted on a
      training split and scored on held-out patients (fidelity, utility, privacy), or ``None``.
    * ``evaluation_split``: ``{"n_train": .., "n_holdout": .., "n_synthetic": ..}`` of that evaluation.
    * ``model_card``: the generator's model card (:mod:`cohorts.generators.persist`), or ``None``.
    * ``sweep``: :attr:`analysis.sweep.SweepResult.table` of a sensitivity grid, or ``None``;
      ``sweep_summary`` its JSON summary (grid, replicates, seed).
    * ``sample_size``: :meth:`analysis.sample_size_sim.SimulatedSampleSize.to_json_dict` of a sample-size
      search, or ``None``.
    * ``manifest``: the run directory's ``manifest.json`` (seeds, versions, platform, hashes, start/end time,
      the command that reproduces the run), or ``None`` for a report built from a live run.
    * ``target_power``: the power the recommended N must reach when there is no sample-size search.
    """

    title: str
    cohort: object
    generator: object | None
    design: object
    result: object
    scenario: object | None = None
    scenario_toml: str | None = None
    author: str | None = None
    figures: dict = field(default_factory=dict)
    evaluation: pd.DataFrame | None = None
    evaluation_split: dict | None = None
    model_card: dict | None = None
    sweep: pd.DataFrame | None = None
    sweep_summary: dict | None = None
    sample_size: dict | None = None
    manifest: dict | None = None
    target_power: float = DEFAULT_TARGET_POWER
    created: datetime | None = None
