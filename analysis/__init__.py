"""Numbers and pictures from trial data: batched estimators, power, the shared workflow, plots, report."""

from analysis.power import power_curve
from analysis.power_result import PowerResult
from analysis.workflow import fit_generator, load_cohort_ref, run_power, run_scenario

__all__ = ["power_curve", "PowerResult", "fit_generator", "load_cohort_ref", "run_power", "run_scenario"]
