"""The scenario JSON Schema: its keys are the parser's (``_KEYS``) both ways, it is a valid draft 2020-12 schema,
every example scenario validates, and the schema and :func:`trials.scenario.parse_scenario` agree on a list of
valid and invalid documents (reference: the parser; the only documented divergences are listed as such).
Needs the ``jsonschema`` package (a test dependency)."""

import copy
import tomllib
from pathlib import Path

import jsonschema
import pytest

from cohorts.errors import InvalidScenarioError
from trials.conduct import ACCRUAL_PROCESSES, MULTIPLICITY, RANDOMIZATION_METHODS, SPENDING
from trials.design import ANALYSIS_OUTCOME, EFFECT_MODIFIERS, EFFECT_OUTCOME
from trials.scenario import _KEYS, parse_scenario
from trials.scenario_schema import SCHEMA_DIALECT, scenario_json_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
NOT_SCENARIOS = {"sweep_grid.toml", "va_lung_schema.toml"}   # a sweep grid and a cohort schema


@pytest.fixture(scope="module")
def schema():
    return scenario_json_schema()


@pytest.fixture(scope="module")
def validator(schema):
    return jsonschema.Draft202012Validator(schema)


def table_schema(schema, section):
    if section == "":
        return schema
    if section == "arms":
        return schema["properties"]["arms"]["items"]
    return schema["properties"][section]


def test_is_a_valid_draft_2020_12_schema(schema):
    assert schema["$schema"] == SCHEMA_DIALECT
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("section", list(_KEYS))
def test_keys_are_the_parsers_both_ways_with_descriptions(schema, section):
    t = table_schema(schema, section)
    assert list(t["properties"]) == list(_KEYS[section])        # same keys, same order, nothing extra
    assert t["additionalProperties"] is False
    for key, sub in t["properties"].items():
        assert len(sub["description"]) >= 20, f"{section}.{key}: description too short"


def test_every_table_key_is_a_table_of_keys(schema):
    tables = [k for k, v in schema["properties"].items() if v.get("type") in ("object", "array")]
    assert sorted(tables) == sorted(set(_KEYS) - {""})


def test_effect_keys_and_enums_come_from_the_constants(schema):
    effect = schema["$defs"]["effect"]
    assert list(effect["properties"]) == list(EFFECT_OUTCOME) + list(EFFECT_MODIFIERS)
    assert all(len(v["description"]) >= 20 for v in effect["properties"].values())
    props = schema["properties"]
    assert props["multiplicity"]["enum"] == list(MULTIPLICITY)
    assert props["endpoint"]["properties"]["analysis"]["enum"] == list(ANALYSIS_OUTCOME)
    assert props["randomization"]["properties"]["method"]["enum"] == list(RANDOMIZATION_METHODS)
    assert props["accrual"]["properties"]["process"]["enum"] == list(ACCRUAL_PROCESSES)
    assert props["looks"]["properties"]["spending"]["enum"] == list(SPENDING)
    assert props["looks"]["properties"]["futility"]["enum"] == list(SPENDING)


def test_units_in_the_descriptions(schema):
    p = schema["properties"]
    for section, key in [("endpoint", "visits_months"), ("endpoint", "visit_window_months"),
                         ("accrual", "duration"), ("accrual", "rates"), ("dropout", "per_month")]:
        assert "month" in p[section]["properties"][key]["description"].lower(), (section, key)
    assert "cohort's time unit" in p["endpoint"]["properties"]["followup"]["description"]
    for key in ("delay", "until"):
        assert "cohort's time unit" in schema["$defs"]["effect"]["properties"][key]["description"]


def test_returns_a_fresh_copy():
    a = scenario_json_schema()
    a["properties"]["seed"]["minimum"] = 99
    a["$defs"]["effect"]["properties"]["hazard_ratio"]["exclusiveMinimum"] = 5
    assert scenario_json_schema()["properties"]["seed"]["minimum"] == 0
    assert scenario_json_schema()["$defs"]["effect"]["properties"]["hazard_ratio"]["exclusiveMinimum"] == 0


def test_every_example_scenario_validates(validator):
    scenarios = [p for p in EXAMPLES if p.name not in NOT_SCENARIOS]
    for p in EXAMPLES:       # a scenario is recognised by its [cohort]; nothing else is silently skipped
        assert ("cohort" in tomllib.loads(p.read_text())) == (p.name not in NOT_SCENARIOS), p.name
    assert len(scenarios) >= 8
    for p in scenarios:
        d = tomllib.loads(p.read_text())
        assert [e.message for e in validator.iter_errors(d)] == [], p.name
        parse_scenario(d, base_dir=p.parent)


ALS = {"title": "t", "seed": 1, "cohort": {"builtin": "als-natural-history"},
       "endpoint": {"analysis": "slope", "visits_months": [0, 3, 6]},
       "arms": [{"name": "placebo"}, {"name": "drug", "allocation": 1, "effect": {"slope_reduction": 0.3}}],
       "dropout": {"per_month": 0.02}, "power": {"n_total": [60, 120], "replicates": 200}}
TTE = {"seed": 1, "cohort": {"builtin": "va-lung"}, "endpoint": {"analysis": "logrank", "followup": 365},
       "arms": [{"name": "standard"}, {"name": "test", "effect": {"hazard_ratio": 0.7}}], "power": {"n_total": 100}}
LOOKS = {"information_fractions": [0.5, 1.0]}


def doc(base, **changes):
    """``base`` with ``changes``: ``key``, ``table__key`` or ``arm1__key`` (arm 1's key) set to a value; ``None``
    deletes it."""
    d = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, key = path.split("__")
        t = d
        for part in parents:
            t = t["arms"][int(part[3:])] if part.startswith("arm") else t.setdefault(part, {})
        if value is None:
            t.pop(key, None)
        else:
            t[key] = value
    return d


THIRD_ARM = [{"name": "p"}, {"name": "a", "effect": {"slope_reduction": 0.2}},
             {"name": "b", "effect": {"slope_reduction": 0.3}}]

VALID = {
    "n_total as one integer": doc(ALS, power__n_total=80),
    "empty title": doc(ALS, title=""),
    "one accrual rate, no starts": doc(ALS, accrual__rates=[10]),
    "piecewise poisson accrual": doc(ALS, accrual={"rates": [4, 12], "starts": [0, 3], "process": "poisson"}),
    "duration with an empty rates list": doc(ALS, accrual={"duration": 12, "rates": []}),
    "enrich only": doc(ALS, eligibility={"enrich": {"site_of_onset == 'Bulbar'": 2}}),
    "criteria with an empty enrich": doc(ALS, eligibility={"criteria": "age >= 40", "enrich": {}}),
    "hsd looks with gamma": doc(ALS, looks={"information_fractions": [0.3, 0.6, 1], "spending": "hsd", "gamma": -4}),
    "one-sided futility": doc(ALS, looks={**LOOKS, "futility": "obf", "beta": 0.2, "sided": 1}),
    "hsd futility with gamma_futility": doc(ALS, looks={**LOOKS, "futility": "hsd", "gamma_futility": -2,
                                                         "beta": 0.1, "sided": 1}),
    "beta alone": doc(ALS, looks={**LOOKS, "beta": 0.2}),
    "three arms, bonferroni": doc(ALS, arms=THIRD_ARM, multiplicity="bonferroni"),
    "stratified permuted blocks": doc(ALS, randomization={"method": "permuted_block", "block_size": 4,
                                                          "strata": ["sex", "age >= 60"]}),
    "fixed randomization with empty strata": doc(ALS, randomization={"method": "fixed", "strata": []}),
    "informative dropout, per-arm dropout": doc(ALS, dropout__hazard_ratio_per_unit_change=0.9,
                                                arm1__dropout_per_month=0.03),
    "visit windows": doc(ALS, endpoint__visit_window_months=1.0),
    "hybrid with drift": doc(ALS, hybrid={"synthetic_controls": 30, "drift": -0.1}),
    "subgroup with outside_value": doc(ALS, arm1__effect={"slope_reduction": 0.4, "subgroup": "age < 60",
                                                          "outside_value": 0.1, "responder_fraction": 0.5}),
    "generator params": doc(ALS, cohort__generator="copula", cohort__params={}),
    "tte event-driven, no followup": doc(TTE, endpoint={"analysis": "cox", "events": 80}),
    "tte delay and until": doc(TTE, arm1__effect={"hazard_ratio": 0.6, "delay": 30, "until": 300}),
    "null effect on the control": doc(TTE, arm0__effect={"hazard_ratio": 1.0}),
}

INVALID = {
    "unknown top-level key": doc(ALS, seeds=2),
    "unknown looks key": doc(ALS, looks={**LOOKS, "spend": "obf"}),
    "two effect kinds": doc(ALS, arm1__effect={"slope_reduction": 0.3, "hazard_ratio": 0.7}),
    "modifier without a kind": doc(ALS, arm1__effect={"responder_fraction": 0.5}),
    "effect kind of another outcome": doc(ALS, arm1__effect={"hazard_ratio": 0.7}),
    "delay on a slope effect": doc(ALS, arm1__effect={"slope_reduction": 0.3, "delay": 2}),
    "outside_value without subgroup": doc(ALS, arm1__effect={"slope_reduction": 0.3, "outside_value": 0.1}),
    "slope_reduction above 1": doc(ALS, arm1__effect={"slope_reduction": 1.5}),
    "hazard ratio 0": doc(TTE, arm1__effect={"hazard_ratio": 0}),
    "responder_fraction 0": doc(ALS, arm1__effect={"slope_reduction": 0.3, "responder_fraction": 0}),
    "duration and rates": doc(ALS, accrual={"duration": 12, "rates": [5]}),
    "starts without rates": doc(ALS, accrual={"duration": 12, "starts": [0]}),
    "starts not at 0": doc(ALS, accrual={"rates": [4, 12], "starts": [1, 3]}),
    "unknown accrual process": doc(ALS, accrual={"duration": 12, "process": "gamma"}),
    "block size with simple randomization": doc(ALS, randomization={"method": "simple", "block_size": 4}),
    "strata without permuted blocks": doc(ALS, randomization={"strata": ["sex"]}),
    "permuted blocks without block size": doc(ALS, randomization={"method": "permuted_block"}),
    "unknown multiplicity": doc(ALS, multiplicity="sidak"),
    "dropout per_month 1": doc(ALS, dropout__per_month=1.0),
    "arm dropout negative": doc(ALS, arm1__dropout_per_month=-0.1),
    "informative dropout on a continuous endpoint": doc(ALS, endpoint={"analysis": "ttest"},
                                                        arm1__effect={"mean_difference": 1},
                                                        dropout__hazard_ratio_per_unit_change=0.9),
    "one arm": doc(ALS, arms=[{"name": "placebo"}]),
    "events on a slope endpoint": doc(ALS, endpoint__events=50),
    "tte without followup or events": doc(TTE, endpoint={"analysis": "logrank"}),
    "slope without visits": doc(ALS, endpoint={"analysis": "mmrm"}),
    "visit window without visits": doc(TTE, endpoint__visit_window_months=1),
    "hsd without gamma": doc(ALS, looks={**LOOKS, "spending": "hsd"}),
    "gamma with obf": doc(ALS, looks={**LOOKS, "gamma": -4}),
    "futility two-sided": doc(ALS, looks={**LOOKS, "futility": "obf", "beta": 0.2}),
    "futility without beta": doc(ALS, looks={**LOOKS, "futility": "obf", "sided": 1}),
    "information fractions not ending at 1": doc(ALS, looks={"information_fractions": [0.5, 0.8]}),
    "sided 3": doc(ALS, looks={**LOOKS, "sided": 3}),
    "looks and hybrid": doc(ALS, looks=LOOKS, hybrid={"synthetic_controls": 10}),
    "looks on three arms": doc(ALS, arms=THIRD_ARM, looks=LOOKS),
    "hybrid on three arms": doc(ALS, arms=THIRD_ARM, hybrid={"synthetic_controls": 10}),
    "no synthetic controls": doc(ALS, hybrid={"synthetic_controls": 0}),
    "enrich weight 0": doc(ALS, eligibility={"enrich": {"age > 60": 0}}),
    "replicates 0": doc(ALS, power__replicates=0),
    "n_total 3": doc(ALS, power__n_total=[3]),
    "builtin and data": doc(ALS, cohort__data="x.csv"),
    "unknown builtin": doc(ALS, cohort__builtin="als"),
    "unknown generator": doc(ALS, cohort__generator="gan"),
    "missing seed": doc(ALS, seed=None),
    "missing power": doc(ALS, power=None),
}

# the parser refuses these (rules the schema cannot state); the schema accepts them, as documented
PARSER_ONLY = {
    "visits not increasing": doc(ALS, endpoint__visits_months=[0, 6, 3]),
    "effect on the control": doc(ALS, arm0__effect={"slope_reduction": 0.3}),
    "expression that does not parse": doc(ALS, eligibility={"criteria": "age >>= 3"}),
    "block size not a multiple of the allocation": doc(ALS, randomization={"method": "permuted_block",
                                                                           "block_size": 3}),
    "visit window overlapping visits": doc(ALS, endpoint__visit_window_months=2),
    "drift outside the effect's range": doc(ALS, hybrid={"synthetic_controls": 10, "drift": 2.0}),
}


def parser_accepts(d) -> bool:
    try:
        parse_scenario(d)
    except InvalidScenarioError:
        return False
    return True


@pytest.mark.parametrize("name", list(VALID))
def test_valid_documents_pass_both(validator, name):
    d = VALID[name]
    assert [e.message for e in validator.iter_errors(d)] == []
    assert parser_accepts(d)


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_documents_fail_both(validator, name):
    d = INVALID[name]
    assert not validator.is_valid(d), "the schema accepts it"
    assert not parser_accepts(d), "the parser accepts it"


@pytest.mark.parametrize("name", list(PARSER_ONLY))
def test_rules_left_to_the_parser(validator, name):
    d = PARSER_ONLY[name]
    assert validator.is_valid(d) and not parser_accepts(d)


@pytest.mark.parametrize("table", ["accrual", "eligibility", "looks", "hybrid"])
def test_an_empty_conduct_table_is_ignored_by_the_parser_and_refused_by_the_schema(validator, table):
    """The one documented divergence the other way: an empty table is almost surely a mistake."""
    d = doc(ALS, **{table: {}})
    assert parser_accepts(d) and not validator.is_valid(d)


# ------------------------------------------------------------------ docs/scenario.md
DOC = (ROOT / "docs" / "scenario.md").read_text()


def doc_sections() -> dict[str, str]:
    """``_KEYS`` section -> the text of its ``## `` section in docs/scenario.md."""
    parts = {}
    for chunk in DOC.split("\n## ")[1:]:
        heading, _, body = chunk.partition("\n")
        parts[heading.strip()] = body
    names = {"": "Top level", "arms": "[[arms]]"}
    return {s: parts[names.get(s, f"[{s}]")] for s in _KEYS}


@pytest.mark.parametrize("section", list(_KEYS))
def test_every_key_is_documented_in_its_section(section):
    body = doc_sections()[section]
    rows = [line.split("|")[1].strip() for line in body.splitlines() if line.startswith("| `")]
    keys = [r.strip("`") for r in rows]
    expected = [k for k in _KEYS[section] if k not in _KEYS]      # top level: the tables have their own sections
    if section == "arms":
        expected += list(EFFECT_OUTCOME) + list(EFFECT_MODIFIERS)
    assert keys == expected


def test_every_allowed_value_is_documented():
    from cohorts.builtin import available_builtins
    from cohorts.generators import available_generators
    values = (list(ANALYSIS_OUTCOME) + list(MULTIPLICITY) + list(RANDOMIZATION_METHODS) + list(ACCRUAL_PROCESSES)
              + list(SPENDING) + [b.name for b in available_builtins()] + list(available_generators()))
    missing = [v for v in values if f'"{v}"' not in DOC]
    assert missing == []


def test_doc_examples_parse_and_validate(validator):
    """Each TOML block replaces its tables in the doc's complete scenario (the first block); the parser and the
    schema accept the result."""
    blocks = [b.split("```", 1)[0] for b in DOC.split("```toml\n")[1:]]
    assert len(blocks) == len(_KEYS) + 1
    complete = tomllib.loads(blocks[0])
    for text in blocks:
        d = {**complete, **tomllib.loads(text)}
        assert [e.message for e in validator.iter_errors(d)] == [], text
        parse_scenario(d)
