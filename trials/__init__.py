"""A trial before it happens: design objects, effects, batched simulation, scenario files.

``trials`` builds arms from ``cohorts`` generators and knows nothing of ``analysis``.
"""

from trials.batch import TrialBatch
from trials.design import Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign
from trials.scenario import CohortRef, Scenario, load_scenario, parse_scenario_text, scenario_to_toml
from trials.simulate import simulate_trials

__all__ = ["Arm", "Dropout", "Effect", "Endpoint", "PowerSettings", "TrialDesign", "TrialBatch",
           "simulate_trials", "CohortRef", "Scenario", "load_scenario", "parse_scenario_text", "scenario_to_toml"]
