"""The scenario file as a JSON Schema (draft 2020-12), for editors, linters and other tools.

::

    insilico scenario --schema > scenario.schema.json      # or: json.dumps(scenario_json_schema())

Written from the parser's own tables so the two cannot drift: the keys of every table come from
:data:`trials.scenario._KEYS` (a key without a description here raises ``KeyError``), the allowed values from
:data:`~trials.design.ANALYSIS_OUTCOME`, :data:`~trials.design.EFFECT_OUTCOME`,
:data:`~trials.design.EFFECT_MODIFIERS`, :data:`~trials.conduct.RANDOMIZATION_METHODS`,
:data:`~trials.conduct.ACCRUAL_PROCESSES`, :data:`~trials.conduct.MULTIPLICITY`, :data:`~trials.conduct.SPENDING`,
the built-in cohorts and the generator registry. Ranges are those the validators enforce; rules between keys
(one effect kind, ``delay`` only with ``hazard_ratio``, ``futility`` only one-sided, the effect kind matching the
analysis ...) are ``if``/``then``, ``oneOf`` and ``dependentRequired`` clauses. The schema is meant to refuse no
file the parser accepts; the parser refuses more: rules the schema cannot state (strictly increasing lists,
expressions that parse, columns the cohort has, block sizes that are multiples of the allocation, the control
without effect) are left to :func:`trials.scenario.parse_scenario`.

Units: calendar, visit, accrual and dropout times are in **months**; ``endpoint.followup`` and an effect's
``delay`` / ``until`` are in the cohort's time unit (days for ``va-lung``).

Checked in tests/trials/test_scenario_schema.py: the schema's keys equal ``_KEYS`` both ways, it is a valid
draft 2020-12 schema, every example scenario validates, and the schema and the parser refuse the same invalid
documents.
"""

from __future__ import annotations

import copy

from trials.conduct import ACCRUAL_PROCESSES, MULTIPLICITY, RANDOMIZATION_METHODS, SPENDING
from trials.design import ANALYSIS_OUTCOME, EFFECT_MODIFIERS, EFFECT_OUTCOME
from trials.scenario import _KEYS

__all__ = ["scenario_json_schema", "SCHEMA_DIALECT"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_NUM, _INT, _STR = {"type": "number"}, {"type": "integer"}, {"type": "string", "minLength": 1}
_NUMS = {"type": "array", "items": _NUM, "minItems": 1}


def _p(schema: dict, description: str, **extra) -> dict:
    return {**schema, **extra, "description": description}


# one entry per key of _KEYS: (JSON Schema of the value, description with units and default)
_TOP = {
    "title": ({"type": "string"}, "Title of the study, shown in the report and the CLI. "
              "Default \"Untitled scenario\"."),
    "seed": ({**_INT, "minimum": 0}, "Required. Non-negative integer seed: the same seed gives the same numbers "
             "in the CLI and the app."),
    "multiplicity": ({"enum": list(MULTIPLICITY)}, "Multi-arm designs (more than one treatment arm): adjustment "
                     "of the treatment-vs-control p-values for the familywise error. Default \"holm\"."),
}
_COHORT = {
    "builtin": (_STR, "Name of a built-in cohort (`insilico cohorts` lists them). Give builtin, or data with "
                "schema."),
    "data": (_STR, "Historical data file (CSV, Parquet, SAS XPT); relative paths resolve against the scenario "
             "file's folder. Needs schema."),
    "schema": (_STR, "Schema TOML file of the data's column roles; only with data."),
    "generator": (_STR, "Generator family fitted on the cohort. Default \"default\"."),
    "params": ({"type": "object", "additionalProperties": {"type": ["number", "string", "boolean"]}},
               "The generator's hyperparameters, an inline table of numbers, strings or booleans "
               "(e.g. { epochs = 300 }). Default none."),
}
_ENDPOINT = {
    "analysis": ({"enum": list(ANALYSIS_OUTCOME)}, "Required. The analysis; it fixes the outcome type "
                 "(longitudinal, tte, continuous, binary) the cohort and the effect must have."),
    "visits_months": ({"type": "array", "items": {**_NUM, "minimum": 0}, "minItems": 2},
                      "Longitudinal endpoints (required there): visit times in months, strictly increasing, the "
                      "first the baseline (usually 0)."),
    "followup": ({**_NUM, "exclusiveMinimum": 0}, "Time to event: each patient's maximum follow-up from entry, "
                 "in the cohort's time unit. Required unless events is given."),
    "events": ({**_INT, "minimum": 2}, "Time to event only: event-driven analysis at the calendar time when this "
               "many events have been observed (patients still at risk are censored then)."),
    "visit_window_months": ({**_NUM, "minimum": 0}, "Longitudinal only: each post-baseline visit happens at a "
                            "uniform time within +- this many months of schedule; less than half the shortest "
                            "gap between visits. Default 0 (on time)."),
    "assessment_months": ({**_NUM, "minimum": 0}, "Continuous or binary endpoints: months from randomization to "
                          "the measurement (times interim looks and the trial's duration). Default 0."),
}
_ARMS = {
    "name": (_STR, "Required. The arm's name, unique; the first arm is the control."),
    "allocation": ({**_NUM, "exclusiveMinimum": 0}, "Relative share of patients (1:1, 2:1 ...). Default 1."),
    "effect": ({"$ref": "#/$defs/effect"}, "The assumed treatment effect (none: no effect, as a control)."),
    "dropout_per_month": ({**_NUM, "minimum": 0, "exclusiveMaximum": 1}, "This arm's loss to follow-up, the share "
                          "of patients still in who leave each month. Default dropout.per_month."),
}
_DROPOUT = {
    "per_month": ({**_NUM, "minimum": 0, "exclusiveMaximum": 1}, "Share of patients still in who leave each month "
                  "(a constant hazard), in [0, 1). Default 0."),
    "hazard_ratio_per_unit_change": ({**_NUM, "exclusiveMinimum": 0}, "Informative dropout (not for continuous or "
                                     "binary endpoints): the monthly dropout hazard is multiplied by this ratio to "
                                     "the power of the last observed change from baseline (0.9: a patient who "
                                     "lost 5 points leaves 1.7 times as often). Default 1 (not informative)."),
}
_POWER = {
    "n_total": ({"oneOf": [{**_INT, "minimum": 4},
                           {"type": "array", "items": {**_INT, "minimum": 4}, "minItems": 1}]},
                "Required. Total sample sizes (all arms) to simulate, integers >= 4, e.g. [60, 120]."),
    "replicates": ({**_INT, "minimum": 1, "maximum": 1_000_000}, "Simulated trials per sample size (and as many "
                   "without effect, for the type I error). Default 1000."),
    "alpha": ({**_NUM, "exclusiveMinimum": 0, "exclusiveMaximum": 1}, "Two-sided significance level. Default 0.05."),
}
_ACCRUAL = {
    "duration": ({**_NUM, "exclusiveMinimum": 0}, "Months over which all patients enter at a constant rate. Give "
                 "duration or rates."),
    "rates": ({"type": "array", "items": {**_NUM, "exclusiveMinimum": 0}}, "Piecewise-constant accrual rates, patients "
              "per month; the last holds until everyone is in. Give duration or rates."),
    "starts": ({**_NUMS, "prefixItems": [{"const": 0}]}, "Only with rates: the month each rate starts, one per "
               "rate, 0 first, strictly increasing. Default [0] for a single rate."),
    "process": ({"enum": list(ACCRUAL_PROCESSES)}, "\"uniform\": entries evenly spaced in cumulative intensity; "
                "\"poisson\": a Poisson process of that intensity. Default \"uniform\"."),
}
_RANDOMIZATION = {
    "method": ({"enum": list(RANDOMIZATION_METHODS)}, "\"fixed\": fixed arm sizes in random order; \"simple\": "
               "each patient independently; \"permuted_block\": blocks filled in order of entry (within each "
               "stratum). Default \"fixed\"."),
    "block_size": ({**_INT, "minimum": 2}, "Permuted blocks only (required there): a multiple of the sum of the "
                   "arms' integer allocation ratios."),
    "strata": ({"type": "array", "items": _STR}, "Permuted blocks only: baseline columns (one stratum per value) "
               "or expressions such as \"age >= 60\" (true / not true). Default none."),
}
_ELIGIBILITY = {
    "criteria": (_STR, "Who may enter: an expression on baseline covariates, e.g. \"18 <= age <= 75 and "
                 "fvc_percent >= 60\"."),
    "enrich": ({"type": "object", "additionalProperties": {**_NUM, "exclusiveMinimum": 0}},
               "Expression -> relative enrolment weight, e.g. { \"site_of_onset == 'Bulbar'\" = 2 } (twice as "
               "likely to enrol)."),
}
_LOOKS = {
    "information_fractions": ({**_NUMS, "items": {**_NUM, "exclusiveMinimum": 0, "maximum": 1},
                               "contains": {"const": 1}},
                              "Required. Information at each look, strictly increasing, the last 1: share of the "
                              "final events (time to event) or of the N patients with the endpoint assessed."),
    "spending": ({"enum": list(SPENDING)}, "Lan-DeMets alpha spending: O'Brien-Fleming type, Pocock type, or "
                 "Hwang-Shih-DeCani (needs gamma). Default \"obf\"."),
    "gamma": (_NUM, "spending = \"hsd\" only (required there): -4 O'Brien-Fleming-like, 1 Pocock-like, 0 linear."),
    "futility": ({"enum": list(SPENDING)}, "Non-binding futility bounds by beta spending with this function; needs "
                 "beta and sided = 1. Default none."),
    "beta": ({**_NUM, "exclusiveMinimum": 0, "exclusiveMaximum": 1}, "Type II error spent by futility (required "
             "with it), or the target power 1 - beta of the inflation factor; below 1 - alpha / sided."),
    "gamma_futility": (_NUM, "futility = \"hsd\" only (required there): the futility spending's gamma."),
    "sided": ({"enum": [1, 2]}, "2: the two-sided alpha is spent symmetrically; 1: alpha / 2 one-sided in the "
              "direction of the assumed effect (needed for futility). Default 2."),
}
_HYBRID = {
    "synthetic_controls": ({**_INT, "minimum": 1}, "Required. Synthetic control patients drawn from the generator "
                           "and added to the randomized control arm of every simulated trial."),
    "drift": (_NUM, "How today's patients differ from the historical ones, on the effect's scale and kind (e.g. "
              "hazard_ratio 1.2: they die 20 % faster); applied to every randomized patient. Default none."),
}
_TABLES = {"cohort": _COHORT, "endpoint": _ENDPOINT, "arms": _ARMS, "dropout": _DROPOUT, "power": _POWER,
           "accrual": _ACCRUAL, "randomization": _RANDOMIZATION, "eligibility": _ELIGIBILITY, "looks": _LOOKS,
           "hybrid": _HYBRID}
_TABLE_DOC = {
    "cohort": "Required. The historical data the generator learns: a built-in cohort, or a data file with its schema.",
    "endpoint": "Required. What is measured and how it is analysed.",
    "arms": "Required. Two or more [[arms]] tables, the control first (k treatments vs one control).",
    "dropout": "Loss to follow-up. Default none.",
    "power": "Required. Sample sizes, replicates and significance level of the simulation.",
    "accrual": "Calendar entry of patients (months). Default: everyone enters at month 0.",
    "randomization": "How patients are assigned to arms in order of entry. Default: fixed arm sizes in random order.",
    "eligibility": "Who enters: the generator draws patients under these conditions. Default: everyone.",
    "looks": "Group-sequential interim analyses (two-arm designs without [hybrid]). Default: one final analysis.",
    "hybrid": "A hybrid control arm: synthetic controls added to the randomized ones (two-arm designs, no [looks]).",
}

_KIND_RANGE = {"slope_reduction": {"minimum": -1, "maximum": 1}, "hazard_ratio": {"exclusiveMinimum": 0},
               "mean_difference": {}, "odds_ratio": {"exclusiveMinimum": 0},
               "risk_difference": {"minimum": -1, "maximum": 1}}
_KIND_DOC = {
    "slope_reduction": "Longitudinal: fraction of each patient's decline removed, in [-1, 1] (0.25 = 25 % slowing).",
    "hazard_ratio": "Time to event: treated vs control hazard ratio, > 0 (1 = no effect).",
    "mean_difference": "Continuous: treated minus control, in the outcome's unit.",
    "odds_ratio": "Binary: treated vs control odds ratio of the outcome = 1, > 0.",
    "risk_difference": "Binary: treated minus control probability, in [-1, 1] (clipped per patient).",
}
_MODIFIERS = {
    "delay": ({**_NUM, "exclusiveMinimum": 0}, "hazard_ratio only: the hazard ratio is 1 before this time "
              "(a delayed effect), in the cohort's time unit."),
    "until": ({**_NUM, "exclusiveMinimum": 0}, "hazard_ratio only: the hazard ratio is 1 after this time (a waning "
              "effect), in the cohort's time unit; after delay when both are given."),
    "responder_fraction": ({**_NUM, "exclusiveMinimum": 0, "maximum": 1}, "Share of treated patients who respond, "
                           "in (0, 1]; the others behave as controls. Default 1."),
    "subgroup": (_STR, "Expression on baseline covariates, e.g. \"age < 60\": only treated patients in it get the "
                 "effect."),
    "outside_value": (_NUM, "With subgroup only: the effect (same kind and range) outside the subgroup. Default no "
                      "effect."),
}


def _object(entries: dict, keys, description: str, **extra) -> dict:
    return {"type": "object", "description": description,
            "properties": {k: _p(*entries[k]) for k in keys}, "additionalProperties": False, **extra}


def _effect_schema() -> dict:
    props = {k: _p({**_NUM, **_KIND_RANGE[k]}, _KIND_DOC[k]) for k in EFFECT_OUTCOME}
    props |= {k: _p(*_MODIFIERS[k]) for k in EFFECT_MODIFIERS}
    return {"type": "object", "description": "One effect kind (its value) and optional modifiers, as an inline "
            "table, e.g. { hazard_ratio = 0.7, delay = 90 }.", "properties": props, "additionalProperties": False,
            "oneOf": [{"required": [k]} for k in EFFECT_OUTCOME],
            "dependentRequired": {"delay": ["hazard_ratio"], "until": ["hazard_ratio"],
                                  "outside_value": ["subgroup"]}}


def _when(condition: dict, then: dict, otherwise: dict | None = None) -> dict:
    out = {"if": condition, "then": then}
    return out if otherwise is None else {**out, "else": otherwise}


def _is(key: str, values) -> dict:
    return {"properties": {key: {"enum": list(values)}}, "required": [key]}


def _nonempty(key: str, size: str) -> dict:
    return {"required": [key], "properties": {key: {size: 1}}}


def _endpoint_rules() -> list[dict]:
    by_type = {o: [a for a, t in ANALYSIS_OUTCOME.items() if t == o] for o in set(ANALYSIS_OUTCOME.values())}
    return [_when(_is("analysis", by_type["longitudinal"]), {"required": ["visits_months"]}),
            _when(_is("analysis", by_type["tte"]), {"anyOf": [{"required": ["followup"]}, {"required": ["events"]}]},
                  {"properties": {"events": False}}),
            _when({"properties": {"visit_window_months": {"exclusiveMinimum": 0}}, "required": ["visit_window_months"]},
                  {"required": ["visits_months"]})]


def _cross_table_rules() -> list[dict]:
    """The effect kind matches the analysis's outcome type; informative dropout not for continuous / binary;
    looks and hybrid only with two arms, and not together."""
    rules = []
    for outcome in sorted(set(ANALYSIS_OUTCOME.values())):
        analyses = [a for a, t in ANALYSIS_OUTCOME.items() if t == outcome]
        other = {k: False for k, t in EFFECT_OUTCOME.items() if t != outcome}
        then = {"properties": {"arms": {"items": {"properties": {"effect": {"properties": other}}}}}}
        if outcome in ("continuous", "binary"):
            then["properties"]["dropout"] = {"properties": {"hazard_ratio_per_unit_change": {"const": 1}}}
        rules.append(_when({"properties": {"endpoint": _is("analysis", analyses)}, "required": ["endpoint"]}, then))
    rules.append(_when({"properties": {"arms": {"minItems": 3}}, "required": ["arms"]},
                       {"not": {"anyOf": [{"required": ["looks"]}, {"required": ["hybrid"]}]}}))
    rules.append({"not": {"required": ["looks", "hybrid"]}})
    return rules


def scenario_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a scenario file (its TOML read as JSON), every key described."""
    from cohorts.builtin import available_builtins
    from cohorts.generators import available_generators

    tables = {k: dict(v) for k, v in _TABLES.items()}
    tables["cohort"]["builtin"] = ({"enum": [b.name for b in available_builtins()]}, _COHORT["builtin"][1])
    tables["cohort"]["generator"] = ({"enum": list(available_generators())}, _COHORT["generator"][1])
    props = {}
    for key in _KEYS[""]:
        if key in _TOP:
            props[key] = _p(*_TOP[key])
        elif key == "arms":
            props[key] = {"type": "array", "minItems": 2, "description": _TABLE_DOC[key],
                          "items": _object(tables[key], _KEYS[key], "One arm.", required=["name"])}
        else:
            props[key] = _object(tables[key], _KEYS[key], _TABLE_DOC[key])
    p = props
    p["cohort"]["oneOf"] = [{"required": ["builtin"], "not": {"anyOf": [{"required": ["data"]},
                                                                         {"required": ["schema"]}]}},
                            {"required": ["data", "schema"], "not": {"required": ["builtin"]}}]
    p["endpoint"] |= {"required": ["analysis"], "allOf": _endpoint_rules()}
    p["power"]["required"] = ["n_total"]
    p["accrual"] |= {"oneOf": [{"required": ["duration"]}, _nonempty("rates", "minItems")],
                     "dependentRequired": {"starts": ["rates"]}}
    p["randomization"]["allOf"] = [_when(_is("method", ["permuted_block"]), {"required": ["block_size"]},
                                         {"properties": {"block_size": False, "strata": {"maxItems": 0}}})]
    p["eligibility"]["anyOf"] = [{"required": ["criteria"]}, _nonempty("enrich", "minProperties")]
    p["looks"] |= {"required": ["information_fractions"], "allOf": [
        _when(_is("spending", ["hsd"]), {"required": ["gamma"]}, {"properties": {"gamma": False}}),
        _when(_is("futility", ["hsd"]), {"required": ["gamma_futility"]}, {"properties": {"gamma_futility": False}}),
        _when({"required": ["futility"]}, {"required": ["beta", "sided"], "properties": {"sided": {"const": 1}}})]}
    p["hybrid"]["required"] = ["synthetic_controls"]
    return copy.deepcopy({"$schema": SCHEMA_DIALECT, "title": "insilico scenario file",
            "description": "A simulation study of the in-silico trial workbench (TOML; this schema describes the "
            "TOML document read as JSON). Calendar, visit, accrual and dropout times are in months; followup and "
            "an effect's delay / until in the cohort's time unit. Rules between keys the schema cannot state are "
            "checked by `insilico scenario FILE`.",
            "type": "object", "properties": props, "additionalProperties": False,
            "required": ["seed", "cohort", "endpoint", "arms", "power"], "allOf": _cross_table_rules(),
            "$defs": {"effect": _effect_schema()}})
