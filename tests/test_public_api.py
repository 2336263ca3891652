"""The public names of each package are the ones we mean, and each resolves."""

import importlib

import pytest

EXPECTED = {
    "cohorts": {"Cohort", "CohortSchema", "OutcomeSpec", "load_cohort", "cohort_from_frame", "read_table",
                "validate", "WorkbenchError", "InvalidDataError", "InvalidScenarioError", "NotFittedError",
                "UnknownNameError"},
    "trials": {"Arm", "Dropout", "Effect", "Endpoint", "PowerSettings", "TrialDesign", "TrialBatch",
               "simulate_trials", "CohortRef", "Scenario", "load_scenario", "parse_scenario_text",
               "scenario_to_toml"},
    "analysis": {"power_curve", "PowerResult", "fit_generator", "load_cohort_ref", "run_power", "run_scenario"},
    "cohorts.builtin": {"DEFAULT_BUILTIN", "BuiltinInfo", "available_builtins", "load_builtin"},
}


@pytest.mark.parametrize("package", sorted(EXPECTED))
def test_public_names(package):
    mod = importlib.import_module(package)
    assert set(mod.__all__) == EXPECTED[package]
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_error_tree():
    from cohorts.errors import (InvalidDataError, InvalidScenarioError, NotFittedError, UnknownNameError,
                                WorkbenchError)
    for cls in (InvalidDataError, InvalidScenarioError, NotFittedError, UnknownNameError):
        assert issubclass(cls, WorkbenchError)
    err = InvalidDataError(["a is wrong", "b is wrong"], source="f.csv")
    assert err.problems == ["a is wrong", "b is wrong"] and "2 problems in f.csv" in str(err)
    assert str(UnknownNameError("generator", "x", ["b", "a"])) == "unknown generator 'x'; choose one of: a, b"
