"""Property: malformed scenario text never escapes parse_scenario_text as anything but a WorkbenchError.

Inputs (strategies in fuzz_support): random TOML-ish text, the example scenarios with text spliced in, and the
example scenarios parsed, mutated and written back as TOML. Settings are derandomized so CI sees the same
examples on every run.
"""

from __future__ import annotations

import tomllib

from fuzz_support import (
    EXAMPLES,
    SCENARIOS,
    keys,
    mutated_scenarios,
    spliced_texts,
    toml_dumps,
    toml_ish,
    values,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohorts.errors import WorkbenchError
from trials.scenario import parse_scenario_text

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def test_the_toml_writer_round_trips_the_examples():
    for text in SCENARIOS.values():
        d = tomllib.loads(text)
        assert tomllib.loads(toml_dumps(d)) == d



def _only_workbench_errors(text: str) -> None:
    try:
        parse_scenario_text(text, base_dir=EXAMPLES)
    except WorkbenchError as exc:
        assert str(exc).strip()
        assert all(str(p).strip() for p in getattr(exc, "problems", ["x"]))


# --------------------------------------------------------------------------- properties
@FUZZ
@given(mutated_scenarios())
def test_mutated_scenarios_raise_only_workbench_errors(text):
    _only_workbench_errors(text)


@FUZZ
@given(spliced_texts())
def test_spliced_scenario_text_raises_only_workbench_errors(text):
    _only_workbench_errors(text)


@settings(FUZZ, max_examples=100)
@given(toml_ish)
def test_random_toml_ish_text_raises_only_workbench_errors(text):
    _only_workbench_errors(text)


@settings(FUZZ, max_examples=100)
@given(st.dictionaries(keys, values, max_size=6).map(toml_dumps))
def test_random_tables_raise_only_workbench_errors(text):
    _only_workbench_errors(text)
