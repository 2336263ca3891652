"""Scenario files: the documented keys, clear errors by key path, round trip."""

from pathlib import Path

import pytest

from cohorts.errors import InvalidScenarioError
from trials.scenario import load_scenario, parse_scenario_text, scenario_to_toml

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
title = "t"
seed = 1
[cohort]
builtin = "als-natural-history"
[endpoint]
analysis = "slope"
visits_months = [0, 3, 6]
[[arms]]
name = "placebo"
[[arms]]
name = "drug"
allocation = 2
effect = { slope_reduction = 0.3 }
[dropout]
per_month = 0.02
[power]
n_total = [60, 120]
replicates = 200
"""


def problems_of(text, **kw):
    with pytest.raises(InvalidScenarioError) as info:
        parse_scenario_text(text, **kw)
    return info.value.problems


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples").glob("*.toml")
                                         if not p.name.endswith(("_grid.toml", "_schema.toml"))))
# (grid files: test_sweep; schema files: test_calibration)
def test_examples_parse(name):
    s = load_scenario(ROOT / "examples" / name)
    assert s.seed == 20261122
    assert len(s.design.arms) >= 2 and s.design.control.effect is None
    assert s.power.replicates == 1000 and s.power.alpha == 0.05
    assert s.text is not None and "seed" in s.text


def test_good_scenario_values():
    s = parse_scenario_text(GOOD)
    assert s.design.endpoint.visits_months == (0.0, 3.0, 6.0)
    assert s.design.treated_fraction == pytest.approx(2 / 3)
    assert s.design.effect.kind == "slope_reduction" and s.design.effect.value == 0.3
    assert s.power.n_total == (60, 120) and s.power.alpha == 0.05
    assert s.cohort.generator == "default"


def test_round_trip_to_toml():
    s = parse_scenario_text(GOOD)
    t = parse_scenario_text(scenario_to_toml(s))
    assert (t.title, t.seed, t.cohort, t.design, t.power) == (s.title, s.seed, s.cohort, s.design, s.power)


def test_unknown_keys_report_path_suggestion_and_allowed_values():
    text = GOOD.replace("per_month", "per_mnth").replace('title = "t"', 'title = "t"\nseeds = 3')
    probs = problems_of(text)
    assert any(p.startswith("dropout.per_mnth: unknown key (did you mean 'per_month'?)") for p in probs)
    assert any(p.startswith("seeds: unknown key (did you mean 'seed'?)") and "allowed:" in p for p in probs)


def test_every_problem_reported_at_once():
    text = (GOOD.replace("seed = 1", 'seed = "x"').replace("replicates = 200", "replicates = 0")
            .replace('analysis = "slope"', 'analysis = "slopes"'))
    probs = problems_of(text)
    assert len(probs) == 3
    assert any(p.startswith("seed:") for p in probs)
    assert any(p.startswith("power.replicates:") for p in probs)
    assert any(p.startswith("endpoint.analysis:") and "allowed: slope, ancova" in p for p in probs)


@pytest.mark.parametrize("old,new,path", [
    ("slope_reduction = 0.3", "hazard_ratio = 0.7", "arms[drug].effect"),       # wrong effect for endpoint
    ("slope_reduction = 0.3", "hazard_ratio = -1", "effect.hazard_ratio"),       # impossible value
    ("slope_reduction = 0.3", "slope_reduction = 1.5", "effect.slope_reduction"),
    ("slope_reduction = 0.3", "slope_cut = 0.3", "arms[1].effect.slope_cut"),
    ("per_month = 0.02", "per_month = 1.2", "dropout.per_month"),
    ("[0, 3, 6]", "[0, 6, 3]", "endpoint.visits_months"),
    ("[0, 3, 6]", '"monthly"', "endpoint.visits_months"),
    ("n_total = [60, 120]", "n_total = [60, 2]", "power.n_total"),
    ("allocation = 2", "allocation = 0", "arms[1].allocation"),
    ('builtin = "als-natural-history"', 'builtin = "als-natural-histry"', "cohort.builtin"),
])
def test_impossible_values_name_the_key(old, new, path):
    probs = problems_of(GOOD.replace(old, new))
    assert any(p.startswith(path) for p in probs), probs


def test_data_paths_resolve_against_scenario_folder(tmp_path):
    (tmp_path / "d.csv").write_text("id,x\n1,2\n")
    (tmp_path / "s.toml").write_text("id='id'\n")
    text = GOOD.replace('builtin = "als-natural-history"', 'data = "d.csv"\nschema = "s.toml"')
    f = tmp_path / "sub" / "scen.toml"
    f.parent.mkdir()
    f.write_text(text.replace('"d.csv"', '"../d.csv"').replace('"s.toml"', '"../s.toml"'))
    s = load_scenario(f)
    assert s.cohort.data.resolve() == (tmp_path / "d.csv").resolve()
    missing = problems_of(text, base_dir=tmp_path / "sub")
    assert any(p.startswith("cohort.data: file not found") for p in missing)


def test_both_or_neither_cohort_source_rejected():
    probs = problems_of(GOOD.replace('builtin = "als-natural-history"', ""))
    assert any(p.startswith("cohort: give either builtin") for p in probs)


def test_invalid_toml_and_missing_file(tmp_path):
    assert "not valid TOML" in problems_of("title = \n")[0]
    with pytest.raises(InvalidScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.toml")


def test_generator_params_round_trip_and_are_checked():
    text = GOOD.replace('builtin = "als-natural-history"',
                        'builtin = "als-natural-history"\ngenerator = "cart"\nparams = { min_samples_leaf = 10 }')
    s = parse_scenario_text(text)
    assert s.cohort.generator_params == {"min_samples_leaf": 10}
    assert parse_scenario_text(scenario_to_toml(s)).cohort == s.cohort
    probs = problems_of(text.replace("min_samples_leaf", "min_sample_leaf"))
    assert any(p.startswith("cohort.params.min_sample_leaf: not a hyperparameter of 'cart' "
                            "(did you mean 'min_samples_leaf'?)") for p in probs)
